"""Official checkpoints -> mmsam checkpoints, one module per official source, and the check
of a conversion against the official code's outputs (``official_check``). The CLIs are in
``tools/model_converters/``."""
from .official_check import TOLERANCE, check_fixture, registered_cases
from .source_keys import (ConversionError, SourceKeys, load_into_model_strictly,
                          read_weight_file, run_conversion, save_converted)

__all__ = ['TOLERANCE', 'ConversionError', 'SourceKeys', 'check_fixture',
           'load_into_model_strictly', 'read_weight_file', 'registered_cases', 'run_conversion',
           'save_converted']
