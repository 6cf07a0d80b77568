"""PointRend importance sampling of mask-loss points (Mask2Former / MaskSAM)."""
import torch
from mmcv.ops import point_sample


@torch.no_grad()
def sample_uncertain_points(logits, num_points, oversample_ratio=2.0,
                            importance_sample_ratio=0.75, generator=None):
    """Points where the mask logits are most uncertain, plus uniform ones.

    Draws ``int(num_points * oversample_ratio)`` uniform candidates, keeps the
    ``int(importance_sample_ratio * num_points)`` with the largest uncertainty -|logit|
    (bilinear logits, ``align_corners=False``), and adds uniform points up to ``num_points``.
    The candidates are the first draw from ``generator``, the extra uniform points the second.

    Args:
        logits (Tensor): (N, 1, H, W) or (N, H, W) mask logits (gradient is not used).
        num_points (int): P, points per mask.
        oversample_ratio (float): candidates per point, >= 1.
        importance_sample_ratio (float): fraction of the P points chosen by uncertainty,
            in [0, 1].
        generator (torch.Generator | None): random source (default: the global one).

    Returns:
        Tensor: (N, P, 2) normalised (x, y) coordinates in [0, 1], for
        ``mmcv.ops.point_sample(..., align_corners=False)``.
    """
    if oversample_ratio < 1 or not 0 <= importance_sample_ratio <= 1:
        raise ValueError(f'sample_uncertain_points: need oversample_ratio >= 1 and '
                         f'importance_sample_ratio in [0, 1], got {oversample_ratio} and '
                         f'{importance_sample_ratio}')
    if logits.dim() == 3:
        logits = logits[:, None]
    n = logits.shape[0]
    num_candidates = int(num_points * oversample_ratio)
    num_uncertain = int(importance_sample_ratio * num_points)
    options = dict(device=logits.device, dtype=logits.dtype, generator=generator)
    candidates = torch.rand(n, num_candidates, 2, **options)
    uncertainty = -point_sample(logits, candidates, align_corners=False)[:, 0].abs()  # (N, S)
    keep = uncertainty.topk(num_uncertain, dim=1).indices
    points = candidates.gather(1, keep[..., None].expand(-1, -1, 2))
    num_random = num_points - num_uncertain
    if num_random > 0:
        points = torch.cat([points, torch.rand(n, num_random, 2, **options)], dim=1)
    return points
