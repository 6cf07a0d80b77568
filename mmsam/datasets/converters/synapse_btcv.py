"""The raw BTCV release (MICCAI 2015): NIfTI CT volumes and raw 13-organ labels.

``SRC/img/img00XX.nii.gz`` and ``SRC/label/label00XX.nii.gz`` (``SRC`` may also be the folder
holding ``Training/`` or ``RawData/Training/``). Each case is processed the way TransUNet's
release was made: HU clipped to :data:`HU_WINDOW` and rescaled linearly to [0, 1]; the stored
voxel array (i, j, k) transposed to (k, j, i) = (D, H, W), so axial slices run along the first
axis; no reorientation by the affine, so the slices match the release's slice for slice and
pixel for pixel; labels mapped with :data:`mmsam.datasets.synapse_dataset.BTCV_TO_SYNAPSE`
(the 8 evaluated organs, every other raw id to background); spacing (z, y, x) from the NIfTI
header's zooms (k, j, i). Raw HU and resampling are :mod:`.synapse_volumes`.
"""
import os
import os.path as osp
import re
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from mmsam.datasets.io.data_root import TEST_VOLUME_DIR, TRAIN_SLICE_DIR, TRAIN_VOLUME_DIR
from mmsam.datasets.io.nifti import nifti_spacing, nifti_to_dhw, open_nifti, read_nifti_voxels
from mmsam.datasets.io.npz import save_case_volume, save_slice, save_volume
from mmsam.datasets.synapse_dataset import BTCV_TO_SYNAPSE

from .case_volumes import sample_cases_foreground
from .nifti_pairs import check_label_ids
from .nnunet_preprocessing import ct_clip_range, foreground_stats
from .synapse_common import (HU_WINDOW, NUM_BTCV_IDS, SynapseConversionError, TEST_CASES,
                             integer_labels)
from .synapse_volumes import auto_target_spacing, plan_train_slices, prepare_volume

#: What to do with a damaged file of the release.
REDO = 're-download or re-extract it'


def map_btcv_labels(raw: np.ndarray, path: str = 'label') -> np.ndarray:
    """Map raw BTCV label ids to Synapse ids: the 8 evaluated organs, everything else 0.

    Args:
        raw (ndarray): (...) raw BTCV ids (integer-valued, any dtype).
        path (str): source file, named in errors.

    Returns:
        ndarray: (...) uint8 ids into :data:`CLASSES`.
    """
    raw = integer_labels(raw, path)
    lut = np.zeros(max(int(raw.max(initial=0)), max(BTCV_TO_SYNAPSE)) + 1, dtype=np.uint8)
    for raw_id, new_id in BTCV_TO_SYNAPSE.items():
        lut[raw_id] = new_id
    return lut[raw]


class BTCVSource:
    """The raw BTCV release: NIfTI CT volumes and raw 13-organ labels.

    Args:
        src (str): folder holding ``img/`` and ``label/`` (or ``Training/``, or
            ``RawData/Training/`` with them).

    Attributes:
        train_slices (dict[str, list[str]]): case -> slice names to be written, in slice order.
        test_cases (list[str]): case names to be written as volumes.
    """

    format = 'btcv'
    _IMG_RE = re.compile(r'^img(\d{4})(\.nii(?:\.gz)?)$')

    def __init__(self, src):
        self.src = src
        base = next((osp.join(src, sub) for sub in ('', 'Training', osp.join('RawData', 'Training'))
                     if osp.isdir(osp.join(src, sub, 'img'))), None)
        if base is None:
            raise SynapseConversionError(
                f'{osp.join(src, "img")} does not exist: {src} is not the raw BTCV release '
                '(img/img00XX.nii.gz, label/label00XX.nii.gz). For TransUNet\'s preprocessed '
                'release (train_npz/, test_vol_h5/) use --format transunet')
        self.img_dir, self.label_dir = osp.join(base, 'img'), osp.join(base, 'label')
        self.files = {}
        for name in sorted(os.listdir(self.img_dir)):
            match = self._IMG_RE.match(name)
            if match is None:
                continue
            case = f'case{match.group(1)}'
            label = osp.join(self.label_dir, f'label{match.group(1)}{match.group(2)}')
            if not osp.isfile(label):
                raise SynapseConversionError(
                    f'label file {label} for {osp.join(self.img_dir, name)} does not exist; '
                    're-extract the release (every img00XX needs its label00XX)')
            self.files[case] = (osp.join(self.img_dir, name), label)
        self.test_cases = [c for c in self.files if c in TEST_CASES]
        self.axcodes = {}
        self.intensity, self.target_spacing = 'window', None
        self.fg_samples = []  # labelled-voxel HU of the training cases (intensity 'hu')
        self._clip_range = None  # the CT window clipped to before resampling, once computed
        # the headers alone give shapes and spacings, so splits (and the target spacing) are
        # planned before any voxel is read
        self.headers = {}  # training case -> (shape (D, H, W), spacing (z, y, x))
        for case in self.files:
            if case in TEST_CASES:
                continue
            img = open_nifti(self.files[case][0], 3, SynapseConversionError, REDO)
            self.headers[case] = (tuple(int(n) for n in img.shape[::-1]), nifti_spacing(img))
        self.train_slices = plan_train_slices(self.headers, self.target_spacing)

    def configure(self, intensity: str = 'window',
                  target_spacing: Union[None, str, Sequence[float]] = None
                  ) -> Optional[Sequence[float]]:
        """Set the intensity mode and target spacing (``'auto'``: nnU-Net's, of the training
        cases); re-plans the training slices. Returns the target spacing (z, y, x) or None."""
        if target_spacing == 'auto':
            target_spacing = auto_target_spacing(self.headers, self.img_dir)
        self.intensity, self.target_spacing = intensity, target_spacing
        self._clip_range = None
        self.train_slices = plan_train_slices(self.headers, target_spacing)
        return target_spacing

    def _read_case(self, case):
        """Raw HU (D, H, W) float32, Synapse label (D, H, W) uint8, spacing (z, y, x)."""
        import nibabel as nib
        img_path, label_path = self.files[case]
        img = open_nifti(img_path, 3, SynapseConversionError, REDO)
        lbl = open_nifti(label_path, 3, SynapseConversionError, REDO)
        if tuple(lbl.shape) != tuple(img.shape):
            raise SynapseConversionError(
                f'{label_path} has shape {lbl.shape}, {img_path} has {img.shape}: expected one 3D '
                'shape; re-extract the release')
        if not np.allclose(lbl.affine, img.affine, rtol=1e-5, atol=1e-4):
            raise SynapseConversionError(
                f'{label_path} has affine {lbl.affine.round(4).tolist()} but {img_path} has '
                f'{img.affine.round(4).tolist()}: the label is not on the image\'s grid; '
                're-extract the release')
        raw = integer_labels(read_nifti_voxels(lbl, label_path, SynapseConversionError, REDO),
                             label_path)
        check_label_ids(raw, NUM_BTCV_IDS, label_path, error=SynapseConversionError)
        image = nifti_to_dhw(read_nifti_voxels(img, img_path, SynapseConversionError, REDO))
        label = nifti_to_dhw(map_btcv_labels(raw, label_path))
        self.axcodes[case] = ''.join(str(c) for c in nib.aff2axcodes(img.affine))
        return image, label, nifti_spacing(img)

    def ct_clip_range(self) -> Optional[Tuple[float, float]]:
        """The CT window clipped to before resampling, or None (not ``'hu'``, not resampled).

        nnU-Net clips CT to the foreground percentiles before it resamples, so on first use
        this is a statistics pass over the training cases at native resolution, one case at a
        time (each training case is read twice); it fills :attr:`fg_samples`.
        """
        if self.intensity != 'hu' or self.target_spacing is None:
            return None
        if self._clip_range is None:
            self.fg_samples[:] = sample_cases_foreground(
                (self._read_case(case)[:2] for case in self.headers), len(self.headers))
            self._clip_range = ct_clip_range(foreground_stats(
                self.fg_samples, f'the training cases of {self.src}', SynapseConversionError))
        return self._clip_range

    def _prepared(self, case):
        """The case as stored (:func:`.synapse_volumes.prepare_volume`) and its native grid."""
        clip_range = self.ct_clip_range()
        image, label, spacing = self._read_case(case)
        # sampled here unless the statistics pass (clip_range) has sampled every training case
        fg_samples = self.fg_samples if case in self.headers and clip_range is None else None
        return prepare_volume(image, label, spacing, self.target_spacing, self.intensity,
                              fg_samples, len(self.headers), clip_range)

    def write_train_case(self, case: str, root: str, volume: bool = False) -> None:
        """Write every axial slice of the case to ``root/train_slices/`` (and the volume)."""
        image, label, spacing, _ = self._prepared(case)
        if image.shape[0] != len(self.train_slices[case]):
            raise SynapseConversionError(
                f'{self.files[case][0]}: {image.shape[0]} slices, but its header promised '
                f'{len(self.train_slices[case])}; the file is damaged: re-extract it')
        for k, stem in enumerate(self.train_slices[case]):
            save_slice(osp.join(root, TRAIN_SLICE_DIR, f'{stem}.npz'), image[k], label[k])
        if volume:
            save_volume(osp.join(root, TRAIN_VOLUME_DIR, f'{case}.npz'), image, label, spacing)

    def write_test_case(self, case: str, root: str) -> None:
        """Write the case as a volume with its spacing (and native grid) to ``test_volumes/``."""
        image, label, spacing, native = self._prepared(case)
        save_case_volume(osp.join(root, TEST_VOLUME_DIR, f'{case}.npz'), image, label, spacing,
                         native)

    def meta(self) -> dict:
        return dict(spacing_note='(z, y, x) mm from the NIfTI headers; volumes (D, H, W) are the '
                                 'stored voxel arrays (i, j, k) transposed to (k, j, i), as in '
                                 'TransUNet\'s release, without reorientation by the affine',
                    spacing_known=True,
                    hu_window=list(HU_WINDOW) if self.intensity == 'window' else None,
                    label_map={str(k): v for k, v in BTCV_TO_SYNAPSE.items()},
                    source_axcodes=dict(sorted(self.axcodes.items())))
