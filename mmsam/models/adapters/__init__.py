from .bottleneck_adapter import BottleneckAdapter
from .compose_adapters import ComposeAdapters
from .dconv_adapter import DConvAdapter
from .depth_block_adapter import DepthAdaptedBlock, DepthBlockAdapter
from .dmlp_adapter import DMLPAdapter
from .lora import LoRA, LoRAQKVLinear
from .masksam_decoder_adapter import MaskSAMDecoderAdapter

__all__ = ['BottleneckAdapter', 'ComposeAdapters', 'DConvAdapter', 'DepthAdaptedBlock',
           'DepthBlockAdapter', 'DMLPAdapter', 'LoRA', 'LoRAQKVLinear', 'MaskSAMDecoderAdapter']
