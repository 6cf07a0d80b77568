from .sam_data_preprocessor import SAMDataPreProcessor, check_train_test_geometry
from .volume_data_preprocessor import VolumeDataPreProcessor

__all__ = ['SAMDataPreProcessor', 'VolumeDataPreProcessor', 'check_train_test_geometry']
