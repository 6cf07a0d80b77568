from .inference import inference_model, init_model
from .interactive_session import InteractivePrediction, InteractiveSession
from .scan_inference import ScanPrediction, inference_scan, inference_volume

__all__ = ['inference_model', 'inference_volume', 'init_model', 'inference_scan',
           'ScanPrediction', 'InteractiveSession', 'InteractivePrediction']
