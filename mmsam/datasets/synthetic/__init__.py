"""Seeded procedural data sets, so that every config runs without downloading data."""
from .abdomen_generator import (CLASSES, PALETTE, ensure_synthetic_abdomen, generate_case,
                                generate_synthetic_abdomen)
from .lesion_generator import (ensure_synthetic_lesions, generate_lesion_sample,
                               generate_synthetic_lesions)

__all__ = ['CLASSES', 'PALETTE', 'ensure_synthetic_abdomen', 'ensure_synthetic_lesions',
           'generate_case', 'generate_lesion_sample', 'generate_synthetic_abdomen',
           'generate_synthetic_lesions']
