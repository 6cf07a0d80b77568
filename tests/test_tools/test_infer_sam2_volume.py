"""tools/infer.py with a SAM2VolumeSegmentor: --box X0 Y0 X1 Y1 --slices K on a NIfTI scan gives
the mask of mmsam.apis.inference_scan_sam2 in the scan's geometry; bad prompts are named."""
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import load_script

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / 'configs/medsam2/medsam2_hiera-tiny_synthetic-abdomen-3d.py'
AFFINE = np.array([[0.0, -0.7, 0.0, 30.0], [0.8, 0.0, 0.0, -12.0], [0.0, 0.0, 2.5, 4.0],
                   [0.0, 0.0, 0.0, 1.0]])


@pytest.fixture(scope='module')
def infer():
    return load_script('tools/infer.py')


@pytest.fixture(scope='module')
def tiny_checkpoint(tmp_path_factory):
    """Seeded random weights of the tiny config's model in the Runner's checkpoint layout."""
    from mmsam.apis import init_model
    torch.manual_seed(0)
    model = init_model(str(CONFIG), None)
    path = tmp_path_factory.mktemp('medsam2') / 'tiny.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return str(path)


def save_scan(path, depth=5, size=100):
    rng = np.random.default_rng(0)
    z, y, x = np.mgrid[:depth, :size, :size]
    inside = ((z - 2) / 3.0) ** 2 + ((y - 40) / 20.0) ** 2 + ((x - 50) / 25.0) ** 2 < 1
    dhw = np.clip(0.2 + 0.6 * inside + 0.05 * rng.standard_normal(inside.shape), 0, 1)
    nib.save(nib.Nifti1Image(np.ascontiguousarray(dhw.transpose(2, 1, 0)).astype(np.float32),
                             AFFINE), str(path))
    return path


def test_box_on_key_slice_writes_the_mask_in_the_scan_geometry(infer, tiny_checkpoint,
                                                                tmp_path):
    from mmsam.apis import inference_scan_sam2, init_model
    scan = save_scan(tmp_path / 'organ.nii.gz')
    out = tmp_path / 'out'
    written = infer.main([str(CONFIG), tiny_checkpoint, str(scan), '--out-dir', str(out),
                          '--box', '25', '20', '75', '60', '--slices', '2',
                          '--intensity', 'unit'])
    labels_file = [p for p in written if p.endswith('.nii.gz')]
    assert len(labels_file) == 1
    image = nib.load(labels_file[0])
    np.testing.assert_allclose(image.affine, AFFINE, atol=1e-5)
    labels = np.asarray(image.dataobj).transpose(2, 1, 0)
    model = init_model(str(CONFIG), tiny_checkpoint)
    expected = inference_scan_sam2(model, str(scan), [25, 20, 75, 60], 2, intensity='unit')
    np.testing.assert_array_equal(labels, expected.labels)
    assert labels.shape == (5, 100, 100)


@pytest.mark.parametrize('options,message', [
    (['--box', '25', '20', '75', '60'], '--slices K'),
    (['--box', '25', '20', '75', '60', '--slices', '1:3'], 'one key slice K'),
    (['--box', '25', '20', '75', '60', '--slices', '7'], 'key slice 7'),
    (['--box', '25', '20', '175', '60', '--slices', '2'], 'must lie in the slices'),
])
def test_bad_key_slice_prompts_are_named(infer, tiny_checkpoint, tmp_path, capsys, options,
                                         message):
    scan = save_scan(tmp_path / 'organ.nii.gz')
    with pytest.raises(SystemExit):
        infer.main([str(CONFIG), tiny_checkpoint, str(scan), '--out-dir', str(tmp_path / 'o'),
                    '--intensity', 'unit', *options])
    assert message in capsys.readouterr().err
    assert not (tmp_path / 'o').exists()
