from .inference import inference_model, inference_volume, init_model
from .scan_inference import ScanPrediction, inference_scan

__all__ = ['inference_model', 'inference_volume', 'init_model', 'inference_scan',
           'ScanPrediction']
