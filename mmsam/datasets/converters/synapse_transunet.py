"""TransUNet's preprocessed Synapse release: training slices (npz), test volumes (h5).

``SRC/train_npz/caseXXXX_sliceYYY.npz`` (``image``, ``label``: (H, W), image already in [0, 1])
and ``SRC/test_vol_h5/caseXXXX.npy.h5`` (datasets ``image``, ``label``: (D, H, W)), optionally
with ``SRC/lists/lists_Synapse/{train.txt,test_vol.txt}``; when a list exists it is
authoritative (every listed item must exist; unlisted files are skipped with a warning).
Arrays are copied as they are. The release carries no voxel spacing: test volumes get spacing
(1, 1, 1), i.e. HD95 in voxels, which is how TransUNet evaluates.
"""
import os
import os.path as osp
import warnings
from typing import Optional, Sequence, Union

import numpy as np

from mmsam.datasets.io.data_root import TEST_VOLUME_DIR, TRAIN_SLICE_DIR, TRAIN_VOLUME_DIR
from mmsam.datasets.io.h5 import read_h5_arrays
from mmsam.datasets.io.npz import read_npz_arrays, save_slice, save_volume

from .synapse_common import (HU_WINDOW, NUM_CLASSES, SLICE_RE, SynapseConversionError, abbreviate,
                             integer_labels)


def _check_release_pair(image, label, ndim, path):
    if image.ndim != ndim or label.shape != image.shape:
        raise SynapseConversionError(
            f'{path}: expected image and label of one {ndim}-D shape, got image {image.shape} '
            f'and label {label.shape}; the file is not from TransUNet\'s release or is damaged')
    if image.size and not np.all(np.isfinite(image)):
        raise SynapseConversionError(f'{path}: image contains NaN/inf; re-download the file')
    if image.size and (image.min() < -1e-4 or image.max() > 1 + 1e-4):
        raise SynapseConversionError(
            f'{path}: image values span [{image.min():.4g}, {image.max():.4g}], not [0, 1]; '
            'TransUNet\'s release is already windowed and rescaled. For raw HU use --format btcv')
    return np.clip(image, 0, 1).astype(np.float32), \
        integer_labels(label, path, max_id=NUM_CLASSES - 1).astype(np.uint8)


def _read_npz(path):
    """``image`` and ``label`` of one slice file of the release."""
    arrays = read_npz_arrays(path, ('image', 'label'), SynapseConversionError,
                             'TransUNet\'s slices hold "image" and "label": re-download or '
                             're-extract the release')
    return arrays['image'], arrays['label']


def _read_h5(path):
    """``image`` and ``label`` of one test volume file of the release."""
    arrays, _ = read_h5_arrays(path, ('image', 'label'), SynapseConversionError,
                               'TransUNet\'s test volumes hold "image" and "label": re-download '
                               'the release')
    return arrays['image'], arrays['label']


class TransUNetSource:
    """TransUNet's preprocessed release: training slices (npz) and test volumes (h5).

    Args:
        src (str): release folder holding ``train_npz/`` and ``test_vol_h5/``.

    Attributes:
        train_slices (dict[str, list[str]]): case -> slice names (file stems), in slice order.
        test_cases (list[str]): case names of the test volumes.
    """

    format = 'transunet'

    def __init__(self, src):
        self.src = src
        self.npz_dir = osp.join(src, 'train_npz')
        self.h5_dir = osp.join(src, 'test_vol_h5')
        for folder in (self.npz_dir, self.h5_dir):
            if not osp.isdir(folder):
                raise SynapseConversionError(
                    f'{folder} does not exist: {src} is not TransUNet\'s preprocessed release '
                    '(train_npz/ and test_vol_h5/). For the raw BTCV data (img/, label/) use '
                    '--format btcv')
        list_dir = osp.join(src, 'lists', 'lists_Synapse')
        stems = self._listed(self.npz_dir, '.npz', osp.join(list_dir, 'train.txt'))
        cases = self._listed(self.h5_dir, '.npy.h5', osp.join(list_dir, 'test_vol.txt'))
        self.train_slices = {}
        for stem in stems:
            match = SLICE_RE.match(stem)
            if match is None:
                warnings.warn(f'{osp.join(self.npz_dir, stem)}.npz is not named '
                              'caseXXXX_sliceYYY.npz; skipped')
                continue
            self.train_slices.setdefault(match.group(1), []).append(stem)
        for case, names in self.train_slices.items():
            names.sort(key=lambda s: int(SLICE_RE.match(s).group(2)))
        self.train_slices = dict(sorted(self.train_slices.items()))
        self.test_cases = sorted(cases)

    @staticmethod
    def _listed(folder, suffix, list_file):
        """Item names in ``folder`` (files ending in ``suffix``), restricted to ``list_file``."""
        present = sorted(f[:-len(suffix)] for f in os.listdir(folder) if f.endswith(suffix))
        if not osp.isfile(list_file):
            return present
        with open(list_file) as f:
            listed = [osp.basename(line.strip()) for line in f if line.strip()]
        listed = [name[:-len(suffix)] if name.endswith(suffix) else name for name in listed]
        missing = sorted(set(listed) - set(present))
        if missing:
            raise SynapseConversionError(
                f'{list_file} lists {len(missing)} item(s) missing from {folder}: '
                f'{abbreviate(missing)}; the release is incomplete: re-extract it, or delete the '
                'list to convert the files that are present')
        unlisted = sorted(set(present) - set(listed))
        if unlisted:
            warnings.warn(f'{len(unlisted)} file(s) in {folder} are not in {list_file} and are '
                          f'skipped: {abbreviate(unlisted)}')
        return sorted(set(listed))

    def configure(self, intensity: str = 'window',
                  target_spacing: Union[None, str, Sequence[float]] = None
                  ) -> Optional[Sequence[float]]:
        """Check the intensity mode and target spacing; the release allows neither change."""
        if intensity != 'window':
            raise SynapseConversionError(
                f'--intensity {intensity}: TransUNet\'s release {self.src} is already windowed '
                f'to {list(HU_WINDOW)} HU and rescaled to [0, 1], so raw HU are lost; use the raw '
                'BTCV data (--format btcv) or --intensity window')
        if target_spacing is not None:
            raise SynapseConversionError(
                f'--target-spacing {target_spacing}: TransUNet\'s release {self.src} stores no '
                'voxel spacing (every volume is taken as spacing 1, 1, 1), so it cannot be '
                'resampled; use the raw BTCV data (--format btcv) or --target-spacing none')
        return None

    def write_train_case(self, case: str, root: str, volume: bool = False) -> None:
        """Copy the case's slices to ``root/train_slices/`` (stacked to a volume if asked)."""
        images, labels = [], []
        for stem in self.train_slices[case]:
            path = osp.join(self.npz_dir, f'{stem}.npz')
            image, label = _check_release_pair(*_read_npz(path), 2, path)
            save_slice(osp.join(root, TRAIN_SLICE_DIR, f'{stem}.npz'), image, label)
            if volume:
                images.append(image)
                labels.append(label)
        if volume:
            numbers = [int(SLICE_RE.match(s).group(2)) for s in self.train_slices[case]]
            if numbers != list(range(len(numbers))) or len({i.shape for i in images}) != 1:
                raise SynapseConversionError(
                    f'{self.npz_dir}: the slices of {case} are not numbered 0-{len(numbers) - 1} '
                    f'with one shape (found numbers {abbreviate(map(str, numbers))}), so they '
                    'cannot be stacked into a training volume; re-extract the release or drop '
                    '--train-volumes')
            save_volume(osp.join(root, TRAIN_VOLUME_DIR, f'{case}.npz'), np.stack(images),
                        np.stack(labels), spacing=(1.0, 1.0, 1.0))

    def write_test_case(self, case: str, root: str) -> None:
        """Copy the case's volume to ``root/test_volumes/``, with unit spacing (unknown)."""
        path = osp.join(self.h5_dir, f'{case}.npy.h5')
        image, label = _check_release_pair(*_read_h5(path), 3, path)
        save_volume(osp.join(root, TEST_VOLUME_DIR, f'{case}.npz'), image, label,
                    spacing=(1.0, 1.0, 1.0))

    def meta(self) -> dict:
        return dict(spacing_note='TransUNet\'s release has no voxel spacing: test volumes are '
                                 'stored with spacing (1, 1, 1), so HD95 is in voxels as in '
                                 'TransUNet; axial slices (D, H, W) as in the release',
                    spacing_known=False)
