import itertools

import pytest
import torch

from mmsam.models.decode_heads.seqsam_head import chunk_bounds, select_for_training
from test_box_prompt_heads import WIDTH, build_head, head_cfg, sample

from mmsam.registry import MODELS


def seqsam(checkpoint=None, **kwargs):
    cfg = head_cfg('MedSAMHead', checkpoint)
    cfg.update(type='SeqSAMHead', loss_decode=dict(type='HungarianDiceLoss'), **kwargs)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


@pytest.mark.parametrize('m,k,expected', [
    (10, 4, [(0, 3), (3, 6), (6, 9), (9, 10)]),  # ceil(10 / 4) = 3, the last chunk shorter
    (7, 3, [(0, 3), (3, 6), (6, 7)]),
    (4, 4, [(0, 1), (1, 2), (2, 3), (3, 4)]),
    (5, 4, [(0, 2), (2, 3), (3, 4), (4, 5)]),  # 2 + 2 + 1 is only 3 chunks: split evenly
    (10, 3, [(0, 4), (4, 8), (8, 10)]),
])
def test_chunks(m, k, expected):
    assert chunk_bounds(m, k) == expected


def test_strided_selection_takes_one_from_each_chunk_at_random():
    torch.manual_seed(0)
    seen = set()
    for _ in range(200):
        picks = select_for_training(10, 4, 'strided').tolist()
        assert [p // 3 for p in picks[:3]] == [0, 1, 2] and picks[3] == 9
        seen.update(picks)
    assert seen == set(range(10))
    assert select_for_training(10, 4, 'first').tolist() == [0, 1, 2, 3]
    random_picks = select_for_training(10, 4, 'random')
    assert len(set(random_picks.tolist())) == 4 and random_picks.max() < 10


def test_first_step_is_sams_single_mask_before_training(tiny_sam_checkpoint):
    head, medsam = seqsam(tiny_sam_checkpoint).eval(), build_head('MedSAMHead',
                                                                    tiny_sam_checkpoint)
    emb = torch.randn(2, WIDTH, 8, 8)
    samples = [sample([3., 4., 20., 25.]), sample([1., 2., 30., 12.])]
    with torch.no_grad():
        hyps = head.predict_hypotheses((emb,), samples, 5)
        torch.testing.assert_close(hyps[:, :1], medsam((emb,), samples), atol=1e-5, rtol=1e-4)
    assert hyps.shape == (2, 5, 32, 32)
    assert not torch.allclose(hyps[:, 0], hyps[:, 1])  # later steps see the previous mask


@pytest.mark.parametrize('bptt', [True, False])
def test_bptt_switch_controls_the_gradient_through_the_logits(bptt, monkeypatch):
    head = seqsam(bptt_logits=bptt)
    fed = []
    original = head.prompt_encoder.forward

    def spy(points, boxes, masks):
        if masks is not None:
            fed.append(masks)
        return original(points, boxes, masks)

    monkeypatch.setattr(head.prompt_encoder, 'forward', spy)
    out = head((torch.randn(1, WIDTH, 8, 8),), [sample([3., 4., 20., 25.])], 2)
    assert len(fed) == 1 and fed[0].shape == (1, 1, 32, 32)
    assert fed[0].requires_grad == bptt
    if bptt:
        grad, = torch.autograd.grad(out[:, 1].sum(), fed[0], retain_graph=True)
        assert grad.abs().sum() > 0
    # the hidden state carries gradient between steps either way
    out[:, 1].sum().backward()
    assert head.conv2.weight.grad.abs().sum() > 0


def test_loss_matches_selected_predictions_per_sample():
    torch.manual_seed(0)
    head = seqsam(num_hypotheses=6)
    ann4 = (torch.rand(4, 32, 32) > 0.5).to(torch.uint8)
    ann2 = (torch.rand(2, 32, 32) > 0.5).to(torch.uint8)
    samples = [sample([1., 1., 9., 9.], annotations=ann4), sample([2., 2., 9., 9.],
                                                                  annotations=ann2)]
    feats = (torch.randn(2, WIDTH, 8, 8),)
    head.train_selection = 'first'
    losses = head.loss(feats, samples, None)
    with torch.no_grad():
        logits = head(feats, samples)
    # per sample: its first K predictions matched to its K annotations by enumeration; the
    # batch loss is the mean over samples (the 32 x 32 annotations are at the logits' size)
    assert logits.shape[-2:] == (32, 32)
    expected = (_loss_by_enumeration(logits[0, :4], ann4.float()) +
                _loss_by_enumeration(logits[1, :2], ann2.float())) / 2
    assert losses['loss_hungarian_dice'].item() == pytest.approx(expected, rel=1e-5)


def test_bad_configuration():
    with pytest.raises(ValueError, match='train_selection'):
        seqsam(train_selection='best')
    with pytest.raises(ValueError, match='num_hypotheses'):
        seqsam(num_hypotheses=0)
    with pytest.raises(ValueError, match='>= 1'):
        seqsam().predict_hypotheses((torch.randn(1, WIDTH, 8, 8),), [sample([1., 1., 5., 5.])], 0)


def test_training_unrolls_k_steps_when_m_is_smaller(monkeypatch):
    head = seqsam(num_hypotheses=3)
    steps = []
    original = head.forward
    monkeypatch.setattr(head, 'forward',
                        lambda inputs, samples, num=None: steps.append(num) or original(
                            inputs, samples, num))
    ann4 = (torch.rand(4, 32, 32) > 0.5).to(torch.uint8)
    head.loss((torch.randn(1, WIDTH, 8, 8),), [sample([1., 1., 9., 9.], annotations=ann4)], None)
    assert steps == [4]


def _loss_by_enumeration(logits, masks, empty_weighting='reader'):
    """SeqSAM's per-sample loss by enumeration: the min-cost permutation of the K annotations
    over the predictions, divided by K, with the empty readers' pairs zeroed. ``'reader'``
    (mmsam's reading, ``HungarianDiceLoss``'s default) zeroes the pair whose annotation is
    empty; ``'position'`` (the official code: ``loss[j] *= label_mask[j]`` over the matched
    pairs in prediction order) zeroes the pair of prediction j when annotation j is empty,
    whatever it was matched to. They differ whenever the match is not the identity."""
    from mmsam.models.losses import soft_dice_loss
    k = len(masks)
    empty = [masks[j].sum() == 0 for j in range(k)]
    cost = [[soft_dice_loss(logits[m:m + 1], masks[j:j + 1])[0].item() for j in range(k)]
            for m in range(len(logits))]
    best = min(itertools.permutations(range(len(logits)), k),
               key=lambda ms: sum(cost[m][j] for j, m in enumerate(ms)))
    if empty_weighting == 'reader':
        return sum(cost[m][j] for j, m in enumerate(best) if not empty[j]) / k
    return sum(cost[m][j] for j, m in enumerate(best) if not empty[m]) / k


def test_loss_with_strided_pooling_and_an_empty_reader():
    torch.manual_seed(0)
    head = seqsam(num_hypotheses=6).train()
    with torch.no_grad():  # a decoder whose steps differ clearly
        head.conv2.weight.mul_(3)
    ann = torch.zeros(3, 32, 32, dtype=torch.uint8)
    ann[0, 4:20, 4:20] = 1
    ann[2, 10:30, 2:12] = 1  # reader 1 marked nothing
    samples = [sample([2., 4., 19., 29.], annotations=ann)]
    feats = (torch.randn(1, WIDTH, 8, 8),)
    with torch.no_grad():
        logits = head(feats, samples, 6)[0]
    # strided pooling of M = 6 into K = 3 chunks (0, 1), (2, 3), (4, 5): one pick per chunk
    allowed = {round(_loss_by_enumeration(logits[list(p)], ann.float()), 5)
               for p in itertools.product((0, 1), (2, 3), (4, 5))}
    seen = set()
    for seed in range(16):
        torch.manual_seed(seed)
        with torch.no_grad():
            loss = head.loss(feats, samples, None)['loss_hungarian_dice'].item()
        assert round(loss, 5) in allowed
        seen.add(round(loss, 5))
    assert len(seen) > 1
    # First K: the first three steps, the empty reader matched (divisor K = 3), not trained
    # (mmsam's reading: the pair of the empty reader; the official code zeroes by position, see
    # test_official_empty_reader_weighting_is_by_position)
    head.train_selection = 'first'
    with torch.no_grad():
        first = head.loss(feats, samples, None)['loss_hungarian_dice'].item()
    assert first == pytest.approx(_loss_by_enumeration(logits[:3], ann.float()), rel=1e-5)


def test_official_empty_reader_weighting_is_by_position():
    """HungarianDiceLoss(empty_weighting='position') is the official loss[j] *= label_mask[j];
    'reader' zeroes the empty reader's own pair; they differ on a non-identity match."""
    from mmsam.models.losses import HungarianDiceLoss
    ann = torch.zeros(3, 16, 16)
    ann[0, :8] = 1
    ann[2, 8:] = 1  # reader 1 is empty
    # prediction 0 fits reader 2, prediction 1 reader 0, prediction 2 the empty reader
    logits = torch.stack([ann[2] * 4 - 2, ann[0] * 4 - 2, torch.full((16, 16), -2.)])
    official = HungarianDiceLoss(empty_weighting='position')(logits[None], ann[None])
    ours = HungarianDiceLoss(empty_weighting='reader')(logits[None], ann[None])
    assert official.item() == pytest.approx(_loss_by_enumeration(logits, ann, 'position'), rel=1e-4)
    assert ours.item() == pytest.approx(_loss_by_enumeration(logits, ann, 'reader'), rel=1e-4)
    assert abs(official.item() - ours.item()) > 1e-3


def test_recurrent_input_orders_are_one_function_with_swapped_halves():
    torch.manual_seed(0)
    hz, zh = seqsam(recurrent_input_order='hz'), seqsam(recurrent_input_order='zh')
    zh.load_state_dict(hz.state_dict())
    with torch.no_grad():
        for conv in (zh.conv1, zh.conv2):
            conv.weight.copy_(torch.cat([conv.weight[:, WIDTH:], conv.weight[:, :WIDTH]], 1))
        hz.conv2.weight.mul_(3)
        zh.conv2.weight.mul_(3)
    feats = (torch.randn(1, WIDTH, 8, 8),)
    samples = [sample([2., 4., 19., 29.])]
    with torch.no_grad():
        a, b = hz(feats, samples, 3), zh(feats, samples, 3)
        logits, ious = zh.unroll(feats, samples, 3)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert ious.shape == (1, 3) and torch.equal(logits, b)
    # both start as SAM's box-prompted mask: conv1 is the identity on Z in either order
    fresh = seqsam(recurrent_input_order='zh')
    z = torch.randn(1, WIDTH, 8, 8)
    state = torch.cat([z, torch.zeros_like(z)], 1)
    torch.testing.assert_close(fresh.conv1(state), z)
    with pytest.raises(ValueError, match='recurrent_input_order'):
        seqsam(recurrent_input_order='zz')
