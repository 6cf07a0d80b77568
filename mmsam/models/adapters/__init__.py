from .lora import LoRA, LoRAQKVLinear

__all__ = ['LoRA', 'LoRAQKVLinear']
