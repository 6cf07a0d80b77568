"""Library code of the dataset converters (``tools/dataset_converters/`` are their CLIs).

Shared pieces: :mod:`.errors` (the error type the CLIs report), :mod:`.nnunet_preprocessing`
(nnU-Net's target spacing, resampling and CT foreground statistics). Modules are imported by
name; importing this package loads none of them, so ``import mmsam.datasets`` stays light.

Every ``convert_*`` function takes ``src`` and ``dst`` and returns the contents of the
``meta.json`` it wrote (a dict):

- ``dst``: the output data root; it must not exist, be empty, or (with ``overwrite=True``)
  hold a previous output of the same converter, which is then replaced;
- ``log``: None, or a callable given each progress message;
- ``target_spacing`` (3D converters): None / ``'none'``, ``'auto'`` (nnU-Net's rule) or
  (z, y, x) mm to resample to (:func:`.nnunet_preprocessing.parse_target_spacing`);
- the output is written into a temporary folder next to ``dst`` and renamed to ``dst`` once
  complete: on any error nothing is left at ``dst``.

The 2D slice datasets (LA, PROMISE12) write ``train_slices/`` (the labelled cases' slices),
``test_volumes/``, ``splits/train.txt`` (labelled slices), ``splits/test.txt``, with
``all_train`` also ``splits/train_all.txt`` and every training case's slices, and ``meta.json``.
"""
