"""nnU-Net's sliding-window inference over a 3D volume (steps, Gaussian weighting, mirroring).

Follows nnU-Net 2.5.1 (``nnUNetPredictor.predict_sliding_window_return_logits``): the window
starts and the Gaussian map are nnunetv2's own functions, the volume is padded by acvl_utils'
``pad_nd_image`` (centred zero padding) and the network's outputs (logits) are mirror-averaged,
multiplied by the Gaussian and blended. One deliberate difference: nnU-Net keeps the Gaussian
and the running sums in float16 (GPU memory); mmsam keeps float32, so on the same logits the
two agree to float16 rounding, and to 1e-6 when nnU-Net's sums are float32
(``tests/test_nnunet_equivalence.py``). nnunetv2 is imported on use, so ``import mmsam`` stays fast.
"""
import itertools

import torch


def compute_window_steps(image_size, patch_size, step_size=0.5):
    """Start positions of the windows along each axis, by nnU-Net's rule.

    A window moves by at most ``step_size * patch`` voxels; the number of windows is
    ``ceil((size - patch) / (patch * step_size)) + 1`` and they are spread evenly (rounded)
    between 0 and ``size - patch``, e.g. size 110, patch 64, step 0.5 -> 0, 23, 46.

    Args:
        image_size (Sequence[int]): volume size per axis, each >= the patch.
        patch_size (Sequence[int]): window size per axis.
        step_size (float): in (0, 1]; 0.5 = half-window overlap (nnU-Net's default).

    Returns:
        list[list[int]]: the start positions per axis.
    """
    if not 0 < step_size <= 1:
        raise ValueError(f'sliding window step_size must be in (0, 1], got {step_size}')
    for size, patch in zip(image_size, patch_size):
        if size < patch:
            raise ValueError(f'volume size {tuple(image_size)} is smaller than the window '
                             f'{tuple(patch_size)}; pad it first')
    from nnunetv2.inference.sliding_window_prediction import compute_steps_for_sliding_window
    return compute_steps_for_sliding_window(tuple(image_size), tuple(patch_size), step_size)


def gaussian_importance_map(patch_size, sigma_scale=1 / 8):
    """nnU-Net's window weights: a Gaussian centred on the window, sigma = patch * sigma_scale.

    nnunetv2's ``compute_gaussian`` (float64 filter, scaled to maximum 1), returned in float32
    on the CPU instead of its float16 default.

    Args:
        patch_size (Sequence[int]): window size per axis.
        sigma_scale (float): sigma as a fraction of the window size.

    Returns:
        Tensor: patch_size float32 map with maximum 1 and no zeros (zeros are raised to the
        smallest positive value, so every voxel of a window gets some weight).
    """
    from nnunetv2.inference.sliding_window_prediction import compute_gaussian
    weights = compute_gaussian(tuple(int(p) for p in patch_size), sigma_scale=sigma_scale,
                               value_scaling_factor=1, dtype=torch.float32,
                               device=torch.device('cpu'))
    return weights.clone()  # compute_gaussian caches (lru_cache) and returns the same tensor


def _pad_to(volume, patch_size):
    """Zero-pad (C, D, H, W) to at least the patch, centred (acvl_utils' ``pad_nd_image``, as
    nnU-Net pads); returns the padded volume and the slices that crop it back."""
    from acvl_utils.cropping_and_padding.padding import pad_nd_image
    padded, slicer = pad_nd_image(volume, tuple(patch_size), 'constant', {'value': 0}, True,
                                  None)
    # the slicer's first entry spans the input's channels; the outputs have their own
    return padded, (slice(None),) + tuple(slice(int(s.start), int(s.stop)) for s in slicer[1:])


def mirrored_predict(predictor, patches, mirror_axes=()):
    """The predictor's output averaged over every combination of flips of ``mirror_axes``.

    Args:
        predictor (callable): (N, C, T, H, W) -> (N, K, T, H, W).
        patches (Tensor): (N, C, T, H, W).
        mirror_axes (Sequence[int]): spatial axes (0 = depth, 1 = H, 2 = W); 3 axes give nnU-Net's
            8-flip test-time augmentation.

    Returns:
        Tensor: (N, K, T, H, W).
    """
    dims = [2 + a for a in mirror_axes]
    combos = [c for r in range(len(dims) + 1) for c in itertools.combinations(dims, r)]
    total = None
    for flip in combos:
        out = predictor(patches.flip(flip) if flip else patches)
        out = out.flip(flip) if flip else out
        total = out if total is None else total + out
    return total / len(combos)


def sliding_window_inference_3d(volume, predictor, patch_size, step_size=0.5, sigma_scale=1 / 8,
                                mirror_axes=(), window_batch=1, use_gaussian=True):
    """Predict a whole volume window by window, blending overlaps with Gaussian weights.

    As nnU-Net, the predictor's outputs are blended as they come: give it logits (nnU-Net's
    order: blend logits, then softmax), or probabilities for a model that returns them.

    Args:
        volume (Tensor): (C, D, H, W) one case.
        predictor (callable): (N, C, T, Ph, Pw) windows -> (N, K, T, Ph, Pw) outputs.
        patch_size (Sequence[int]): (T, Ph, Pw).
        step_size (float): see :func:`compute_window_steps`.
        sigma_scale (float): see :func:`gaussian_importance_map`.
        mirror_axes (Sequence[int]): see :func:`mirrored_predict`.
        window_batch (int): windows per predictor call.
        use_gaussian (bool): False weights every voxel of a window equally.

    Returns:
        Tensor: (K, D, H, W) float32 blended outputs on the volume's grid.
    """
    patch_size = tuple(int(p) for p in patch_size)
    if volume.ndim != 4 or len(patch_size) != 3:
        raise ValueError(f'expected a (C, D, H, W) volume and a 3-value patch size, got '
                         f'{tuple(volume.shape)} and {patch_size}')
    padded, crop = _pad_to(volume, patch_size)
    steps = compute_window_steps(padded.shape[1:], patch_size, step_size)
    weights = (gaussian_importance_map(patch_size, sigma_scale) if use_gaussian
               else torch.ones(patch_size)).to(volume.device)
    starts = list(itertools.product(*steps))
    scores = counts = None
    for i in range(0, len(starts), window_batch):
        batch = starts[i:i + window_batch]
        windows = torch.stack([padded[:, z:z + patch_size[0], y:y + patch_size[1],
                                      x:x + patch_size[2]] for z, y, x in batch])
        out = mirrored_predict(predictor, windows, mirror_axes).float()
        if scores is None:
            scores = out.new_zeros((out.shape[1],) + tuple(padded.shape[1:]))
            counts = out.new_zeros(tuple(padded.shape[1:]))
        for (z, y, x), window_out in zip(batch, out):
            region = (slice(z, z + patch_size[0]), slice(y, y + patch_size[1]),
                      slice(x, x + patch_size[2]))
            scores[(slice(None),) + region] += window_out * weights
            counts[region] += weights
    return (scores / counts)[crop]
