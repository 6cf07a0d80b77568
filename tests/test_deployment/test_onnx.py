"""ONNX export (tools/deployment/pytorch2onnx.py) and onnxruntime inference
(tools/deployment/onnx_infer.py) against the PyTorch models: H-SAM with LoRA trained two
iterations, SAMed with LoRA (random non-zero updates), box-prompted SAM-MCL."""
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import SAM_MCL_RANDOM_CONFIG, load_script, train_shrunk_synthetic_abdomen

pytestmark = pytest.mark.slow  # tools run end to end (see pytest.ini)

REPO = Path(__file__).resolve().parents[2]
HSAM = REPO / 'configs' / 'hsam' / 'hsam_vit-tiny_synthetic-abdomen.py'
SAMED = REPO / 'configs' / 'samed' / 'samed_vit-tiny_synthetic-abdomen.py'
LORA = ['model.backbone.adapter._delete_=True', 'model.backbone.adapter.type=LoRA',
        'model.backbone.adapter.rank=4']


@pytest.fixture(scope='module')
def tools():
    return (load_script('tools/deployment/pytorch2onnx.py'),
            load_script('tools/deployment/onnx_infer.py'), load_script('tools/infer.py'))


@pytest.fixture(scope='module')
def hsam_lora_run(tmp_path_factory):
    """H-SAM tiny with a LoRA encoder, trained 2 iterations by tools/train.py."""
    return train_shrunk_synthetic_abdomen(HSAM, tmp_path_factory.mktemp('hsam_lora'), *LORA)


def assert_parity(torch_logits, onnx_logits, binary=False):
    """max |diff| <= 1e-3 and the same decision on >= 99.9% of pixels."""
    torch_logits, onnx_logits = (torch.as_tensor(x) for x in (torch_logits, onnx_logits))
    assert torch_logits.shape == onnx_logits.shape
    diff = (torch_logits - onnx_logits).abs().max().item()
    if binary:
        same = (torch_logits > 0) == (onnx_logits > 0)
    else:
        same = torch_logits.argmax(1) == onnx_logits.argmax(1)
    agreement = same.float().mean().item()
    print(f'onnx parity {tuple(torch_logits.shape)}: max abs diff {diff:.3g}, same decision on '
          f'{100 * agreement:.3f}% of pixels')
    assert diff <= 1e-3 and agreement >= 0.999


def lora_cfg(config, data_root=None):
    from mmengine.config import Config
    cfg = Config.fromfile(str(config))
    cfg.model.backbone.adapter = dict(type='LoRA', rank=4)
    if data_root is not None:
        cfg.merge_from_dict({'test_dataloader.dataset.data_root': str(data_root)})
    return cfg


def test_hsam_with_trained_lora(tools, hsam_lora_run, tmp_path):
    import nibabel as nib

    from mmsam.apis import init_model
    from mmsam.apis.onnx_runner import OnnxSegmentor
    pytorch2onnx, onnx_infer, infer = tools
    checkpoint, data_root = hsam_lora_run
    out = tmp_path / 'onnx'
    record = pytorch2onnx.main([str(HSAM), str(checkpoint), '--out', str(out), '--cfg-options',
                                *LORA])
    assert record['notes'] == ['LoRA merged into 2 qkv projections']
    names = {init.name for init in onnx.load(str(out / 'encoder.onnx')).graph.initializer}
    assert not any('lora' in n for n in names)
    model = init_model(lora_cfg(HSAM), str(checkpoint))
    lora_b = model.backbone.blocks[0].attn.qkv.lora_b['q'].weight
    assert lora_b.abs().max() > 0  # trained: the merge matters
    runner = OnnxSegmentor(str(out))
    torch.manual_seed(1)
    images = torch.rand(3, 3, 128, 128)  # a batch of 3: not the traced 2
    with torch.no_grad():
        expected = model.encode_decode(images, _samples(3))
    assert_parity(expected, runner.encode_decode(images, _samples(3)))

    # onnx_infer.py on a scan gives what infer.py gives, through the same pre/post-processing.
    test_volume = np.load(data_root / 'test_volumes' / 'case0001.npz')['image']
    hu = np.round(-125 + 400 * test_volume).astype(np.int16)
    scan = tmp_path / 'ct.nii.gz'
    affine = np.diag([-0.7, 0.7, 2.0, 1.0])
    nib.save(nib.Nifti1Image(hu.transpose(2, 1, 0), affine), str(scan))
    options = ['--pictures', '0', '--cfg-options', f'test_dataloader.dataset.data_root={data_root}']
    onnx_written = onnx_infer.main([str(out), str(scan), '--out-dir', str(tmp_path / 'a'),
                                    *options])
    torch_written = infer.main([str(HSAM), str(checkpoint), str(scan), '--out-dir',
                                str(tmp_path / 'b'), *options, *LORA])
    assert [Path(p).name for p in onnx_written] == [Path(p).name for p in torch_written] == [
        'ct_label.nii.gz']
    a, b = (nib.load(p) for p in (onnx_written[0], torch_written[0]))
    np.testing.assert_array_equal(a.affine, nib.load(str(scan)).affine)
    same = np.asarray(a.dataobj) == np.asarray(b.dataobj)
    assert same.mean() >= 0.999 and len(np.unique(np.asarray(b.dataobj))) > 1


def _samples(n, size=(128, 128), boxes=None):
    from mmseg.structures import SegDataSample
    samples = []
    for i in range(n):
        sample = SegDataSample()
        meta = dict(img_shape=size, ori_shape=size, pad_shape=size, batch_input_shape=size)
        if boxes is not None:
            meta['prompt_box'] = boxes[i]
        sample.set_metainfo(meta)
        samples.append(sample)
    return samples


def test_samed_with_lora_updates_merged(tmp_path):
    from mmsam.apis import init_model
    from mmsam.apis.onnx_export import export_onnx
    from mmsam.apis.onnx_runner import OnnxSegmentor
    torch.manual_seed(0)
    model = init_model(lora_cfg(SAMED))
    for name, param in model.backbone.named_parameters():
        if 'lora_b' in name:  # zero at initialisation: make the updates count
            torch.nn.init.normal_(param, std=0.2)
    record = export_onnx(model, str(tmp_path / 'onnx'))
    assert record['kind'] == 'semantic' and record['notes'][0].startswith('LoRA merged')
    assert 'lora' in type(model.backbone.blocks[0].attn.qkv).__name__.lower()  # unchanged
    runner = OnnxSegmentor(str(tmp_path / 'onnx'))
    images = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        expected = model.encode_decode(images, _samples(1))
        # without the LoRA updates the logits differ: the export did merge them
        plain = init_model(str(SAMED))
        plain.load_state_dict({k: v for k, v in model.state_dict().items() if 'lora' not in k})
        assert (plain.encode_decode(images, _samples(1)) - expected).abs().max() > 1e-2
    assert_parity(expected, runner.encode_decode(images, _samples(1)))


def test_box_prompted_head(tools, mcl_checkpoint, tmp_path):
    import nibabel as nib

    from mmsam.apis import init_model
    from mmsam.apis.onnx_runner import OnnxSegmentor
    pytorch2onnx, onnx_infer, infer = tools
    out = tmp_path / 'onnx'
    record = pytorch2onnx.main([str(SAM_MCL_RANDOM_CONFIG), mcl_checkpoint, '--out', str(out)])
    assert record['kind'] == 'hypotheses' and record['head_inputs'][-1] == 'boxes'
    model, runner = init_model(str(SAM_MCL_RANDOM_CONFIG), mcl_checkpoint), OnnxSegmentor(str(out))
    boxes = [np.array(b, np.float32)
             for b in ((10, 12, 60, 70), (0, 0, 127, 127), (40, 30, 41, 90))]
    images = torch.rand(3, 3, 128, 128) * 255
    with torch.no_grad():
        expected = model.predict_hypotheses(images, _samples(3, boxes=boxes))
    got = runner.predict_hypotheses(images, _samples(3, boxes=boxes))
    assert got.shape == (3, 3, 128, 128)
    assert_parity(expected, got, binary=True)

    # A scan with a box on slices 1:3: the same hypotheses from both backends.
    rng = np.random.default_rng(0)
    volume = (rng.random((4, 96, 80)) * 0.2).astype(np.float32)
    volume[:, 30:60, 20:50] += 0.6
    scan = tmp_path / 'lesion.nii.gz'
    nib.save(nib.Nifti1Image(volume.transpose(2, 1, 0), np.diag([0.5, 0.5, 3.0, 1.0])), str(scan))
    argv = [str(scan), '--box', '18', '28', '52', '62', '--slices', '1:3', '--pictures', '1']
    a = onnx_infer.main([str(out), *argv, '--out-dir', str(tmp_path / 'a')])
    b = infer.main([str(SAM_MCL_RANDOM_CONFIG), mcl_checkpoint, *argv, '--out-dir',
                    str(tmp_path / 'b')])
    assert [Path(p).name for p in a] == [Path(p).name for p in b]
    for pa, pb in zip(a, b):
        if pa.endswith('.nii.gz'):
            da, db = np.asarray(nib.load(pa).dataobj), np.asarray(nib.load(pb).dataobj)
            assert (da == db).mean() >= 0.999


def test_reference_attention_fallback_keeps_the_weights_and_outputs():
    from segment_anything.modeling.image_encoder import Attention

    from mmsam.apis import init_model
    from mmsam.apis.onnx_export import use_reference_attention
    torch.manual_seed(0)
    model = init_model(str(HSAM))
    assert model.backbone.attn_impl == 'fused'
    images = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        fused = model.backbone(images)[-1]
        assert use_reference_attention(model) == len(model.backbone.blocks)
        reference = model.backbone(images)[-1]
    assert all(type(b.attn) is Attention for b in model.backbone.blocks)
    assert model.backbone.attn_impl == 'reference'
    torch.testing.assert_close(reference, fused, atol=1e-5, rtol=1e-4)


def test_exported_modules_are_in_eval_mode(monkeypatch, tmp_path):
    """torch.onnx.export warns "model is in training mode" for a module in training mode:
    export_onnx hands it the encoder and head wrappers (and all their modules) in eval mode."""
    from mmsam.apis import init_model
    from mmsam.apis import onnx_export
    seen = {}

    def fake_export(module, args, path, **kwargs):
        seen[type(module).__name__] = [m.training for m in module.modules()]
        open(path, 'wb').close()

    monkeypatch.setattr(onnx_export.torch.onnx, 'export', fake_export)
    model = init_model(str(SAMED)).train()
    onnx_export.export_onnx(model, str(tmp_path / 'onnx'))
    assert sorted(seen) == ['EncoderForExport', 'HeadForExport']
    assert not any(flag for flags in seen.values() for flag in flags)
    assert model.training  # the caller's model is left as it was (a copy is exported)
