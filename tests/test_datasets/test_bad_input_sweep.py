"""Bad-input sweep: every dataset converter and data loader meets damaged or wrong input.

One table, one row per (converter or loader, fault): truncated .nii.gz / .h5 / .npz / .mhd
data, an .h5 or .npz missing a key, NaN/Inf intensities, the wrong dtype, image/label shape or
affine mismatch, label ids outside the dataset's map, an empty source folder, duplicate case
ids, a 1-slice or non-square image where the format needs another, a header claiming more
voxels than the limit, a pickle of the wrong structure. Each row asserts that the error names
the damaged file (or folder) and says what to do, and that nothing new is left next to the
output (no data root, no staging folder). The last rows read a corrupt sample mid-epoch
through a real data loader: the error names the file.

Each source is the smallest valid one for its converter (checked by the ``valid`` rows: the
conversion succeeds), then the row's fault is applied to it.
"""
import importlib
import json
import pickle
import re
import shutil
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest

from mmsam.datasets.converters.errors import ConversionError

RNG = np.random.default_rng(0)
_CONVERTERS = {}


def converter(name):
    """The library module of tools/dataset_converters/<name>.py."""
    if name not in _CONVERTERS:
        _CONVERTERS[name] = importlib.import_module(f'mmsam.datasets.converters.{name}')
    return _CONVERTERS[name]


def save_nii(path, array, zooms=(1.0, 1.0, 2.0), affine=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    affine = np.diag([*zooms[:3], 1.0]) if affine is None else affine
    nib.save(nib.Nifti1Image(array, affine), str(path))


def truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def image_xyz(shape=(12, 12, 4), low=-200, high=300):
    return RNG.uniform(low, high, shape).astype(np.float32)


def label_xyz(shape=(12, 12, 4), num_classes=3):
    label = np.zeros(shape, np.uint8)
    label[3:9, 3:9, :] = RNG.integers(1, num_classes, (6, 6, shape[2]))
    return label


# --- smallest valid sources -----------------------------------------------------------------


def nifti_folder_source(src):
    for case in ('c1', 'c2', 'c3'):
        save_nii(src / 'images' / f'{case}.nii.gz', image_xyz())
        save_nii(src / 'labels' / f'{case}.nii.gz', label_xyz())
    return lambda dst: converter('nifti_folder').convert_nifti_folder(
        str(src), str(dst), ['c3'], classes=['background', 'liver', 'tumour'])


def acdc_source(src):
    # patient 1 trains, 2 is a test patient, 89 a validation patient (the official split).
    for p in (1, 2, 89):
        folder = src / 'training' / f'patient{p:03d}'
        folder.mkdir(parents=True)
        (folder / 'Info.cfg').write_text('ED: 1\nES: 5\nGroup: NOR\nNbFrame: 30\n')
        for frame in (1, 5):
            name = f'patient{p:03d}_frame{frame:02d}'
            save_nii(folder / f'{name}.nii.gz', image_xyz(low=0, high=500), (1.5, 1.5, 10))
            save_nii(folder / f'{name}_gt.nii.gz', label_xyz(num_classes=4), (1.5, 1.5, 10))
    return lambda dst: converter('acdc').convert_acdc(str(src), str(dst))


def amos_source(src):
    labels = {str(i): n for i, n in enumerate(converter('amos').CLASSES)}
    src.mkdir(parents=True)
    (src / 'dataset.json').write_text(json.dumps(dict(labels=labels)))
    for n in range(1, 6):  # 5 CT cases: one per fold
        save_nii(src / 'imagesTr' / f'amos_{n:04d}.nii.gz', image_xyz())
        save_nii(src / 'labelsTr' / f'amos_{n:04d}.nii.gz', label_xyz(num_classes=16))
    return lambda dst: converter('amos').convert_amos(str(src), str(dst))


def la_source(src):
    cases = ('caseA', 'caseB')
    src.mkdir(parents=True)
    (src / 'train.list').write_text('caseA\n')
    (src / 'test.list').write_text('caseB\n')
    for case in cases:
        folder = src / '2018LA_Seg_Training Set' / case
        folder.mkdir(parents=True)
        with h5py.File(folder / 'mri_norm2.h5', 'w') as f:
            f['image'] = RNG.normal(0, 1, (12, 12, 4)).astype(np.float32)
            f['label'] = label_xyz(num_classes=2)
    return lambda dst: converter('la').convert_la(str(src), str(dst), labelled=1)


def la_h5(src, case='caseA'):
    return src / '2018LA_Seg_Training Set' / case / 'mri_norm2.h5'


def rewrite_h5(path, **datasets):
    """Rewrite an .h5 keeping its datasets except those given (None drops one)."""
    with h5py.File(path, 'r') as f:
        data = {k: f[k][()] for k in f}
    data.update(datasets)
    path.unlink()
    with h5py.File(path, 'w') as f:
        for key, value in data.items():
            if value is not None:
                f[key] = value


def synapse_source(src):
    sy = converter('synapse')
    (src / 'train_npz').mkdir(parents=True)
    (src / 'test_vol_h5').mkdir()
    for i in range(4):
        np.savez(src / 'train_npz' / f'case0005_slice{i:03d}.npz',
                 image=RNG.uniform(0, 1, (16, 16)).astype(np.float32),
                 label=RNG.integers(0, 9, (16, 16)).astype(np.uint8))
    with h5py.File(src / 'test_vol_h5' / f'{sy.TEST_CASES[0]}.npy.h5', 'w') as f:
        f['image'] = RNG.uniform(0, 1, (3, 16, 16)).astype(np.float32)
        f['label'] = RNG.integers(0, 9, (3, 16, 16)).astype(np.uint8)
    return lambda dst: sy.convert_synapse(str(src), str(dst), few_shot_fraction=0.5)


def synapse_h5(src):
    return src / 'test_vol_h5' / f'{converter("synapse").TEST_CASES[0]}.npy.h5'


def write_mhd(path, array, spacing=(0.6, 0.6, 3.6)):
    import SimpleITK as sitk
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path))


def promise12_source(src):
    src.mkdir(parents=True)
    for n in range(3):
        write_mhd(src / f'Case{n:02d}.mhd', RNG.uniform(0, 900, (4, 12, 12)).astype(np.int16))
        write_mhd(src / f'Case{n:02d}_segmentation.mhd',
                  np.transpose(label_xyz(num_classes=2), (2, 0, 1)).copy())
    (src / 'test.txt').write_text('Case02\n')
    return lambda dst: converter('promise12').convert_promise12(
        str(src), str(dst), labelled=1, test_cases=['Case02'])


def qubiq_source(src):
    for split, cases in (('Training', 3), ('Validation', 1)):
        for n in range(1, cases + 1):
            folder = src / 'kidney' / split / f'case{n:02d}'
            save_nii(folder / 'image.nii.gz', image_xyz((16, 16)), affine=np.eye(4))
            for r in range(1, 4):
                save_nii(folder / f'task01_seg{r:02d}.nii.gz', label_xyz((16, 16, 1), 2)[..., 0],
                         affine=np.eye(4))
    return lambda dst: converter('qubiq').convert_qubiq(str(src), str(dst))


def qubiq_case(src, n=1):
    return src / 'kidney' / 'Training' / f'case{n:02d}'


def lidc_crop(series, shape=(128, 128)):
    return dict(image=RNG.uniform(0, 1, shape).astype(np.float32), series_uid=series,
                masks=[(RNG.uniform(0, 1, shape) > 0.9).astype(np.uint8) for _ in range(4)])


def lidc_source(src):
    src.mkdir(parents=True)
    data = {f'LIDC-{i:04d}_slice_{j}': lidc_crop(f'series{i}') for i in range(10)
            for j in range(2)}
    write_pickle(src / 'data_lidc.pickle', data)
    return lambda dst: converter('lidc').convert_lidc(str(src / 'data_lidc.pickle'), str(dst))


def write_pickle(path, data):
    with open(path, 'wb') as f:
        pickle.dump(data, f)


def edit_lidc(src, change):
    path = src / 'data_lidc.pickle'
    with open(path, 'rb') as f:
        data = pickle.load(f)
    write_pickle(path, change(data))
    return path


SOURCES = dict(nifti_folder=nifti_folder_source, acdc=acdc_source, amos=amos_source,
               la=la_source, synapse=synapse_source, promise12=promise12_source,
               qubiq=qubiq_source, lidc=lidc_source)


# --- faults: each applies itself to a valid source and returns the file the message names ---


def nan_in(path, value=np.nan):
    img = nib.load(str(path))
    array = np.asanyarray(img.dataobj).astype(np.float32)
    array.flat[5] = value
    save_nii(path, array, affine=img.affine)
    return path


def replace_nii(path, array, affine=None):
    affine = nib.load(str(path)).affine if affine is None else affine
    save_nii(path, array, affine=affine)
    return path


def truncated(path):
    truncate(path)
    return path


def emptied(folder):
    for f in sorted(folder.rglob('*'), reverse=True):
        f.unlink() if f.is_file() else f.rmdir()
    return folder


def shifted_affine(path):
    img = nib.load(str(path))
    affine = img.affine.copy()
    affine[0, 3] += 5.0
    save_nii(path, np.asanyarray(img.dataobj), affine=affine)
    return path


NF, AC, AM = 'images/c2.nii.gz', 'labels/c2.nii.gz', 'training/patient001/patient001_frame01'
ROWS = [
    # (id, converter, fault(src) -> named path, regex of the fix)
    ('nifti_folder-truncated-nii', 'nifti_folder', lambda s: truncated(s / NF),
     'damaged.*re-export it'),
    ('nifti_folder-nan', 'nifti_folder', lambda s: nan_in(s / NF), 'NaN or infinite.*re-export'),
    ('nifti_folder-inf', 'nifti_folder', lambda s: nan_in(s / NF, np.inf),
     'NaN or infinite.*re-export'),
    ('nifti_folder-shape-mismatch', 'nifti_folder',
     lambda s: replace_nii(s / AC, label_xyz((12, 10, 4))),
     "does not match.*belongs to this image.*resample it onto the image's grid"),
    ('nifti_folder-affine-mismatch', 'nifti_folder', lambda s: shifted_affine(s / AC),
     "not on the grid of its image.*origin.*resample it onto the image's grid"),
    ('nifti_folder-label-outside-map', 'nifti_folder',
     lambda s: replace_nii(s / AC, np.full((12, 12, 4), 7, np.uint8)),
     r'unknown label id\(s\) \[7\].*allowed are 0-2.*is it a label file of this dataset'),
    ('nifti_folder-float-label', 'nifti_folder',
     lambda s: replace_nii(s / AC, np.full((12, 12, 4), 0.5, np.float32)),
     'must be integer class ids.*is this a label file'),
    ('nifti_folder-empty-source', 'nifti_folder', lambda s: emptied(s) / 'images',
     'SRC must hold images/<case>.nii.gz'),
    ('nifti_folder-duplicate-case', 'nifti_folder',
     lambda s: (save_nii(s / 'images' / 'c2.nii', image_xyz()), s / 'images')[1],
     'two files for case .c2.*keep one'),
    ('nifti_folder-voxel-limit', 'nifti_folder', lambda s: s / 'images' / 'c1.nii.gz',
     'MMSAM_MAX_VOXELS'),
    ('acdc-truncated-nii', 'acdc', lambda s: truncated(s / f'{AM}.nii.gz'),
     'damaged.*re-download or re-extract'),
    ('acdc-label-outside-map', 'acdc',
     lambda s: replace_nii(s / f'{AM}_gt.nii.gz', np.full((12, 12, 4), 4, np.uint8)),
     r'unknown label id\(s\) \[4\].*is it a label file of this dataset'),
    ('acdc-nan', 'acdc', lambda s: nan_in(s / f'{AM}.nii.gz'), 'NaN or infinite.*re-export'),
    ('acdc-empty-source', 'acdc', lambda s: emptied(s / 'training'),
     'holds no patientXXX folder: SRC must be the ACDC release'),
    ('acdc-1-slice-volume', 'acdc', lambda s: (
        replace_nii(s / f'{AM}.nii.gz', image_xyz((12, 12, 1))),
        replace_nii(s / f'{AM}_gt.nii.gz', label_xyz((12, 12, 1), 4)))[0],
     '1 slice.*needs at least 2.*re-extract'),
    ('amos-1-slice-volume', 'amos', lambda s: (
        replace_nii(s / 'imagesTr/amos_0004.nii.gz', image_xyz((12, 12, 1))),
        replace_nii(s / 'labelsTr/amos_0004.nii.gz', label_xyz((12, 12, 1), 16)))[0],
     '1 slice.*needs at least 2.*nifti_folder'),
    ('amos-wrong-dtype-label', 'amos', lambda s: replace_nii(
        s / 'labelsTr/amos_0005.nii.gz', np.full((12, 12, 4), 2.5, np.float32)),
     'must be integer class ids'),
    ('amos-truncated-label', 'amos', lambda s: truncated(s / 'labelsTr' / 'amos_0002.nii.gz'),
     'damaged.*re-download or re-extract'),
    ('amos-affine-mismatch', 'amos', lambda s: shifted_affine(s / 'labelsTr/amos_0003.nii.gz'),
     "not on the image's grid.*re-extract"),
    ('amos-dataset-json-map', 'amos', lambda s: (s / 'dataset.json').write_text(
        json.dumps(dict(labels={'0': 'background', '1': 'x', '17': 'y'}))) and s / 'dataset.json',
     'not the AMOS22 ids 0-15.*is this the AMOS22 release'),
    ('la-h5-missing-key', 'la', lambda s: (rewrite_h5(la_h5(s), label=None), la_h5(s))[1],
     r"lacks dataset\(s\) \['label'\].*re-download"),
    ('la-truncated-h5', 'la', lambda s: truncated(la_h5(s)), 'damaged or not HDF5.*re-download'),
    ('la-nan', 'la', lambda s: (rewrite_h5(la_h5(s), image=np.full((12, 12, 4), np.nan,
                                                                   np.float32)), la_h5(s))[1],
     'NaN/inf.*re-download'),
    ('la-label-outside-map', 'la', lambda s: (rewrite_h5(la_h5(s), label=np.full(
        (12, 12, 4), 2, np.uint8)), la_h5(s))[1], r'label values \[2\] are not 0/1.*is this'),
    ('la-shape-mismatch', 'la', lambda s: (rewrite_h5(la_h5(s), label=np.zeros(
        (12, 12, 3), np.uint8)), la_h5(s))[1], 'of one shape.*re-download'),
    ('synapse-h5-missing-key', 'synapse',
     lambda s: (rewrite_h5(synapse_h5(s), label=None), synapse_h5(s))[1],
     r"lacks dataset\(s\) \['label'\].*re-download"),
    ('synapse-truncated-npz', 'synapse',
     lambda s: truncated(s / 'train_npz' / 'case0005_slice001.npz'),
     'damaged.*re-download or re-extract'),
    ('synapse-label-outside-map', 'synapse', lambda s: (np.savez(
        s / 'train_npz' / 'case0005_slice002.npz', image=np.zeros((16, 16), np.float32),
        label=np.full((16, 16), 12, np.uint8)), s / 'train_npz' / 'case0005_slice002.npz')[1],
     'label id 12 > 8.*use --format btcv'),
    ('synapse-empty-source', 'synapse', lambda s: emptied(s), 'holds neither.*check the path'),
    ('promise12-truncated-raw', 'promise12', lambda s: truncated(s / 'Case00.raw'),
     'truncated or damaged: re-download or re-extract'),
    ('promise12-shape-mismatch', 'promise12', lambda s: (write_mhd(
        s / 'Case00_segmentation.mhd', np.zeros((4, 12, 10), np.uint8)),
        s / 'Case00_segmentation.mhd')[1], 'expected one 3-D shape.*re-extract'),
    ('promise12-label-outside-map', 'promise12', lambda s: (write_mhd(
        s / 'Case00_segmentation.mhd', np.full((4, 12, 12), 3, np.uint8)),
        s / 'Case00_segmentation.mhd')[1], r'label values \[3\].*re-extract'),
    ('qubiq-non-2d-image', 'qubiq', lambda s: replace_nii(
        qubiq_case(s) / 'image.nii.gz', image_xyz((16, 16, 3))), 'is not a 2D image.*re-extract'),
    ('qubiq-mask-shape-mismatch', 'qubiq', lambda s: replace_nii(
        qubiq_case(s, 2) / 'task01_seg02.nii.gz', np.zeros((16, 12), np.uint8)),
     'differs from the image.*re-extract'),
    ('qubiq-truncated-image', 'qubiq', lambda s: truncated(qubiq_case(s, 3) / 'image.nii.gz'),
     'damaged.*re-download or re-extract'),
    # kidney/Training_case01 and kidney/Training/case01 both give the id kidney_Training_case01
    ('qubiq-duplicate-case-id', 'qubiq', lambda s: (shutil.copytree(
        qubiq_case(s), s / 'kidney' / 'Training_case01'), s / 'kidney' / 'Training_case01')[1],
     'both give the id.*rename one'),
    ('lidc-wrong-structure', 'lidc', lambda s: edit_lidc(s, lambda d: list(d.values())),
     'holds a list, not a dict of crops.*Re-download'),
    ('lidc-non-square-image', 'lidc', lambda s: edit_lidc(s, lambda d: {**d, 'LIDC-0003_slice_0': {
        **d['LIDC-0003_slice_0'], 'image': np.zeros((128, 96), np.float32)}}),
     r"mask 0 has shape \(128, 128\), not the image's \(128, 96\).*fix or remove that crop"),
    ('lidc-nan-image', 'lidc', lambda s: edit_lidc(s, lambda d: {**d, 'LIDC-0004_slice_1': {
        **d['LIDC-0004_slice_1'], 'image': np.full((128, 128), np.nan, np.float32)}}),
     'NaN/inf.*fix or remove that crop'),
    ('lidc-wrong-dtype-image', 'lidc', lambda s: edit_lidc(s, lambda d: {**d, 'LIDC-0005_slice_0': {
        **d['LIDC-0005_slice_0'], 'image': np.full((128, 128), 'x')}}),
     'dtype <U1 is not numeric.*fix or remove that crop'),
    ('lidc-empty-pickle', 'lidc', lambda s: edit_lidc(s, lambda d: {}), 'no crops.*re-download'),
]


@pytest.mark.parametrize('name', sorted(SOURCES))
def test_valid_source_converts(tmp_path, name):
    convert = SOURCES[name](tmp_path / 'src')
    convert(tmp_path / 'data')
    assert (tmp_path / 'data' / 'meta.json').is_file()


@pytest.mark.parametrize('row', ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_names_the_file_and_the_fix(tmp_path, monkeypatch, row):
    row_id, name, fault, fix = row
    src = tmp_path / 'src'
    convert = SOURCES[name](src)
    named = fault(src)
    if row_id.endswith('voxel-limit'):
        monkeypatch.setenv('MMSAM_MAX_VOXELS', '100')  # the volumes have 12 * 12 * 4 voxels
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ConversionError) as error:
        convert(tmp_path / 'data')
    message = str(error.value)
    assert str(named) in message, message
    assert re.search(fix, message, flags=re.S | re.I), message
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no output, no staging folder


# --- loaders: a sample damaged after conversion, met mid-epoch through a DataLoader worker ---


def damage_middle(path):
    """Overwrite bytes in the middle of the file (its zip directory stays readable)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle - 40:middle + 40] = b'\x00' * 80
    path.write_bytes(bytes(data))


def drop_key(path, key):
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files if k != key}
    np.savez_compressed(path, **arrays)


SLICE_PIPELINE = [dict(type='LoadNpzSlice'), dict(type='PackSegInputs')]
SAMPLE_PIPELINE = [dict(type='LoadMultiAnnotatorSample'), dict(type='PackMultiAnnotatorInputs')]
LOADER_ROWS = [
    # (id, converter, dataset config, folder of the samples, fault, regex of the fix)
    ('slices-truncated', 'nifti_folder', dict(type='VolumeSliceDataset', pipeline=SLICE_PIPELINE),
     'train_slices', truncate, 're-run the converter'),
    ('slices-damaged-bytes', 'nifti_folder',
     dict(type='VolumeSliceDataset', pipeline=SLICE_PIPELINE), 'train_slices', damage_middle,
     're-run the converter'),
    ('slices-missing-key', 'nifti_folder',
     dict(type='VolumeSliceDataset', pipeline=SLICE_PIPELINE), 'train_slices',
     lambda p: drop_key(p, 'label'), r"lacks key\(s\) \['label'\]"),
    ('slices-deleted', 'nifti_folder', dict(type='VolumeSliceDataset', pipeline=SLICE_PIPELINE),
     'train_slices', lambda p: p.unlink(), r'does not exist; \(re\)run the dataset converter'),
    ('lidc-sample-truncated', 'lidc', dict(type='LIDCDataset', pipeline=SAMPLE_PIPELINE),
     'samples', truncate, 're-run the converter'),
    ('qubiq-sample-damaged', 'qubiq', dict(type='QUBIQKidneyDataset', pipeline=SAMPLE_PIPELINE),
     'samples', damage_middle, 're-run the converter'),
]


@pytest.mark.parametrize('row', LOADER_ROWS, ids=[r[0] for r in LOADER_ROWS])
def test_corrupt_sample_mid_epoch_names_the_file(tmp_path, row):
    import torch
    from mmengine.dataset import pseudo_collate

    from mmsam.registry import DATASETS
    _, name, dataset_cfg, folder, fault, fix = row
    data_root = tmp_path / 'data'
    SOURCES[name](tmp_path / 'src')(data_root)
    dataset = DATASETS.build(dict(dataset_cfg, data_root=str(data_root)))
    files = sorted((data_root / folder).glob('*.npz'))
    assert len(dataset) >= 3 and files
    # A sample in the middle of the epoch (the shuffled order of a real run does not matter).
    index = len(dataset) // 2
    damaged = Path(dataset.get_data_info(index)['img_path'])
    assert damaged in files
    fault(damaged)
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=1,
                                         collate_fn=pseudo_collate)
    seen = 0
    with pytest.raises(Exception) as error:
        for _ in loader:
            seen += 1
    assert seen == index  # the samples before it loaded
    message = str(error.value)
    assert str(damaged) in message, message
    assert re.search(fix, message, flags=re.S | re.I), message
