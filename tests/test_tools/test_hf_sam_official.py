"""HuggingFace-layout official models (SeqSAM, SAM MCL; BenjaminTowle/SeqSAM): the fixture checks
(../shared/fixtures/official/seqsam, sam_mcl), hf_sam2mmsam.py (renamed keys named, strict
loading in the paper-table configs), and official files given where an mmsam checkpoint is
expected (tools/test.py, tools/infer.py, load_from) stopping with the converter to run."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from mmsam.models.converters import TOLERANCE, check_fixture

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO.parent / 'shared' / 'fixtures' / 'official'
TOOLS = REPO / 'tools'
CONVERTER = TOOLS / 'model_converters' / 'hf_sam2mmsam.py'
HF_CASES = {'seqsam': 'seqsam_hf', 'sam_mcl': 'sam_mcl_hf'}

needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f'{FIXTURES} (the shared official-code fixture pack, '
    '../shared next to the repository) is absent in this clone')


def run(*args, timeout=300):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def variant_config(tmp_path, base, body):
    path = tmp_path / f'variant_{abs(hash(body))}.py'
    path.write_text(f"_base_ = ['{REPO / base}']\n{body}\n")
    return str(path)


@needs_fixtures
@pytest.mark.parametrize('attn_impl', ['fused', 'reference'])
@pytest.mark.parametrize('case', sorted(HF_CASES))
def test_fixture_matches_official_outputs(case, attn_impl):
    result = check_fixture(str(FIXTURES / case), str(REPO), attn_impl)
    failing = {k: d for k, d in result['diffs'].items() if d is None or d > TOLERANCE}
    assert not failing and result['passed'], f'{case}: {failing}; notes: {result["notes"]}'


@needs_fixtures
def test_seqsam_switches_are_what_makes_it_official(tmp_path):
    base = 'configs/seqsam/seqsam_vit-b_lidc_m3.py'
    fixture = str(FIXTURES / 'seqsam')
    # mmsam's cat([H, Z]) order is the same function once the converter swaps the halves
    hz = check_fixture(fixture, str(REPO), config=variant_config(
        tmp_path, base, "model = dict(decode_head=dict(recurrent_input_order='hz'))"))
    assert hz['passed'], hz['diffs']
    # segment-anything's LayerNorm eps in the two-way blocks is not the official model
    eps = check_fixture(fixture, str(REPO), config=variant_config(
        tmp_path, base, 'model = dict(decode_head=dict(mask_decoder=dict('
        'two_way_layer_norm_eps=1e-5)))'))
    assert eps['diffs']['hypothesis_logits'] > TOLERANCE
    # mmsam's reading of the empty reader (the matched reader's pair) is not the official loss:
    # README: 0.616791 instead of 0.661402
    reader = check_fixture(fixture, str(REPO), config=variant_config(
        tmp_path, base, "model = dict(decode_head=dict(loss_decode=dict("
        "empty_weighting='reader')))"))
    assert reader['outputs']['loss_train'].item() == pytest.approx(0.616791, abs=1e-5)
    assert reader['diffs']['loss_eval'] <= TOLERANCE  # eval mode has no empty-reader mask


@needs_fixtures
def test_mcl_whole_mask_dice_is_not_the_official_loss(tmp_path):
    result = check_fixture(str(FIXTURES / 'sam_mcl'), str(REPO), config=variant_config(
        tmp_path, 'configs/sam_mcl/sam-mcl_vit-b_lidc.py',
        'model = dict(decode_head=dict(loss_decode=dict(per_row=False)))'))
    assert result['diffs']['mask_logits'] <= TOLERANCE
    assert result['diffs']['loss'] > 1e-3


@pytest.fixture(scope='module')
def hf_copy(tmp_path_factory):
    """A writable copy of the SeqSAM fixture's HF folder."""
    if not FIXTURES.is_dir():
        pytest.skip(f'{FIXTURES} is absent in this clone')
    root = tmp_path_factory.mktemp('hf')
    shutil.copytree(FIXTURES / 'seqsam' / 'seqsam_hf', root / 'seqsam_hf')
    return root / 'seqsam_hf'


@pytest.mark.slow
def test_renamed_key_is_refused_and_named(hf_copy, tmp_path):
    from safetensors.torch import load_file, save_file
    state = load_file(str(hf_copy / 'model.safetensors'))
    old = 'sam.mask_decoder.transformer.layers.0.layer_norm1.weight'
    state['sam.mask_decoder.transformer.layers.0.layer_norm_1.weight'] = state.pop(old)
    renamed = tmp_path / 'renamed'
    renamed.mkdir()
    shutil.copy(hf_copy / 'config.json', renamed / 'config.json')
    save_file(state, str(renamed / 'model.safetensors'))
    out = tmp_path / 'out.pth'
    proc = run(CONVERTER, renamed, out)
    assert proc.returncode != 0
    assert 'sam.mask_decoder.transformer.layers.0.layer_norm_1.weight' in proc.stderr, \
        proc.stderr
    assert not out.exists() and not list(tmp_path.glob('out.pth*'))
    # an unknown extra key is named too
    state[old] = state.pop('sam.mask_decoder.transformer.layers.0.layer_norm_1.weight')
    state['cell.conv_x.weight'] = torch.zeros(1)
    save_file(state, str(renamed / 'model.safetensors'))
    proc = run(CONVERTER, renamed, out)
    assert proc.returncode != 0 and 'cell.conv_x.weight' in proc.stderr, proc.stderr


def _tiny_config(config, case):
    """``config`` with the fixture's widths (as check_official builds it), no weight files."""
    import json
    from mmsam.models.converters.hf_sam import hf_widths
    cfg = Config.fromfile(str(REPO / config))
    meta = json.loads((FIXTURES / case / 'meta.json').read_text())
    hf_widths(cfg.model, meta['arch'], 'fused')
    return cfg


@needs_fixtures
@pytest.mark.parametrize('case,config', [
    ('seqsam', 'configs/seqsam/seqsam_vit-b_lidc_m3.py'),
    ('seqsam', 'configs/seqsam/seqsam_medsam-vit-b_lidc_m10.py'),
    ('sam_mcl', 'configs/sam_mcl/sam-mcl_vit-b_lidc.py'),
    ('sam_mcl', 'configs/medsam/medsam_vit-b_lidc.py'),
])
@pytest.mark.slow
def test_converted_checkpoint_loads_strictly_in_its_config(tmp_path, case, config):
    from mmsam.engine import load_checkpoint
    from mmsam.models.converters.official_check import build_model
    source = FIXTURES / case / HF_CASES[case]
    out = tmp_path / 'converted.pth'
    proc = run(CONVERTER, source / 'model.safetensors', out)
    assert proc.returncode == 0, proc.stderr
    assert config in proc.stdout and 'used, 0 dropped' in proc.stdout, proc.stdout
    model = build_model(_tiny_config(config, case).model)
    load_checkpoint(model, str(out), strict=True)
    converted = torch.load(out, weights_only=True)['state_dict']
    for key, value in model.state_dict().items():
        assert torch.equal(value, converted[key]), key


# ------------------------------------------------------------------------------------------
# Official files where an mmsam checkpoint is expected
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def official_files(tmp_path_factory):
    """One small file (or folder) per official format, and an mmsam checkpoint."""
    from safetensors.torch import save_file
    root = tmp_path_factory.mktemp('official')
    files = {}
    hf = root / 'hf_folder'
    hf.mkdir()
    (hf / 'config.json').write_text('{"model_type": "sam"}')
    save_file({'sam.vision_encoder.pos_embed': torch.zeros(1, 2, 2, 4)},
              str(hf / 'model.safetensors'))
    files['hf_folder'] = (hf, 'hf_sam2mmsam.py')
    files['safetensors'] = (hf / 'model.safetensors', 'hf_sam2mmsam.py')
    lora = {'w_a_000': torch.zeros(4, 8), 'w_b_000': torch.zeros(8, 4),
            'mask_decoder.mask_tokens.weight': torch.zeros(9, 8)}
    torch.save(lora, root / 'samed_lora.pth')
    files['samed_lora'] = (root / 'samed_lora.pth', 'samed2mmsam.py')
    torch.save({**lora, 'mask_decoder2.mask_tokens.weight': torch.zeros(9, 8)},
               root / 'hsam_lora.pth')
    files['hsam_lora'] = (root / 'hsam_lora.pth', 'hsam2mmsam.py')
    torch.save(dict(network_weights={'x': torch.zeros(1)}, optimizer_state=None,
                    trainer_name='MaskSAM_Synapse', current_epoch=0),
               root / 'checkpoint_final.pth')
    files['nnunet'] = (root / 'checkpoint_final.pth', 'masksam2mmsam.py')
    torch.save(dict(state_dict={'backbone.x': torch.zeros(1)}, meta={}), root / 'ours.pth')
    return root, files


@pytest.mark.parametrize('kind', ['hf_folder', 'safetensors', 'samed_lora', 'hsam_lora',
                                  'nnunet'])
def test_official_file_as_checkpoint_names_the_converter(official_files, kind):
    from mmsam.engine import (CorruptCheckpointError, OfficialFormatError,
                              check_checkpoint_file, load_checkpoint)
    _, files = official_files
    path, converter = files[kind]
    with pytest.raises(OfficialFormatError) as info:
        check_checkpoint_file(str(path))
    message = str(info.value)
    assert f'tools/model_converters/{converter}' in message and '\n' not in message
    assert not isinstance(info.value, CorruptCheckpointError)
    # load_from and init_model load through mmsam's load_checkpoint
    with pytest.raises(OfficialFormatError, match=converter):
        load_checkpoint(torch.nn.Linear(1, 1), str(path))


def test_mmsam_checkpoint_is_not_taken_for_an_official_file(official_files):
    from mmsam.engine import check_checkpoint_file, check_official_format
    root, _ = official_files
    check_official_format(str(root / 'ours.pth'))
    check_checkpoint_file(str(root / 'ours.pth'))


def test_load_from_an_official_folder_is_refused_before_the_run(official_files):
    from mmsam.engine import OfficialFormatError, check_prerequisites
    _, files = official_files
    cfg = Config(dict(model=dict(type='X'), load_from=str(files['hf_folder'][0])))
    with pytest.raises(OfficialFormatError, match='hf_sam2mmsam.py'):
        check_prerequisites(cfg, 'train')


TEST_CONFIG = REPO / 'configs' / 'seqsam' / 'seqsam_vit-tiny_synthetic-lesion.py'


@pytest.mark.parametrize('kind', ['safetensors', 'hf_folder', 'samed_lora', 'nnunet'])
@pytest.mark.slow
def test_test_tool_stops_with_one_line_naming_the_converter(official_files, tmp_path, kind):
    _, files = official_files
    path, converter = files[kind]
    proc = run(TOOLS / 'test.py', TEST_CONFIG, path, '--work-dir', tmp_path / 'work')
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f'tools/model_converters/{converter}' in lines[0], proc.stderr
    assert 'corrupt' not in proc.stderr.lower() and 'Traceback' not in proc.stderr


@pytest.mark.parametrize('kind', ['safetensors', 'hf_folder'])
@pytest.mark.slow
def test_infer_tool_stops_with_one_line_naming_the_converter(official_files, tmp_path, kind):
    import numpy as np
    from PIL import Image
    _, files = official_files
    image = tmp_path / 'slice.png'
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(image)
    proc = run(TOOLS / 'infer.py', TEST_CONFIG, files[kind][0], image, '--box', 2, 2,
               20, 20, '--out-dir', tmp_path / 'out')
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert 'tools/model_converters/hf_sam2mmsam.py' in lines[-1], proc.stderr
    assert 'Traceback' not in proc.stderr and 'corrupt' not in proc.stderr.lower()


def test_bare_sam_model_keys_with_the_tied_copy_and_a_bin_file(hf_copy, tmp_path):
    """facebook/sam-vit-base / wanglab/medsam-vit-base: SamModel keys without ``sam.``; older
    files also hold the prompt encoder's tied copy of the Fourier features, which is dropped
    with its reason (and refused when it differs)."""
    from safetensors.torch import load_file, save_file
    from mmsam.models.converters import ConversionError
    from mmsam.models.converters.hf_sam import convert_hf_sam
    seqsam_state, _, _ = convert_hf_sam(str(hf_copy))
    state = {k[len('sam.'):]: v for k, v in load_file(str(hf_copy / 'model.safetensors')).items()
             if k.startswith('sam.')}
    state['prompt_encoder.shared_embedding.positional_embedding'] = \
        state['shared_image_embedding.positional_embedding'].clone()
    folder = tmp_path / 'sam-vit-tiny'
    folder.mkdir()
    shutil.copy(hf_copy / 'config.json', folder / 'config.json')
    save_file(state, str(folder / 'model.safetensors'))
    converted, summary, report = convert_hf_sam(str(folder))
    assert summary['kind'] == 'sam' and summary['configs'] == []
    assert any('tied copy' in line for line in report)
    assert set(converted) == {k for k in seqsam_state if not k.startswith('decode_head.conv')}
    assert all(torch.equal(v, seqsam_state[k]) for k, v in converted.items())
    torch.save(state, folder / 'pytorch_model.bin')
    from_bin, _, _ = convert_hf_sam(str(folder / 'pytorch_model.bin'))
    assert all(torch.equal(v, converted[k]) for k, v in from_bin.items())
    state['prompt_encoder.shared_embedding.positional_embedding'] += 1
    save_file(state, str(folder / 'model.safetensors'))
    with pytest.raises(ConversionError, match='shared_embedding'):
        convert_hf_sam(str(folder))
