"""Tests of MaskSAM's set criterion and box costs against brute force and hand formulas."""
import itertools

import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData

from mmsam.models.utils import masks_to_boxes_normalized
from mmsam.registry import MODELS, TASK_UTILS

C, H, W = 3, 6, 5  # classes incl. background; no-object label is C


def brute_force_giou(a, b, eps=1e-6):
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    inter = (max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
             * max(0.0, min(a[3], b[3]) - max(a[1], b[1])))
    union = area(a) + area(b) - inter
    hull = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    return inter / (union + eps) - (hull - union) / (hull + eps)


def hand_bce(x, t):
    """Mean over pixels of -(t log sigma(x) + (1 - t) log(1 - sigma(x)))."""
    x, t = x.double().flatten(), t.double().flatten()
    return -(t * torch.sigmoid(x).log() + (1 - t) * (1 - torch.sigmoid(x)).log()).mean()


def hand_dice(x, t):
    p, t = torch.sigmoid(x.double()).flatten(), t.double().flatten()
    return 1 - (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1)


# MaskSAM's official Synapse / ACDC weights: class 0.2, mask CE 1.5, mask Dice 1.5, aux mask CE
# 0.5, aux Dice 0.5, box L1 0.5, GIoU 0.2 (AMOS: 1.2 for both final-mask terms)
OFFICIAL_WEIGHTS = (0.2, 1.5, 1.5, 0.5, 0.5, 0.5, 0.2)


def hand_cost(pred, target, q, k, weights=OFFICIAL_WEIGHTS):
    """MaskSAM's total matching cost of query q and target k, term by term; weights of the
    class, mask CE, mask Dice, aux CE, aux Dice, box L1 and GIoU terms in that order."""
    cls, mask, aux, box = (v[q] for v in pred)
    label, tmask, tbox = target['labels'][k], target['masks'][k], target['boxes'][k]
    terms = (-cls.double().softmax(-1)[label], hand_bce(mask, tmask), hand_dice(mask, tmask),
             hand_bce(aux, tmask), hand_dice(aux, tmask), (box - tbox).abs().sum(),
             -brute_force_giou(box.tolist(), tbox.tolist()))
    return sum(w * term for w, term in zip(weights, terms))


def random_boxes(n, g):
    corners = torch.rand(n, 2, 2, generator=g).sort(dim=1).values
    return torch.cat([corners[:, 0], corners[:, 1]], dim=1)


def make_target(labels, g):
    """One slice's targets: given labels, random non-empty masks and their boxes."""
    masks = torch.rand(len(labels), H, W, generator=g) < 0.4
    masks[:, 0, 0] = True
    return dict(labels=torch.tensor(labels, dtype=torch.long), masks=masks,
                boxes=masks_to_boxes_normalized(masks))


def make_inputs(num_slices, q, g, requires_grad=False):
    tensors = [torch.randn(num_slices, q, C + 1, generator=g),
               2 * torch.randn(num_slices, q, H, W, generator=g),
               2 * torch.randn(num_slices, q, H, W, generator=g),
               random_boxes(num_slices * q, g).view(num_slices, q, 4)]
    return [t.requires_grad_(requires_grad) for t in tensors]


def build(**kwargs):
    return MODELS.build(dict(type='MaskClassificationCriterion', num_classes=C, **kwargs))


@pytest.mark.parametrize('seed', range(5))
def test_matching_equals_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    inputs = make_inputs(1, 4, g)
    target = make_target([0, 2, 1], g)
    criterion = build(num_points=None)
    (query_idx, target_idx), = criterion.match(*inputs, [target])
    pred = [v[0] for v in inputs]
    cost = torch.tensor([[hand_cost(pred, target, q, k) for k in range(3)] for q in range(4)])
    # The default assigner's summed cost matrix is the hand-built one, term by term.
    pred_instances = InstanceData(scores=pred[0], masks=pred[1].flatten(1),
                                  aux_masks=pred[2].flatten(1), boxes=pred[3])
    gt_instances = InstanceData(labels=target['labels'], masks=target['masks'].flatten(1),
                                boxes=target['boxes'])
    assigner_cost = sum(c(pred_instances, gt_instances) for c in criterion.assigner.match_costs)
    torch.testing.assert_close(assigner_cost.double(), cost, rtol=1e-5, atol=1e-6)
    best = min(itertools.permutations(range(4), 3),
               key=lambda qs: sum(cost[q, k] for k, q in enumerate(qs)))
    got = dict(zip(target_idx.tolist(), query_idx.tolist()))
    assert [got[k] for k in range(3)] == list(best)


@pytest.mark.parametrize('kwargs, weights', [
    (dict(loss_weights=dict(mask=1.2, dice=1.2)), (0.2, 1.2, 1.2, 0.5, 0.5, 0.5, 0.2)),  # AMOS
    (dict(loss_weights=dict(aux_bbox=0.0, aux_giou=0.0)), (0.2, 1.5, 1.5, 0.5, 0.5, 0, 0)),
    (dict(loss_weights=dict(aux_mask=0.0, aux_dice=0.0)), (0.2, 1.5, 1.5, 0, 0, 0.5, 0.2)),
    (dict(loss_weights=dict(cls=3.0), match_weights=dict(cls=0.7, aux_giou=2.0)),
     (0.7, 1.5, 1.5, 0.5, 0.5, 0.5, 2.0)),
])
def test_matching_costs_take_the_loss_weights_unless_set(kwargs, weights):
    """The 7 costs are weighted by loss_weights, then by match_weights where given."""
    g = torch.Generator().manual_seed(7)
    pred = [v[0] for v in make_inputs(1, 4, g)]
    target = make_target([2, 0], g)
    criterion = build(num_points=None, **kwargs)
    pred_instances = InstanceData(scores=pred[0], masks=pred[1].flatten(1),
                                  aux_masks=pred[2].flatten(1), boxes=pred[3])
    gt_instances = InstanceData(labels=target['labels'], masks=target['masks'].flatten(1),
                                boxes=target['boxes'])
    got = sum(c(pred_instances, gt_instances) for c in criterion.assigner.match_costs)
    cost = torch.tensor([[hand_cost(pred, target, q, k, weights) for k in range(2)]
                         for q in range(4)])
    torch.testing.assert_close(got.double(), cost, rtol=1e-5, atol=1e-6)
    assert criterion.loss_weights['cls'] == kwargs['loss_weights'].get('cls', 0.2)


def test_unknown_match_weight_is_named():
    with pytest.raises(KeyError, match=r"unknown match_weights keys \['box'\]"):
        build(match_weights=dict(box=1.0))


def test_point_matching_recovers_an_obvious_assignment():
    g = torch.Generator().manual_seed(3)
    target = make_target([1, 0, 2], g)
    cls, mask, aux, box = make_inputs(1, 4, g)
    order = [2, 0, 3]  # target k is predicted by query order[k]
    for k, q in enumerate(order):
        mask[0, q] = aux[0, q] = 8 * (target['masks'][k].float() - 0.5)
        cls[0, q, target['labels'][k]] = 6
        box[0, q] = target['boxes'][k]
    torch.manual_seed(0)
    (query_idx, target_idx), = build(num_points=512).match(cls, mask, aux, box, [target])
    assert dict(zip(target_idx.tolist(), query_idx.tolist())) == dict(enumerate(order))


def test_losses_by_hand_with_m_normalisation():
    """Slices with 3 (Q=2 < K), 1 and 0 targets: M = 4, mask/box sums over 3 matched pairs."""
    g = torch.Generator().manual_seed(4)
    targets = [make_target([0, 1, 2], g), make_target([1], g), make_target([], g)]
    inputs = make_inputs(3, 2, g)
    criterion = build(num_points=None)
    matches = criterion.match(*inputs, targets)
    assert [len(q) for q, _ in matches] == [2, 1, 0]
    losses = criterion(*inputs, targets)
    assert set(losses) == {'loss_cls', 'loss_mask', 'loss_dice', 'loss_aux_mask',
                           'loss_aux_dice', 'loss_aux_bbox', 'loss_aux_giou'}
    cls, mask, aux, box = inputs
    # Classification: unmatched -> C; weighted mean divided by the sum of weights.
    tgt = torch.full((3, 2), C)
    for i, (q, k) in enumerate(matches):
        tgt[i, q] = targets[i]['labels'][k]
    class_weight = torch.tensor([1.0] * C + [0.1])
    nll = -cls.double().log_softmax(-1).flatten(0, 1)[torch.arange(6), tgt.flatten()]
    w = class_weight.double()[tgt.flatten()]
    assert losses['loss_cls'].item() == pytest.approx(0.2 * ((w * nll).sum() / w.sum()).item(),
                                                      rel=1e-5)
    torch.testing.assert_close(losses['loss_cls'], 0.2 * F.cross_entropy(
        cls.flatten(0, 1), tgt.flatten(), weight=class_weight))
    # Masks and boxes: sums over matched pairs divided by M = 4 targets (not by 3 pairs).
    pairs = [(i, q, k) for i, (qs, ks) in enumerate(matches) for q, k in zip(qs, ks)]
    terms = dict(loss_mask=(1.5, lambda i, q, k: hand_bce(mask[i, q], targets[i]['masks'][k])),
                 loss_dice=(1.5, lambda i, q, k: hand_dice(mask[i, q], targets[i]['masks'][k])),
                 loss_aux_mask=(0.5, lambda i, q, k: hand_bce(aux[i, q], targets[i]['masks'][k])),
                 loss_aux_dice=(0.5, lambda i, q, k: hand_dice(aux[i, q], targets[i]['masks'][k])),
                 loss_aux_bbox=(0.5, lambda i, q, k: (box[i, q] - targets[i]['boxes'][k])
                                .abs().sum()),
                 loss_aux_giou=(0.2, lambda i, q, k: 1 - brute_force_giou(
                     box[i, q].tolist(), targets[i]['boxes'][k].tolist())))
    for key, (weight, term) in terms.items():
        expected = weight * sum(float(term(*p)) for p in pairs) / 4
        assert losses[key].item() == pytest.approx(expected, rel=1e-5), key


def test_slice_without_targets_only_adds_to_cls():
    g = torch.Generator().manual_seed(5)
    targets = [make_target([2, 0], g)]
    inputs = make_inputs(2, 3, g)
    criterion = build(num_points=None)
    one = criterion(*[v[:1] for v in inputs], targets)
    two = criterion(*inputs, targets + [make_target([], g)])
    for key in one:
        if key == 'loss_cls':
            assert two[key] != pytest.approx(one[key].item())
        else:
            assert two[key].item() == pytest.approx(one[key].item(), rel=1e-6), key
    empty = criterion(*[v[1:] for v in inputs], [make_target([], g)])
    assert all(empty[key] == 0 for key in empty if key != 'loss_cls')


def test_gradients_with_point_sampling_equal_finite_differences():
    """With the sampled points held fixed (same seed for every call), the autograd gradient
    of the summed losses with respect to every input (class logits, masks, auxiliary masks,
    boxes) equals central finite differences, at each input's three largest entries."""
    g = torch.Generator().manual_seed(6)
    inputs = make_inputs(2, 4, g, requires_grad=True)
    targets = [make_target([0, 1], g), make_target([0, 2, 1], g)]
    criterion = build(num_points=16)

    def total(*tensors):
        torch.manual_seed(123)
        return sum(criterion(*tensors, targets).values())

    total(*inputs).backward()
    eps = 1e-2  # float32 losses: a larger step, the O(eps^2) error stays below the tolerance
    for k, (name, tensor) in enumerate(zip(('cls', 'mask', 'aux', 'boxes'), inputs)):
        grad = tensor.grad.flatten()
        assert grad.abs().max() > 1e-3, name
        for i in grad.abs().argsort(descending=True)[:3].tolist():
            plus = [t.detach().clone() for t in inputs]
            minus = [t.detach().clone() for t in inputs]
            plus[k].view(-1)[i] += eps
            minus[k].view(-1)[i] -= eps
            with torch.no_grad():
                numeric = (total(*plus) - total(*minus)) / (2 * eps)
            assert grad[i].item() == pytest.approx(numeric.item(), rel=0.02, abs=1e-4), (name, i)


def test_probs_mode_is_a_sigmoid_in_front():
    g = torch.Generator().manual_seed(7)
    cls, mask, aux, box = make_inputs(1, 4, g)
    targets = [make_target([0, 2, 1], g)]
    probs = build(num_points=None, aux_mask_input='probs')(cls, mask, aux, box, targets)
    logits = build(num_points=None)(cls, mask, aux.sigmoid(), box, targets)
    assert all(torch.equal(probs[key], logits[key]) for key in logits)
    assert not torch.equal(probs['loss_aux_dice'],
                           build(num_points=None)(cls, mask, aux, box, targets)['loss_aux_dice'])


def test_loss_weights_and_eos_coef():
    g = torch.Generator().manual_seed(8)
    inputs, targets = make_inputs(1, 4, g), [make_target([0, 1], g)]
    base = build(num_points=None)(*inputs, targets)
    scaled = build(num_points=None, loss_weights=dict(mask=3.0, aux_giou=0.0))(*inputs, targets)
    assert scaled['loss_mask'].item() == pytest.approx(2 * base['loss_mask'].item(), rel=1e-6)
    assert scaled['loss_aux_giou'] == 0 and scaled['loss_dice'] == base['loss_dice']
    assert build(num_points=None, eos_coef=1.0)(*inputs, targets)['loss_cls'] != base['loss_cls']
    with pytest.raises(KeyError, match='unknown loss_weights'):
        build(loss_weights=dict(bbox=1.0))


def test_bad_inputs_raise():
    g = torch.Generator().manual_seed(9)
    cls, mask, aux, box = make_inputs(2, 4, g)
    criterion = build(num_points=None)
    with pytest.raises(ValueError, match='1 targets for 2 slices'):
        criterion(cls, mask, aux, box, [make_target([0], g)])
    with pytest.raises(ValueError, match='cls_logits has shape'):
        criterion(cls[..., :C], mask, aux, box, [make_target([0], g)] * 2)
    with pytest.raises(ValueError, match=r'labels \[3\] must lie in \[0, 3\)'):
        criterion(cls, mask, aux, box, [make_target([0], g), make_target([3], g)])


def test_box_costs():
    g = torch.Generator().manual_seed(10)
    pred = InstanceData(boxes=random_boxes(4, g))
    gt = InstanceData(boxes=random_boxes(3, g), labels=torch.zeros(3, dtype=torch.long))
    l1 = TASK_UTILS.build(dict(type='BoxL1Cost', weight=0.5))(pred, gt)
    giou = TASK_UTILS.build(dict(type='GIoUCost', weight=0.2))(pred, gt)
    for q, k in itertools.product(range(4), range(3)):
        a, b = pred.boxes[q], gt.boxes[k]
        assert l1[q, k].item() == pytest.approx(0.5 * (a - b).abs().sum().item(), rel=1e-6)
        assert giou[q, k].item() == pytest.approx(
            -0.2 * brute_force_giou(a.tolist(), b.tolist()), rel=1e-5)
    pred.boxes[1, 0] = float('nan')
    guarded = TASK_UTILS.build(dict(type='GIoUCost', weight=0.2))(pred, gt)
    assert guarded[1].tolist() == [100.0] * 3


def test_keyed_cost_feeds_another_field():
    g = torch.Generator().manual_seed(11)
    masks, aux = torch.randn(4, 30, generator=g), torch.randn(4, 30, generator=g)
    gt = InstanceData(masks=(torch.rand(3, 30, generator=g) < 0.5).float())
    dice = dict(type='DiceCost', pred_act=True, eps=1.0, naive_dice=True, weight=0.5)
    keyed = TASK_UTILS.build(dict(type='KeyedCost', cost=dice, pred_key='aux_masks'))
    stock = TASK_UTILS.build(dice)
    got = keyed(InstanceData(masks=masks, aux_masks=aux), gt)
    torch.testing.assert_close(got, stock(InstanceData(masks=aux), gt))
    assert not torch.allclose(got, stock(InstanceData(masks=masks), gt))
    with pytest.raises(KeyError, match='aux_masks'):
        keyed(InstanceData(masks=masks), gt)
