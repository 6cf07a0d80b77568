from .inference import inference_model, init_model
from .interactive_session import InteractivePrediction, InteractiveSession
from .sam2_volume_inference import inference_scan_sam2, propagate_from_box
from .scan_inference import ScanPrediction, inference_scan, inference_volume
from .volume_interactive_session import VolumeInteractiveSession

__all__ = ['inference_model', 'inference_volume', 'init_model', 'inference_scan',
           'ScanPrediction', 'InteractiveSession', 'InteractivePrediction',
           'inference_scan_sam2', 'propagate_from_box', 'VolumeInteractiveSession']
