"""Box match costs and a field-selecting wrapper for mmseg's ``HungarianAssigner``.

Every cost follows mmseg's calling convention: ``cost(pred_instances, gt_instances)`` with
:class:`~mmengine.structures.InstanceData` of Q predictions and K targets, returning a (Q, K)
weighted cost matrix.
"""
import torch
from mmengine.structures import InstanceData
from mmseg.models.assigners.match_cost import BaseMatchCost

from mmsam.registry import TASK_UTILS
from ..utils.box_ops import box_giou_pairwise


def _field(instances, key, cost_name, side):
    if key not in instances:
        raise KeyError(f'{cost_name} needs {side}.{key}; present fields: {list(instances.keys())}')
    return instances.get(key)


@TASK_UTILS.register_module()
class BoxL1Cost(BaseMatchCost):
    """Pairwise L1 distance (sum over the 4 coordinates) of ``boxes``.

    Args:
        weight (float): cost weight.
    """

    def __call__(self, pred_instances, gt_instances, **kwargs):
        """Args:
            pred_instances (InstanceData): ``boxes`` (Q, 4) normalised xyxy.
            gt_instances (InstanceData): ``boxes`` (K, 4) normalised xyxy.

        Returns:
            Tensor: (Q, K) weighted cost.
        """
        pred = _field(pred_instances, 'boxes', 'BoxL1Cost', 'pred_instances').float()
        gt = _field(gt_instances, 'boxes', 'BoxL1Cost', 'gt_instances').float()
        return (pred[:, None, :] - gt[None, :, :]).abs().sum(-1) * self.weight


@TASK_UTILS.register_module()
class GIoUCost(BaseMatchCost):
    """Negative generalised IoU of ``boxes``; NaN entries become 100 (MaskSAM's code guard).

    The guard applies to the weighted cost, so a NaN pair never wins the matching.

    Args:
        weight (float): cost weight.
        eps (float): added to unions and enclosures.
    """

    def __init__(self, weight=1.0, eps=1e-6):
        super().__init__(weight=weight)
        self.eps = eps

    def __call__(self, pred_instances, gt_instances, **kwargs):
        """Args:
            pred_instances (InstanceData): ``boxes`` (Q, 4) normalised xyxy.
            gt_instances (InstanceData): ``boxes`` (K, 4) normalised xyxy.

        Returns:
            Tensor: (Q, K) weighted cost.
        """
        pred = _field(pred_instances, 'boxes', 'GIoUCost', 'pred_instances').float()
        gt = _field(gt_instances, 'boxes', 'GIoUCost', 'gt_instances').float()
        cost = -box_giou_pairwise(pred, gt, self.eps) * self.weight
        return torch.where(torch.isnan(cost), torch.full_like(cost, 100.0), cost)


@TASK_UTILS.register_module()
class KeyedCost(BaseMatchCost):
    """Runs a stock cost with another prediction field in place of ``masks``.

    E.g. ``KeyedCost(cost=dict(type='DiceCost', weight=0.5, ...), pred_key='aux_masks')``
    scores the auxiliary masks with mmseg's ``DiceCost``. The wrapped cost's own ``weight``
    applies; this wrapper adds none.

    Args:
        cost (dict): config of the wrapped cost (found in TASK_UTILS, e.g. mmseg's).
        pred_key (str): field of ``pred_instances`` passed on as ``masks``.
    """

    def __init__(self, cost, pred_key='aux_masks'):
        super().__init__(weight=1.0)
        self.cost = TASK_UTILS.build(cost)
        self.pred_key = pred_key

    def __call__(self, pred_instances, gt_instances, **kwargs):
        """Args:
            pred_instances (InstanceData): with field ``pred_key``, (Q, ...).
            gt_instances (InstanceData): what the wrapped cost reads (e.g. ``masks``).

        Returns:
            Tensor: (Q, K) cost of the wrapped cost.
        """
        field = _field(pred_instances, self.pred_key, 'KeyedCost', 'pred_instances')
        view = InstanceData(**dict(pred_instances.items()))
        view.masks = field
        return self.cost(pred_instances=view, gt_instances=gt_instances, **kwargs)
