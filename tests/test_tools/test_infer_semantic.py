"""tools/infer.py with semantic models: the demo's H-SAM (2D, trained 2 iterations here) on a test
volume, a training slice and an image; SAMed-DConv 3D on a tiny volume by sliding window."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import expect_error, load_script, train_shrunk_synthetic_abdomen

pytestmark = pytest.mark.slow  # tools run end to end (see pytest.ini)

REPO = Path(__file__).resolve().parents[2]
HSAM = REPO / 'configs' / 'hsam' / 'hsam_vit-tiny_synthetic-abdomen.py'
DCONV_3D = REPO / 'configs' / 'samed' / 'samed-dconv_vit-tiny_synthetic-abdomen-3d.py'
MASKSAM_3D = REPO / 'configs' / 'masksam' / 'masksam_vit-tiny_synthetic-abdomen-3d.py'
CLASSES = ('background', 'spleen', 'right_kidney', 'left_kidney', 'gallbladder', 'liver',
           'stomach', 'aorta', 'pancreas')


@pytest.fixture(scope='module')
def infer():
    return load_script('tools/infer.py')


@pytest.fixture(scope='module')
def hsam_run(tmp_path_factory):
    """The demo's H-SAM trained for 2 iterations by tools/train.py: (checkpoint, data root)."""
    return train_shrunk_synthetic_abdomen(HSAM, tmp_path_factory.mktemp('hsam_run'),
                                          timeout=300)


def pipeline_predictions(checkpoint, data_root, split):
    """What tools/test.py predicts for every sample of a split: the config's dataset, test
    pipeline and the model's test_step, as {(case, slice): (H, W) prediction}."""
    from mmengine.config import Config

    from mmsam.apis import init_model
    from mmsam.registry import DATASETS
    cfg = Config.fromfile(str(HSAM))
    model = init_model(cfg, str(checkpoint))
    dataset = cfg.test_dataloader.dataset
    dataset = DATASETS.build(dict(dataset, data_root=str(data_root), split=split,
                                  generator=dict(dataset.generator, num_train_cases=1,
                                                 num_test_cases=1, depth=8)))
    predictions = {}
    with torch.no_grad():
        for index in range(len(dataset)):
            packed = dataset[index]
            (sample, ) = model.test_step(dict(inputs=[packed['inputs']],
                                              data_samples=[packed['data_samples']]))
            key = (sample.metainfo.get('case_id'), sample.metainfo.get('slice_index'))
            predictions[key] = sample.pred_sem_seg.data[0].numpy()
    return predictions


def test_hsam_on_a_test_volume_a_training_slice_and_an_image(infer, hsam_run, tmp_path, capsys):
    checkpoint, data_root = hsam_run
    volume = data_root / 'test_volumes' / 'case0001.npz'
    train_slice = data_root / 'train_slices' / 'case0000_slice003.npz'
    image = np.full((100, 150), 60, np.uint8)  # not the model's 128 x 128
    image[30:70, 40:110] = 200
    png = tmp_path / 'scan.png'
    cv2.imwrite(str(png), image)
    out = tmp_path / 'out'
    written = infer.main([str(HSAM), str(checkpoint), str(volume), str(train_slice), str(png),
                          '--out-dir', str(out), '--batch-size', '3', '--cfg-options',
                          f'test_dataloader.dataset.data_root={data_root}'])
    captured = capsys.readouterr()
    assert f'{volume}: segmenting slice by slice' in captured.err
    assert '8/8' in captured.err  # the progress bar over the slices
    names = sorted(Path(p).name for p in written)
    assert names[:3] == ['case0000_slice003.png', 'case0000_slice003_pred.png',
                         'case0001_pred.npz']
    assert len([n for n in names if n.startswith('case0001_slice')]) == 2
    assert names[-2:] == ['scan.png', 'scan_pred.png']
    assert all(p in captured.out for p in written)

    # The volume, slice by slice, as tools/test.py predicts it.
    expected = pipeline_predictions(checkpoint, data_root, 'test')
    pred = np.load(out / 'case0001_pred.npz')
    assert pred['pred'].shape == (8, 128, 128) and pred['pred'].dtype == np.uint8
    np.testing.assert_allclose(pred['spacing'], np.load(volume)['spacing'])
    for k in range(8):
        np.testing.assert_array_equal(pred['pred'][k], expected[('case0001', k)])
    # The training slice as the test pipeline predicts it.
    expected = pipeline_predictions(checkpoint, data_root, 'train')
    label_map = cv2.imread(str(out / 'case0000_slice003_pred.png'), cv2.IMREAD_UNCHANGED)
    assert label_map.dtype == np.uint8 and label_map.shape == (128, 128)
    np.testing.assert_array_equal(label_map, expected[('case0000', 3)])

    # Pictures: ground truth and prediction side by side (both have labels), >= 384 px panels;
    # the image alone (no label), its label map at the image's own size.
    assert cv2.imread(str(out / 'case0000_slice003.png')).shape[1] >= 2 * 384
    volume_picture = next(p for p in written if Path(p).name.startswith('case0001_slice'))
    assert cv2.imread(volume_picture).shape[1] >= 2 * 384
    picture = cv2.imread(str(out / 'scan.png'))
    assert 384 <= picture.shape[1] < 2 * 384
    assert cv2.imread(str(out / 'scan_pred.png'), cv2.IMREAD_UNCHANGED).shape == (100, 150)


def test_inference_volume_reads_files_and_matches_the_2d_path(hsam_run):
    from mmsam.apis import inference_model, inference_volume, init_model
    checkpoint, data_root = hsam_run
    model = init_model(str(HSAM), str(checkpoint))
    assert tuple(model.dataset_meta['classes']) == CLASSES  # from the training run
    path = str(data_root / 'test_volumes' / 'case0001.npz')
    labels = inference_volume(model, path, batch_size=5)
    image = np.load(path)['image']
    np.testing.assert_array_equal(labels, inference_volume(model, image))
    # Another size than the model's input: fitted in by the data preprocessor and back.
    small = cv2.resize(image[4], (96, 80), interpolation=cv2.INTER_LINEAR)
    assert inference_model(model, small).pred_sem_seg.data.shape == (1, 80, 96)
    with pytest.raises(ValueError, match='expected a .D, H, W. volume'):
        inference_volume(model, image[0])


def write_volume(path, shape=(6, 96, 112), label=False, spacing=True):
    rng = np.random.default_rng(0)
    image = (0.2 + 0.1 * rng.random(shape)).astype(np.float32)
    image[:, 30:60, 40:80] += 0.5
    arrays = dict(image=image)
    if spacing:
        arrays['spacing'] = np.array([3.0, 1.5, 1.5])
    if label:
        lab = np.zeros(shape, np.uint8)
        lab[:, 30:60, 40:80] = 5
        arrays['label'] = lab
    np.savez(path, **arrays)


def tiny_data_root(root):
    """A data root holding only meta.json with the CT statistics the 3D pipeline normalises by."""
    root.mkdir(parents=True, exist_ok=True)
    meta = dict(classes=list(CLASSES), intensity='unit',
                ct_foreground=dict(mean=0.5, std=0.2, percentile_00_5=0.0, percentile_99_5=1.0))
    (root / 'meta.json').write_text(json.dumps(meta))
    return root


@pytest.fixture(scope='module')
def random_3d_checkpoints(tmp_path_factory):
    """Random weights of the 3D configs in the Runner's checkpoint layout."""
    from mmsam.apis import init_model
    paths = {}
    for config in (DCONV_3D, MASKSAM_3D):
        torch.manual_seed(0)
        model = init_model(str(config))
        path = tmp_path_factory.mktemp('ckpt3d') / f'{config.stem}.pth'
        torch.save(dict(meta=dict(dataset_meta=dict(classes=CLASSES)),
                        state_dict=model.state_dict()), path)
        paths[config] = path
    return paths


# Windows over a (6, 96, 112) volume at step 0.5 (nnU-Net's rule, by hand): SAMed-DConv's
# (4, 128, 128) window on the zero-padded (6, 128, 128): 2 x 1 x 1; MaskSAM's (4, 64, 64):
# 2 x 2 x 3.
@pytest.mark.parametrize('config,windows', [(DCONV_3D, 2), (MASKSAM_3D, 12)],
                         ids=['samed-dconv', 'masksam'])
def test_3d_model_on_a_volume_by_sliding_window(infer, random_3d_checkpoints, config, windows,
                                                tmp_path, capsys):
    from mmsam.apis import inference_volume, init_model
    checkpoint = random_3d_checkpoints[config]
    data_root = tiny_data_root(tmp_path / 'data')
    volume = tmp_path / 'patient.npz'
    write_volume(volume, label=True)
    out = tmp_path / 'out'
    written = infer.main([str(config), str(checkpoint), str(volume), '--out-dir', str(out),
                          '--pictures', '1', '--cfg-options',
                          f'test_dataloader.dataset.data_root={data_root}'])
    err = capsys.readouterr().err
    assert 'segmenting by sliding window' in err
    assert f'{windows}/{windows}' in err  # the progress bar over the windows
    assert [Path(p).name for p in written][0] == 'patient_pred.npz'
    assert len(written) == 2 and Path(written[1]).name.startswith('patient_slice')
    pred = np.load(out / 'patient_pred.npz')['pred']
    assert pred.shape == (6, 96, 112) and pred.dtype == np.uint8
    model = init_model(str(config), str(checkpoint),
                       cfg_options={'test_dataloader.dataset.data_root': str(data_root)})
    np.testing.assert_array_equal(pred, inference_volume(model, str(volume)))
    # An array of the same intensities gives the same labels (pipeline without the loading).
    np.testing.assert_array_equal(pred, inference_volume(model, np.load(volume)['image']))
    assert cv2.imread(written[1]).shape[1] >= 2 * 384  # ground truth and prediction


def test_3d_model_needs_the_ct_statistics(infer, random_3d_checkpoints, tmp_path, capsys):
    checkpoint = random_3d_checkpoints[DCONV_3D]
    volume = tmp_path / 'patient.npz'
    write_volume(volume)  # no label: the test pipeline loads without one
    out = tmp_path / 'out'
    missing_root = tmp_path / 'nowhere'
    argv = [str(DCONV_3D), str(checkpoint), str(volume), '--out-dir', str(out), '--cfg-options',
            f'test_dataloader.dataset.data_root={missing_root}']
    with pytest.raises(SystemExit):
        infer.main(argv)
    message = capsys.readouterr().err
    assert str(volume) in message and 'NormalizeIntensity3D' in message
    assert str(missing_root / 'meta.json') in message and '--data-meta' in message
    # The statistics given as the training data's meta.json.
    meta = tiny_data_root(tmp_path / 'train_data') / 'meta.json'
    written = infer.main([*argv[:5], '--data-meta', str(meta), '--pictures', '0', *argv[5:]])
    assert [Path(p).name for p in written] == ['patient_pred.npz']
    assert np.load(out / 'patient_pred.npz')['pred'].shape == (6, 96, 112)


def test_semantic_errors_name_the_input(infer, random_3d_checkpoints, hsam_run, tmp_path,
                                        capsys):
    checkpoint, _ = hsam_run
    out = ['--out-dir', str(tmp_path / 'out')]
    no_image = tmp_path / 'masks_only.npz'
    np.savez(no_image, masks=np.zeros((2, 8, 8), np.uint8))
    expect_error(infer, [str(HSAM), str(checkpoint), str(no_image), *out], capsys,
                 str(no_image), 'no array named image', 'masks')
    four_d = tmp_path / 'four_d.npz'
    np.savez(four_d, image=np.zeros((2, 2, 8, 8), np.float32))
    expect_error(infer, [str(HSAM), str(checkpoint), str(four_d), *out], capsys,
                 str(four_d), 'shape (2, 2, 8, 8)')
    corrupt = tmp_path / 'corrupt.npz'
    corrupt.write_bytes(b'not a zip')
    expect_error(infer, [str(HSAM), str(checkpoint), str(corrupt), *out], capsys,
                 str(corrupt), 'not an .npz')
    png = tmp_path / 'img.png'
    cv2.imwrite(str(png), np.zeros((32, 32), np.uint8))
    expect_error(infer, [str(HSAM), str(checkpoint), str(png), *out, '--box', '1', '1', '5',
                         '5'], capsys, '--box is for multi-hypothesis models', 'SAMSegmentor')
    # 2D inputs to a 3D model; a volume without spacing.
    dconv = str(random_3d_checkpoints[DCONV_3D])
    expect_error(infer, [str(DCONV_3D), dconv, str(png), *out], capsys, str(png),
                 'segments volumes')
    one_slice = tmp_path / 'one_slice.npz'
    np.savez(one_slice, image=np.zeros((16, 16), np.float32))
    expect_error(infer, [str(DCONV_3D), dconv, str(one_slice), *out], capsys, str(one_slice),
                 'a 2D slice (16, 16)')
    no_spacing = tmp_path / 'no_spacing.npz'
    write_volume(no_spacing, spacing=False)
    expect_error(infer, [str(DCONV_3D), dconv, str(no_spacing), *out], capsys, str(no_spacing),
                 'no spacing array')
    assert not (tmp_path / 'out').exists()


# Scans: NIfTI and DICOM in, label NIfTI in the scan's geometry out ---------------------------
def oblique_affine():
    """Anisotropic (0.8, 1.1, 2.5) mm voxels, x flipped, rotated 0.3 rad about x, shifted."""
    c, s = np.cos(0.3), np.sin(0.3)
    rotation = np.array([[-1.0, 0, 0], [0, c, -s], [0, s, c]])
    affine = np.eye(4)
    affine[:3, :3] = rotation * np.array([0.8, 1.1, 2.5])[None]
    affine[:3, 3] = (12.5, -40.0, 7.25)
    return affine


def hu_volume(data_root):
    """The synthetic test case as integer HU (D, H, W): Synapse's window inverted."""
    image = np.load(data_root / 'test_volumes' / 'case0001.npz')['image']
    return np.round(-125.0 + 400.0 * image).astype(np.int16)


def write_nifti_scan(path, dhw, affine):
    import nibabel as nib
    path.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(np.ascontiguousarray(dhw.transpose(2, 1, 0)), affine)
    image.set_qform(affine, code=1)
    nib.save(image, str(path))


def write_dicom_series(folder, dhw, affine, series_uid=None, first_number=1):
    """One CT series (pydicom) with the geometry of a NIfTI affine (RAS -> DICOM's LPS)."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
    folder.mkdir(parents=True, exist_ok=True)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    row_dir, col_dir = lps[:3, 0] / spacing[0], lps[:3, 1] / spacing[1]
    series_uid = series_uid or generate_uid()
    study_uid, frame_uid = generate_uid(), generate_uid()
    for k, pixels in enumerate(dhw):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientID = 'CT', 'anon'
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.FrameOfReferenceUID, ds.SeriesNumber = frame_uid, first_number
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [f'{v:.6f}' for v in (lps @ [0, 0, k, 1])[:3]]
        ds.ImageOrientationPatient = [f'{v:.8f}' for v in (*row_dir, *col_dir)]
        ds.PixelSpacing = [f'{spacing[1]:.6f}', f'{spacing[0]:.6f}']  # rows, columns
        ds.SliceThickness = f'{spacing[2]:.6f}'
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, 'MONOCHROME2'
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = np.ascontiguousarray(pixels.astype(np.int16)).tobytes()
        ds.save_as(str(folder / f'{first_number:02d}_{k:03d}.dcm'), enforce_file_format=True)


def synapse_converted_predictions(checkpoint, nifti_src, work):
    """The scan converted by tools/dataset_converters/synapse.py (btcv), predicted through the
    config's test pipeline on SynapseDataset, as tools/test.py would: (D, H, W)."""
    from mmengine.config import Config

    from mmsam.apis import init_model
    from mmsam.registry import DATASETS
    converter = load_script('tools/dataset_converters/synapse.py')
    dst = work / 'synapse'
    with pytest.warns(UserWarning, match='lacks'):
        converter.convert_synapse(str(nifti_src), str(dst), fmt='btcv', log=lambda *_: None)
    cfg = Config.fromfile(str(HSAM))
    model = init_model(cfg, str(checkpoint))
    dataset = DATASETS.build(dict(type='SynapseDataset', data_root=str(dst), split='test',
                                  test_mode=True, pipeline=cfg.test_dataloader.dataset.pipeline))
    slices = {}
    with torch.no_grad():
        for index in range(len(dataset)):
            packed = dataset[index]
            (sample, ) = model.test_step(dict(inputs=[packed['inputs']],
                                              data_samples=[packed['data_samples']]))
            assert sample.metainfo['case_id'] == 'case0001'
            slices[sample.metainfo['slice_index']] = sample.pred_sem_seg.data[0].numpy()
    return np.stack([slices[k] for k in range(len(slices))])


def test_nifti_and_dicom_scans_keep_their_geometry(infer, hsam_run, tmp_path, capsys):
    import nibabel as nib
    checkpoint, data_root = hsam_run
    hu, affine = hu_volume(data_root), oblique_affine()
    src = tmp_path / 'btcv'
    write_nifti_scan(src / 'img' / 'img0001.nii.gz', hu, affine)  # a TransUNet test case
    write_nifti_scan(src / 'label' / 'label0001.nii.gz', np.zeros_like(hu), affine)
    write_nifti_scan(src / 'img' / 'img0005.nii.gz', hu[:2], affine)  # a training case
    write_nifti_scan(src / 'label' / 'label0005.nii.gz', np.zeros_like(hu[:2]), affine)
    expected = synapse_converted_predictions(checkpoint, src, tmp_path)
    assert expected.shape == hu.shape and len(np.unique(expected)) > 1

    dicom = tmp_path / 'series_0001'
    write_dicom_series(dicom, hu, affine)
    out = tmp_path / 'out'
    written = infer.main([str(HSAM), str(checkpoint), str(src / 'img' / 'img0001.nii.gz'),
                          str(dicom), '--out-dir', str(out), '--batch-size', '3',
                          '--picture-slices', '2', '5', '--cfg-options',
                          f'test_dataloader.dataset.data_root={data_root}'])
    assert sorted(Path(p).name for p in written) == [
        'img0001_label.nii.gz', 'img0001_slice002.png', 'img0001_slice005.png',
        'series_0001_label.nii.gz', 'series_0001_slice002.png', 'series_0001_slice005.png']
    assert '8/8' in capsys.readouterr().err
    scan = nib.load(str(src / 'img' / 'img0001.nii.gz'))
    label = nib.load(str(out / 'img0001_label.nii.gz'))
    assert label.shape == scan.shape and label.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(label.affine, scan.affine)
    np.testing.assert_array_equal(label.header.get_qform(), scan.header.get_qform())
    np.testing.assert_array_equal(np.asarray(label.dataobj).transpose(2, 1, 0), expected)

    # The DICOM series: same voxels in world space (its slice order is GDCM's, along the
    # normal), so both are compared in their closest canonical (RAS) orientation.
    from_dicom = nib.load(str(out / 'series_0001_label.nii.gz'))
    canonical_scan, canonical_dicom = (nib.as_closest_canonical(img) for img in (label,
                                                                                from_dicom))
    np.testing.assert_allclose(canonical_dicom.affine, canonical_scan.affine, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(canonical_dicom.dataobj),
                                  np.asarray(canonical_scan.dataobj))
    # inference_volume gives the same labels from Python.
    from mmsam.apis import inference_volume, init_model
    model = init_model(str(HSAM), str(checkpoint))
    np.testing.assert_array_equal(inference_volume(model, str(dicom)),
                                  np.asarray(from_dicom.dataobj).transpose(2, 1, 0))


def test_3d_model_on_a_nifti_scan(infer, random_3d_checkpoints, tmp_path, capsys):
    """A 3D model on a NIfTI scan by its sliding window: the labels of the same volume given as
    an mmsam .npz (loaded by the test pipeline's LoadVolume), in the scan's geometry."""
    import nibabel as nib
    checkpoint = random_3d_checkpoints[DCONV_3D]
    data_root = tiny_data_root(tmp_path / 'data')
    volume = tmp_path / 'patient.npz'
    write_volume(volume)  # spacing (3, 1.5, 1.5)
    image = np.load(volume)['image']
    affine = np.diag([-1.5, 1.5, 3.0, 1.0])
    scan = tmp_path / 'patient_ct.nii.gz'
    nib.save(nib.Nifti1Image(image.transpose(2, 1, 0), affine), str(scan))
    out = tmp_path / 'out'
    options = ['--pictures', '0', '--cfg-options', f'test_dataloader.dataset.data_root={data_root}']
    written = infer.main([str(DCONV_3D), str(checkpoint), str(scan), str(volume), '--out-dir',
                          str(out), '--intensity', 'unit', *options])
    assert sorted(Path(p).name for p in written) == ['patient_ct_label.nii.gz',
                                                     'patient_pred.npz']
    assert capsys.readouterr().err.count('2/2') == 2  # the windows, for each input
    label = nib.load(str(out / 'patient_ct_label.nii.gz'))
    np.testing.assert_array_equal(label.affine, affine)
    np.testing.assert_array_equal(np.asarray(label.dataobj).transpose(2, 1, 0),
                                  np.load(out / 'patient_pred.npz')['pred'])
