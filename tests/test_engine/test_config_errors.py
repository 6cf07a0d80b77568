"""Config errors name the key path and registered type (or the file), in the API and the tools."""
from pathlib import Path

import pytest
from conftest import load_script
from mmengine.config import Config

from mmsam.engine import (ConfigArgumentError, ConfigError, config_argument_errors,
                          load_config)
from mmsam.engine.config_errors import accepted_arguments, explain_build_error
from mmsam.registry import MODELS, TRANSFORMS

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / 'configs' / 'samed' / 'samed_vit-tiny_synthetic-abdomen.py'


def demo_cfg(**options):
    cfg = Config.fromfile(str(DEMO))
    cfg.merge_from_dict(options)
    return cfg


def test_unknown_head_argument_names_key_and_type():
    cfg = demo_cfg(**{'model.decode_head.num_clases': 9})
    with pytest.raises(ConfigArgumentError) as info:
        with config_argument_errors(cfg):
            MODELS.build(cfg.model)
    message = str(info.value)
    assert message.startswith(
        "model.decode_head.num_clases: SAMedHead has no argument 'num_clases' "
        "(did you mean 'num_classes'?)")
    # Python's own message named neither (BaseDecodeHead, where the argument ended up).
    assert 'BaseDecodeHead' in str(info.value.__cause__)


def test_pipeline_and_loop_keys():
    cfg = {'test_pipeline': [dict(type='LoadNpzSlice'), dict(type='PackSegInputs', typo=1)],
           'train_cfg': dict(type='EpochBasedTrainLoop', max_epochs=2, max_iters=4)}
    with pytest.raises(ConfigArgumentError, match=r"^test_pipeline\.1\.typo: PackSegInputs has "
                                                  r"no argument 'typo'"):
        with config_argument_errors(cfg):
            TRANSFORMS.build(cfg['test_pipeline'][1])
    err = TypeError("EpochBasedTrainLoop.__init__() got an unexpected keyword argument "
                    "'max_iters'")
    assert str(explain_build_error(cfg, err)).startswith(
        "train_cfg.max_iters: EpochBasedTrainLoop has no argument 'max_iters' (did you mean "
        "'max_epochs'?)")


def test_missing_argument_and_every_place_named():
    cfg = {'model': dict(type='SAMedHead', num_classes=3),
           'other': [dict(type='SAMedHead', num_classes=3, prompt_encoder=None)]}
    with pytest.raises(ConfigArgumentError) as info:
        with config_argument_errors(cfg):
            MODELS.build(cfg['model'])
    assert str(info.value) == (
        "model: SAMedHead needs argument(s) 'prompt_encoder', 'mask_decoder', 'loss_decode', "
        'which the config does not give (nor in other.0)')


def test_other_type_errors_pass_unchanged():
    cfg = demo_cfg()
    with pytest.raises(TypeError, match='^unsupported operand') as info:
        with config_argument_errors(cfg):
            None + 1
    assert not isinstance(info.value, ConfigArgumentError)
    # An argument no config dict holds is left as Python said it.
    err = TypeError("BaseDecodeHead.__init__() got an unexpected keyword argument 'zzz'")
    assert explain_build_error(cfg, err) is None


def test_accepted_arguments_follow_kwargs_to_the_base():
    names = accepted_arguments(MODELS.get('SAMedHead'))
    assert names[:4] == ['num_classes', 'prompt_encoder', 'mask_decoder', 'loss_decode']
    assert 'align_corners' in names  # BaseDecodeHead's, reached through **kwargs


def test_load_config_names_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r'nope\.py: no such file'):
        load_config(str(tmp_path / 'nope.py'))
    (tmp_path / 'a.py').write_text("_base_ = ['./missing.py']\n")
    with pytest.raises(ConfigError, match=r'a\.py: .*missing\.py \(named in it'):
        load_config(str(tmp_path / 'a.py'))
    (tmp_path / 'b.py').write_text('model = dict(\n')
    with pytest.raises(ConfigError, match=r'b\.py: invalid Python in .*b\.py line 1'):
        load_config(str(tmp_path / 'b.py'))
    assert load_config(str(DEMO)).model.decode_head.type == 'SAMedHead'


def test_train_tool_gives_one_error_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        load_tool('train').main([str(DEMO), '--work-dir', str(tmp_path / 'w'),
                                 '--cfg-options', 'model.decode_head.typo=1'])
    assert info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "error: model.decode_head.typo: SAMedHead has no argument 'typo'" in last
    assert last.endswith(f'(config {DEMO})')

def load_tool(name):
    """tools/<name>.py as a module (tools/ is not a package)."""
    return load_script(f'tools/{name}.py')


@pytest.mark.parametrize('tool', ['train', 'test', 'infer'])
def test_wrong_config_path_is_one_line(tool, tmp_path, capsys):
    checkpoint = tmp_path / 'c.pth'
    checkpoint.write_bytes(b'')
    missing = tmp_path / 'typo_cfg.py'
    extra = {'train': [], 'test': [checkpoint],
             'infer': [checkpoint, checkpoint, '--out-dir', tmp_path]}[tool]
    with pytest.raises(SystemExit) as info:
        load_tool(tool).main([str(a) for a in [missing, *extra]])
    assert info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        f': error: config {missing}: no such file')


@pytest.mark.parametrize('tool, option, expected', [
    ('train', 'train_dataloader.batch_szie=4',
     "train_dataloader.batch_szie: the data loader has no argument 'batch_szie' "
     "(did you mean 'batch_size'?)"),
    ('train', 'train_dataloader.sampler.shufle=False',
     "train_dataloader.sampler.shufle: DefaultSampler has no argument 'shufle' "
     "(did you mean 'shuffle'?)"),
    ('train', 'val_dataloader.dataset.test_mod=True',
     "val_dataloader.dataset.test_mod: SyntheticAbdomenDataset has no argument 'test_mod' "
     "(did you mean 'test_mode'?)"),
    ('test', 'test_dataloader.num_worker=0',
     "test_dataloader.num_worker: the data loader has no argument 'num_worker' "
     "(did you mean 'num_workers'?)"),
])
def test_mistyped_dataloader_key_is_one_line(tool, option, expected, tmp_path, capsys):
    """A dataloader, sampler or dataset typo: one line naming the key and the close match,
    before the Runner creates the work dir (not a traceback when the loader is built)."""
    checkpoint = tmp_path / 'c.pth'
    checkpoint.write_bytes(b'')
    extra = [str(checkpoint)] if tool == 'test' else []
    with pytest.raises(SystemExit) as info:
        load_tool(tool).main([str(DEMO), *extra, '--work-dir', str(tmp_path / 'w'),
                              '--cfg-options', option])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    last = err.strip().splitlines()[-1]
    assert f'error: {expected}' in last and last.endswith(f'(config {DEMO})')
    assert not (tmp_path / 'w').exists()


def test_dataloader_keys_checked_in_wrapped_datasets_and_at_build_time():
    from mmsam.engine.dataloader_keys import dataloader_key_errors
    cfg = demo_cfg()
    cfg.train_dataloader.dataset = dict(type='RepeatDataset', times=2,
                                        dataset=dict(cfg.train_dataloader.dataset, splt='x'))
    assert dataloader_key_errors(cfg) == [
        "train_dataloader.dataset.dataset.splt: SyntheticAbdomenDataset has no argument 'splt' "
        "(did you mean 'split'?)"]
    # The valid demo config passes; a type taking any **kwargs is not second-guessed.
    assert dataloader_key_errors(demo_cfg()) == []
    # Built by the Runner anyway (e.g. through the API): DataLoader's TypeError maps back.
    cfg = demo_cfg(**{'val_dataloader.prefetch_factr': 2})
    err = TypeError("DataLoader.__init__() got an unexpected keyword argument 'prefetch_factr'")
    assert str(explain_build_error(cfg, err)) == (
        "val_dataloader.prefetch_factr: the data loader has no argument 'prefetch_factr' "
        "(did you mean 'prefetch_factor'?)")
