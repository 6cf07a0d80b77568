"""tools/infer.py with clicks on a NIfTI scan: the answer in the scan's geometry, a second call
with one more click reads the encoder's features from --embedding-cache (the backbone does not
run) and feeds the first call's logits back; bad clicks and files are named."""
import json

import nibabel as nib
import numpy as np
import pytest
from conftest import SAM_MCL_RANDOM_CONFIG as MCL
from conftest import expect_error, load_script

AFFINE = np.array([[0.0, -0.6, 0.0, 30.0], [0.7, 0.0, 0.0, -12.0], [0.0, 0.0, 2.5, 4.0],
                   [0.0, 0.0, 0.0, 1.0]])
BOX = ['18', '28', '52', '62']


@pytest.fixture(scope='module')
def infer():
    return load_script('tools/infer.py')


@pytest.fixture
def scan(tmp_path):
    rng = np.random.default_rng(0)
    volume = (rng.random((4, 96, 80)) * 0.2).astype(np.float32)  # (D, H, W)
    volume[:, 30:60, 20:50] += 0.6
    path = tmp_path / 'lesion.nii.gz'
    nib.save(nib.Nifti1Image(np.ascontiguousarray(volume.transpose(2, 1, 0)), AFFINE),
             str(path))
    return path, volume


class CountingLoader:
    """``load_model`` for ``infer.main`` that counts the image encoder's forward calls."""

    def __init__(self, infer):
        self.infer, self.calls, self.model = infer, 0, None

    def __call__(self, parser, args, cfg):
        self.model = self.infer.load_torch_model(parser, args, cfg)
        self.model.backbone.register_forward_hook(lambda *_: self.count())
        return self.model

    def count(self):
        self.calls += 1


def consensus(out, name='lesion'):
    image = nib.load(str(out / f'{name}_consensus.nii.gz'))
    np.testing.assert_allclose(image.affine, AFFINE, atol=1e-6)
    assert image.shape == (80, 96, 4)
    return np.asarray(image.dataobj).transpose(2, 1, 0)  # (D, H, W)


def test_second_click_reuses_the_embedding_and_the_logits(infer, mcl_checkpoint, scan,
                                                          tmp_path):
    path, volume = scan
    cache, out1, out2 = tmp_path / 'cache', tmp_path / 'out1', tmp_path / 'out2'
    base = [str(MCL), mcl_checkpoint, str(path), '--intensity', 'unit', '--box', *BOX,
            '--slices', '1:3', '--embedding-cache', str(cache), '--pictures', '0']
    first = CountingLoader(infer)
    written = infer.main(base + ['--out-dir', str(out1), '--points', '30', '40', '1', '1'],
                         load_model=first)
    assert first.calls == 2  # slices 1 and 2, each once
    assert str(out1 / 'lesion_logits.npz') in written
    mask1 = consensus(out1)
    assert not mask1[[0, 3]].any()  # slices without a prompt stay empty

    second = CountingLoader(infer)
    infer.main(base + ['--out-dir', str(out2), '--points', '30', '40', '1', '1', '45', '50', '1',
                       '0', '--previous-mask', str(out1 / 'lesion_logits.npz')],
               load_model=second)
    assert second.calls == 0  # both slices' features came from the cache
    mask2 = consensus(out2)
    assert (mask1[1] != mask2[1]).any()  # the new click (and the fed-back logits) change it

    # The same, computed independently in this process: sessions without any cache, the
    # first answers' logits fed back by hand.
    from mmsam.apis import InteractiveSession
    model = second.model
    box = [float(v) for v in BOX]
    for k in (1, 2):
        session = InteractiveSession(model, volume[k])
        clicks = [[30., 40.]] if k == 1 else None
        answer = session.predict(box=box, points=clicks, point_labels=[1] if clicks else None)
        assert np.array_equal(answer.mask, mask1[k])
        clicks = [[30., 40.], [45., 50.]] if k == 1 else None
        answer = session.predict(box=box, points=clicks,
                                 point_labels=[1, 0] if clicks else None)
        assert np.array_equal(answer.mask, mask2[k])
        hypothesis = np.asarray(nib.load(str(out2 / 'lesion_hypothesis0.nii.gz')).dataobj)
        assert np.array_equal(hypothesis.transpose(2, 1, 0)[k], answer.hypotheses[0])


def test_prompts_file_points_equal_the_command_line(infer, mcl_checkpoint, scan, tmp_path):
    path, _ = scan
    prompts = tmp_path / 'prompts.json'
    prompts.write_text(json.dumps({
        'boxes': [{'slice': 1, 'box': [18, 28, 52, 62]}],
        'points': [{'point': [30, 40, 1], 'label': 1}, {'slice': 2, 'point': [33, 44]}]}))
    common = [str(MCL), mcl_checkpoint, str(path), '--intensity', 'unit', '--pictures', '0']
    infer.main(common + ['--out-dir', str(tmp_path / 'a'), '--prompts', str(prompts)])
    infer.main(common + ['--out-dir', str(tmp_path / 'b'), '--box', *BOX, '--slices', '1',
                         '--points', '30', '40', '1', '1', '33', '44', '2', '1'])
    a, b = consensus(tmp_path / 'a'), consensus(tmp_path / 'b')
    assert np.array_equal(a, b)
    assert a[2].any() and not a[[0, 3]].any()  # slice 2: a click alone, no box


def test_bad_clicks_and_previous_masks_are_named(infer, mcl_checkpoint, scan, tmp_path, capsys):
    path, _ = scan
    out = tmp_path / 'out'
    common = [str(MCL), mcl_checkpoint, str(path), '--intensity', 'unit', '--out-dir', str(out)]
    expect_error(infer, common + ['--points', '1', '2', '3'], capsys, 'groups of 4',
                 'got 3 numbers')
    expect_error(infer, common + ['--points', '1', '2', '0', '2'], capsys, '--points group 1',
                 'label must be 1')
    expect_error(infer, common + ['--points', '1', '2', '0.5', '1'], capsys, '--points group 1',
                 'slice index')
    expect_error(infer, common + ['--points', '10', '20', '4', '1'], capsys, '--points group 1',
                 'outside', 'lesion.nii.gz', '0 <= z <= 3')
    expect_error(infer, common + ['--points', '80', '20', '0', '1'], capsys, '0 <= x <= 79')
    prompts = tmp_path / 'p.json'
    prompts.write_text(json.dumps({'points': [{'point': [1, 2]}]}))
    expect_error(infer, common + ['--prompts', str(prompts)], capsys, str(prompts),
                 'points[0]', 'has no slice')
    prompts.write_text(json.dumps({'points': [{'point': [1, 2, 0], 'label': 'yes'}]}))
    expect_error(infer, common + ['--prompts', str(prompts)], capsys, 'points[0]', '"label"')
    prompts.write_text(json.dumps({'points': [], 'previous_mask': 'missing.npz'}))
    expect_error(infer, common + ['--prompts', str(prompts)], capsys, 'previous_mask',
                 'missing.npz', 'no such file')
    # logits of another scan
    other = tmp_path / 'other.nii.gz'
    nib.save(nib.Nifti1Image(np.zeros((80, 96, 4), np.float32), AFFINE), str(other))
    infer.main([str(MCL), mcl_checkpoint, str(other), '--intensity', 'unit', '--box', *BOX,
                '--slices', '1', '--save-logits', '--pictures', '0', '--out-dir',
                str(tmp_path / 'o')])
    expect_error(infer, common + ['--box', *BOX, '--previous-mask',
                                  str(tmp_path / 'o' / 'other_logits.npz')],
                 capsys, 'other_logits.npz', 'written for another input', 'lesion.nii.gz')
    assert not out.exists() or not any(out.iterdir())


def test_clicks_on_a_2d_image_with_the_cache(infer, mcl_checkpoint, tmp_path, capsys):
    import cv2
    image = (np.random.default_rng(1).random((48, 40, 3)) * 255).astype(np.uint8)
    path = tmp_path / 'photo.png'
    cv2.imwrite(str(path), image)
    common = [str(MCL), mcl_checkpoint, str(path), '--box', '5', '6', '30', '40',
              '--embedding-cache', str(tmp_path / 'cache')]
    first, second = CountingLoader(infer), CountingLoader(infer)
    infer.main(common + ['--out-dir', str(tmp_path / 'a')], load_model=first)
    infer.main(common + ['--out-dir', str(tmp_path / 'b'), '--points', '20', '25', '0', '1'],
               load_model=second)
    assert (first.calls, second.calls) == (1, 0)
    a, b = (cv2.imread(str(tmp_path / d / 'photo.png')) for d in 'ab')
    assert a.shape == b.shape and (a != b).any()  # the click changes the hypotheses drawn
    expect_error(infer, common + ['--out-dir', str(tmp_path / 'c'), '--points', '20', '25',
                                  '1', '1'], capsys, '--points group 1', 'outside', 'photo.png',
                 '0 <= z <= 0')
    expect_error(infer, common + ['--out-dir', str(tmp_path / 'c'), '--save-logits'], capsys,
                 '--save-logits are for scans')


def test_propagate_replays_a_volume_session(infer, mcl_checkpoint, scan, tmp_path, capsys):
    path, volume = scan
    base = [str(MCL), mcl_checkpoint, str(path), '--intensity', 'unit', '--box', *BOX,
            '--slices', '1', '--propagate', '--embedding-cache', str(tmp_path / 'cache'),
            '--pictures', '0']
    first, second = CountingLoader(infer), CountingLoader(infer)
    infer.main(base + ['--out-dir', str(tmp_path / 'a')], load_model=first)
    clicks = ['30', '40', '2', '0']
    infer.main(base + ['--out-dir', str(tmp_path / 'b'), '--points', *clicks],
               load_model=second)
    assert first.calls == 4 and second.calls == 0  # every slice once, then none
    a, b = consensus(tmp_path / 'a'), consensus(tmp_path / 'b')
    assert (a[2] != b[2]).any()

    from mmsam.apis import VolumeInteractiveSession
    session = VolumeInteractiveSession(second.model, volume)
    assert np.array_equal(session.segment_box([float(v) for v in BOX], 1), a)
    assert np.array_equal(session.click(30., 40., 2, 0), b)
    logits = np.load(tmp_path / 'b' / 'lesion_logits.npz')
    assert logits['slices'].tolist() == [0, 1, 2, 3]
    expect_error(infer, base + ['--out-dir', str(tmp_path / 'c'), '--previous-mask',
                                str(tmp_path / 'b' / 'lesion_logits.npz')], capsys,
                 '--propagate replays')


def test_the_session_path_equals_the_batched_box_path(infer, mcl_checkpoint, scan, tmp_path):
    path, _ = scan
    common = [str(MCL), mcl_checkpoint, str(path), '--intensity', 'unit', '--box', *BOX,
              '--slices', '1:3', '--pictures', '0']
    plain = infer.main(common + ['--out-dir', str(tmp_path / 'a')])
    saved = infer.main(common + ['--out-dir', str(tmp_path / 'b'), '--save-logits'])
    assert [p.replace('/b/', '/a/') for p in saved[:-1]] == plain  # + NAME_logits.npz
    for name in ('lesion_consensus.nii.gz', 'lesion_hypothesis1.nii.gz',
                 'lesion_agreement.nii.gz'):
        a, b = (np.asarray(nib.load(str(tmp_path / d / name)).dataobj) for d in 'ab')
        assert np.array_equal(a, b), name
