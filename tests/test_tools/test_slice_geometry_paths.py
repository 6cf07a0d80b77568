"""One slice geometry for tools/test.py, tools/infer.py and tools/deployment/onnx_infer.py.

A 2D model given slices of another size than its input (smaller and padded, larger and
shrunk, non-square, resized) labels the same volume voxel for voxel through the three tools,
because all three run the config's test pipeline and its ``SAMDataPreProcessor``.
"""
import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, load_script

pytestmark = pytest.mark.slow

DEMO = REPO_ROOT / 'configs' / 'samed' / 'samed_vit-tiny_synthetic-abdomen.py'
CLASSES = ['background', 'liver', 'tumour']
# (data_preprocessor.fit, NIfTI (x, y, z) shape): slices are (y, x), the model's input 128.
CASES = {
    'padded-non-square': ('pad', (96, 80, 5)),
    'larger-shrunk': ('pad', (176, 150, 4)),
    'resized': ('resize', (64, 64, 5)),
    'longest-side': ('longest_side', (96, 80, 5)),
}


def write_nifti_pairs(folder, shape, cases=('case01', 'case02')):
    """CT-like NIfTI pairs with two structures, the x axis flipped in the affine."""
    rng = np.random.default_rng(0)
    (folder / 'images').mkdir(parents=True)
    (folder / 'labels').mkdir()
    x, y, _ = shape
    for case in cases:
        hu = rng.normal(0, 30, shape).astype(np.float32)
        label = np.zeros(shape, np.uint8)
        label[x // 5:x // 2, y // 4:3 * y // 4] = 1
        label[x // 2:4 * x // 5, y // 3:y // 2, 1:] = 2
        hu += np.where(label == 1, 120, np.where(label == 2, 240, 0)).astype(np.float32)
        affine = np.diag([-0.8, 0.8, 2.5, 1.0])
        nib.save(nib.Nifti1Image(hu, affine), str(folder / 'images' / f'{case}.nii.gz'))
        nib.save(nib.Nifti1Image(label, affine), str(folder / 'labels' / f'{case}.nii.gz'))


def write_config(path, data_root, fit):
    """The tiny SAMed demo on the converted data, as docs/own_data.md writes one."""
    path.write_text(f'''_base_ = ['{DEMO}']
data_root = '{data_root}'
loader = dict(num_workers=0, persistent_workers=False, batch_size=3)
train_dataloader = dict(loader, dataset=dict(
    _delete_=True, type='VolumeSliceDataset', data_root=data_root, split='train',
    pipeline={{{{_base_.train_pipeline}}}}))
val_dataloader = dict(loader, dataset=dict(
    _delete_=True, type='VolumeSliceDataset', data_root=data_root, split='test',
    test_mode=True, pipeline={{{{_base_.test_pipeline}}}}))
test_dataloader = val_dataloader
model = dict(data_preprocessor=dict(fit='{fit}'), decode_head=dict(num_classes=3))
''')


@pytest.fixture(scope='module')
def tools():
    return dict(test=load_script('tools/test.py'), infer=load_script('tools/infer.py'),
                export=load_script('tools/deployment/pytorch2onnx.py'),
                onnx_infer=load_script('tools/deployment/onnx_infer.py'),
                convert=load_script('tools/dataset_converters/nifti_folder.py'))


def random_checkpoint(config, path):
    """A seeded random-weight model of ``config`` saved as tools/train.py saves one."""
    from mmsam.apis import init_model
    torch.manual_seed(0)
    model = init_model(str(config))
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=dict(
        classes=CLASSES))), path)
    return path


@pytest.mark.parametrize('case', list(CASES))
def test_test_infer_and_onnx_label_the_same_voxels(tools, case, tmp_path, capsys):
    fit, shape = CASES[case]
    write_nifti_pairs(tmp_path / 'nifti', shape)
    data_root = tmp_path / 'data'
    tools['convert'].main([str(tmp_path / 'nifti'), str(data_root), '--test-cases', 'case02',
                           '--classes', *CLASSES])
    config = tmp_path / 'config.py'
    write_config(config, data_root, fit)
    checkpoint = random_checkpoint(config, tmp_path / 'random.pth')

    tools['test'].main([str(config), str(checkpoint), '--work-dir', str(tmp_path / 'work'),
                        '--out', str(tmp_path / 'preds')])
    tested = np.load(tmp_path / 'preds' / 'case02.npz')['pred']  # (z, y, x)
    assert tested.shape == shape[::-1]
    assert len(np.unique(tested)) >= 2  # the random model is not constant: a real check

    scan = str(tmp_path / 'nifti' / 'images' / 'case02.nii.gz')
    tools['infer'].main([str(config), str(checkpoint), scan, '--out-dir', str(tmp_path / 'pt')])
    inferred = np.asarray(nib.load(tmp_path / 'pt' / 'case02_label.nii.gz').dataobj)
    np.testing.assert_array_equal(inferred.transpose(2, 1, 0), tested)

    tools['export'].main([str(config), str(checkpoint), '--out', str(tmp_path / 'onnx')])
    tools['onnx_infer'].main([str(tmp_path / 'onnx'), scan, '--out-dir', str(tmp_path / 'ox')])
    exported = np.asarray(nib.load(tmp_path / 'ox' / 'case02_label.nii.gz').dataobj)
    np.testing.assert_array_equal(exported.transpose(2, 1, 0), tested)
    capsys.readouterr()


def test_another_fit_rule_moves_the_labels(tools, tmp_path):
    """The check above can fail: the same weights under another rule label other voxels."""
    from mmsam.apis import inference_model, init_model
    config = tmp_path / 'config.py'
    write_config(config, tmp_path, 'pad')
    checkpoint = random_checkpoint(config, tmp_path / 'random.pth')
    image = np.random.default_rng(1).random((80, 96)).astype(np.float32)
    labels = {}
    for fit in ('pad', 'resize', 'longest_side'):
        model = init_model(str(config), str(checkpoint),
                           cfg_options={'model.data_preprocessor.fit': fit})
        labels[fit] = inference_model(model, image).pred_sem_seg.data[0].numpy()
        assert labels[fit].shape == (80, 96)
    assert (labels['pad'] != labels['resize']).mean() > 0.05
    assert (labels['pad'] != labels['longest_side']).mean() > 0.05
