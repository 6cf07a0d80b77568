"""File formats, one module each: read and write them, nothing else.

:mod:`.nifti` (the one NIfTI reader and writer), :mod:`.dicom` (DICOM series),
:mod:`.metaimage` (``.mha`` / ``.mhd``), :mod:`.h5` (HDF5 arrays), :mod:`.npz` (mmsam's slice
and volume files), :mod:`.data_root` (a data root's ``meta.json`` and split files) and
:mod:`.scan` (a scan of any of the first three kinds, with its geometry). Modules are imported
by name, so that importing one format does not load the others' libraries.
"""
