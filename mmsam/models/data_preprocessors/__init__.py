from .volume_data_preprocessor import VolumeDataPreProcessor

__all__ = ['VolumeDataPreProcessor']
