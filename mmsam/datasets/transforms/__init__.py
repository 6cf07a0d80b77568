from .load_npz_slice import LoadNpzSlice

__all__ = ['LoadNpzSlice']
