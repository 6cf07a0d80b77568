from .inference import inference_model, inference_volume, init_model

__all__ = ['inference_model', 'inference_volume', 'init_model']
