"""Library code of the dataset converters (``tools/dataset_converters/`` are their CLIs).

Shared pieces: :mod:`.errors` (the error type the CLIs report), :mod:`.nnunet_preprocessing`
(nnU-Net's target spacing, resampling and CT foreground statistics). Modules are imported by
name; importing this package loads none of them, so ``import mmsam.datasets`` stays light.
"""
