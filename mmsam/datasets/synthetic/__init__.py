"""Seeded procedural data sets, so that every config runs without downloading data."""
from .abdomen_generator import (CLASSES, PALETTE, ensure_synthetic_abdomen, generate_case,
                                generate_synthetic_abdomen)

__all__ = ['CLASSES', 'PALETTE', 'generate_case', 'generate_synthetic_abdomen',
           'ensure_synthetic_abdomen']
