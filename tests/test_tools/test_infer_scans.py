"""tools/infer.py on scans with a box-prompted multi-hypothesis model (hypotheses, consensus,
agreement in the scan's geometry; NIfTI and MetaImage), and bad scans, prompts and limits:
clear errors naming the file, nothing left in the output folder."""
import json
from pathlib import Path

import cv2
import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from conftest import SAM_MCL_RANDOM_CONFIG as MCL
from conftest import load_script

REPO = Path(__file__).resolve().parents[2]
HSAM = REPO / 'configs' / 'hsam' / 'hsam_vit-tiny_synthetic-abdomen.py'
AFFINE = np.array([[0.0, -0.6, 0.0, 30.0], [0.7, 0.0, 0.0, -12.0], [0.0, 0.0, 2.5, 4.0],
                   [0.0, 0.0, 0.0, 1.0]])  # i -> anterior-posterior, j -> left, 2.5 mm slices


@pytest.fixture(scope='module')
def infer():
    return load_script('tools/infer.py')


def lesion_volume(depth=4, height=96, width=80):
    rng = np.random.default_rng(0)
    volume = (rng.random((depth, height, width)) * 0.2).astype(np.float32)
    volume[:, 30:60, 20:50] += 0.6
    return volume


def save_nifti(path, dhw, affine=AFFINE):
    nib.save(nib.Nifti1Image(np.ascontiguousarray(dhw.transpose(2, 1, 0)), affine), str(path))
    return path


def test_hypotheses_consensus_and_agreement(infer, mcl_checkpoint, tmp_path, capsys):
    volume = lesion_volume()
    scan = save_nifti(tmp_path / 'lesion.nii.gz', volume)
    mha = tmp_path / 'lesion_mha.mha'
    sitk.WriteImage(sitk.ReadImage(str(scan)), str(mha))
    prompts = tmp_path / 'prompts.json'
    boxes = {1: [18, 28, 52, 62], 2: [20, 25, 50, 64]}
    prompts.write_text(json.dumps({'boxes': [{'slice': k, 'box': b} for k, b in boxes.items()]}))
    out = tmp_path / 'out'
    written = infer.main([str(MCL), mcl_checkpoint, str(scan), str(mha), '--out-dir', str(out),
                          '--prompts', str(prompts), '--intensity', 'unit'])
    names = sorted(Path(p).name for p in written)
    for stem in ('lesion', 'lesion_mha'):
        for suffix in ('_agreement.nii.gz', '_consensus.nii.gz', '_hypothesis0.nii.gz',
                       '_hypothesis1.nii.gz', '_hypothesis2.nii.gz'):
            assert stem + suffix in names
    assert len([n for n in names if n.endswith('.png')]) == 4  # both prompted slices, twice
    assert '2/2' in capsys.readouterr().err  # the progress bar over the prompted slices
    load = {name: nib.load(str(out / name)) for name in names if name.endswith('.nii.gz')}
    hyps = np.stack([np.asarray(load[f'lesion_hypothesis{m}.nii.gz'].dataobj)
                     for m in range(3)]).transpose(0, 3, 2, 1)  # (M, D, H, W)
    agreement = np.asarray(load['lesion_agreement.nii.gz'].dataobj).transpose(2, 1, 0)
    consensus = np.asarray(load['lesion_consensus.nii.gz'].dataobj).transpose(2, 1, 0)
    np.testing.assert_allclose(agreement, hyps.mean(0), atol=1e-6)
    np.testing.assert_array_equal(consensus, hyps.sum(0) >= 2)
    assert not hyps[:, [0, 3]].any()  # slices without a box stay empty
    for image in load.values():
        assert image.shape == (80, 96, 4)
        np.testing.assert_allclose(image.affine, AFFINE, atol=1e-6)

    # Each prompted slice as tools/infer.py's .npz sample path gives it (the config's whole
    # test pipeline, loading included, the box given with --box).
    from mmsam.apis import init_model
    from mmsam.registry import TRANSFORMS
    model = init_model(str(MCL), mcl_checkpoint)
    steps = [(t, TRANSFORMS.build(t)) for t in infer.config_test_pipeline(model.cfg)]
    for k, box in boxes.items():
        sample_file = tmp_path / f'slice{k}.npz'
        np.savez(sample_file, image=volume[k], masks=np.zeros((1, 96, 80), np.uint8))
        packed, _ = infer.prepare_npz(str(sample_file), steps, np.asarray(box, np.float32))
        (sample, ) = model.test_step(dict(inputs=[packed['inputs']],
                                          data_samples=[packed['data_samples']]))
        np.testing.assert_array_equal(hyps[:, k], sample.pred_hypotheses.data.numpy())
    # The MetaImage gives the same, in its own (the same) geometry.
    np.testing.assert_array_equal(
        np.asarray(load['lesion_mha_consensus.nii.gz'].dataobj), consensus.transpose(2, 1, 0))
    # Each prompted slice's picture draws its box (BOX_COLOR, exact: drawn without
    # anti-aliasing); the overlay's own colours never are pure red.
    from mmsam.visualization.prompt_drawing import BOX_COLOR
    for k in boxes:
        picture = cv2.cvtColor(cv2.imread(str(out / f'lesion_slice{k:03d}.png')),
                               cv2.COLOR_BGR2RGB)
        assert (picture == np.array(BOX_COLOR, np.uint8)).all(-1).sum() > 4 * 30


def expect_error(infer, argv, capsys, out, *patterns):
    with pytest.raises(SystemExit) as err:
        infer.main(argv)
    assert err.value.code == 2
    message = capsys.readouterr().err
    for pattern in patterns:
        assert pattern in message, message
    assert not out.exists() or not any(out.iterdir()), list(out.iterdir())


def write_series(folder, uid, number, depth=2):
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
    folder.mkdir(exist_ok=True)
    for k in range(depth):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.MediaStorageSOPInstanceUID = generate_uid()
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = 'CT', uid, number
        ds.StudyInstanceUID = ds.FrameOfReferenceUID = '1.2.3'
        ds.InstanceNumber, ds.ImagePositionPatient = k + 1, [0, 0, 2.0 * k]
        ds.ImageOrientationPatient, ds.PixelSpacing = [1, 0, 0, 0, 1, 0], [1, 1]
        ds.Rows = ds.Columns = 16
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, 'MONOCHROME2'
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = np.zeros((16, 16), np.int16).tobytes()
        ds.save_as(str(folder / f's{number}_{k}.dcm'), enforce_file_format=True)


def test_bad_scans_prompts_and_limits(infer, mcl_checkpoint, tmp_path, capsys):
    out = tmp_path / 'out'
    dummy = tmp_path / 'never_read.pth'
    dummy.write_bytes(b'')  # the errors come before any model is built
    hsam = [str(HSAM), str(dummy)]
    broken = tmp_path / 'broken.nii.gz'
    broken.write_bytes(b'\x1f\x8b not really a NIfTI')
    expect_error(infer, [*hsam, str(broken), '--out-dir', str(out)], capsys, out, str(broken),
                 'not a readable NIfTI')
    four_d = tmp_path / 'fmri.nii.gz'  # (I, J, K, T) = (8, 8, 3, 2): 2 time points
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 3, 2), np.float32), AFFINE), str(four_d))
    expect_error(infer, [*hsam, str(four_d), '--out-dir', str(out)], capsys, out, str(four_d),
                 'a 4D image', 'split a 4D series')
    two_series = tmp_path / 'dicom_two'
    write_series(two_series, '1.2.3.4.1', 1)
    write_series(two_series, '1.2.3.4.2', 2)
    expect_error(infer, [*hsam, str(two_series), '--out-dir', str(out)], capsys, out,
                 str(two_series), 'holds 2 DICOM series', 'its own folder')
    scan = save_nifti(tmp_path / 'big.nii.gz', lesion_volume())
    expect_error(infer, [*hsam, str(scan), '--out-dir', str(out), '--max-voxels', '1000'],
                 capsys, out, str(scan), '30,720 voxels, over the limit of 1,000')
    expect_error(infer, [*hsam, str(scan), '--out-dir', str(out), '--box', '1', '1', '5', '5'],
                 capsys, out, '--box / --prompts are for box-prompted models')
    # box-prompted model: no prompts; a box outside the slices; slices outside the volume
    mcl = [str(MCL), mcl_checkpoint, str(scan), '--out-dir', str(out)]
    expect_error(infer, mcl, capsys, out, 'box-prompted model', '--box X0 Y0 X1 Y1')
    prompts = tmp_path / 'prompts.json'
    prompts.write_text(json.dumps({'boxes': [{'slice': 0, 'box': [10, 10, 20, 20]},
                                             {'slices': [1, 3], 'box': [10, 10, 80, 20]}]}))
    expect_error(infer, [*mcl, '--prompts', str(prompts)], capsys, out, str(prompts),
                 'boxes[1]', 'lies outside the 80 x 96', 'x1 <= 79')
    expect_error(infer, [*mcl, '--box', '1', '1', '5', '5', '--slices', '2:9'], capsys, out,
                 'slices 2:9 are not within the 4 slices')
    prompts.write_text('{"boxes": [{"slice": 0, "bbox": [1, 2, 3, 4]}]}')
    expect_error(infer, [*mcl, '--prompts', str(prompts)], capsys, out, 'boxes[0]', '"box"')


def test_a_failure_while_writing_leaves_nothing(infer, mcl_checkpoint, tmp_path, capsys,
                                                monkeypatch):
    import mmsam.apis.scan_outputs as scan_outputs
    scan = save_nifti(tmp_path / 'lesion.nii.gz', lesion_volume(depth=2))
    calls = []

    def failing(path, volume, geometry, real=scan_outputs.write_nifti):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(f'{path}: disk full')
        return real(path, volume, geometry)

    monkeypatch.setattr(scan_outputs, 'write_nifti', failing)
    out = tmp_path / 'out'
    expect_error(infer, [str(MCL), mcl_checkpoint, str(scan), '--out-dir', str(out), '--box',
                         '18', '28', '52', '62'], capsys, out, str(scan), 'disk full')
    assert len(calls) == 3  # two files were complete, and are gone with the staging folder


def test_a_folder_of_nifti_files_stands_for_its_files(infer, mcl_checkpoint, tmp_path, capsys):
    folder = tmp_path / 'scans'
    folder.mkdir()
    for name in ('a', 'b'):
        save_nifti(folder / f'{name}.nii.gz', lesion_volume(depth=2))
    (folder / 'notes.txt').write_text('not a scan')
    out = tmp_path / 'out'
    written = infer.main([str(MCL), mcl_checkpoint, str(folder), '--out-dir', str(out),
                          '--box', '18', '28', '52', '62', '--intensity', 'unit'])
    names = {Path(p).name for p in written}
    assert {'a_consensus.nii.gz', 'b_consensus.nii.gz'} <= names
    capsys.readouterr()
    # a folder with neither a DICOM series nor volume files: the message says what to give
    pictures = tmp_path / 'pictures'
    pictures.mkdir()
    (pictures / 'x.png').write_bytes(b'')
    dummy = tmp_path / 'never_read.pth'
    dummy.write_bytes(b'')
    out = tmp_path / 'out2'
    expect_error(infer, [str(HSAM), str(dummy), str(pictures), '--out-dir', str(out)], capsys,
                 out, str(pictures), 'no DICOM series and no NIfTI (.nii, .nii.gz)',
                 'a folder of volume files')
