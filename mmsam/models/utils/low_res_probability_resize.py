"""MedSAM's official output resize: probabilities of the low-res logits, one bilinear resize."""
import torch.nn.functional as F


def low_res_probability_masks(low_res_logits, img_shape, input_shape, ori_shape, threshold=0.5):
    """Binary masks at the original size as ``MedSAM_Inference.medsam_inference`` makes them.

    The official script takes the sigmoid of the decoder's low-res logits (1/4 of the input)
    and resizes these probabilities bilinearly (align_corners False) straight to the raw
    image size, then thresholds at 0.5. mmsam's default path upsamples the logits to the
    input, crops the padding and resizes again: on the MedSAM fixture (150 x 170 image) that
    moves 173 of 25,500 pixels; this function moves none.

    Args:
        low_res_logits (Tensor): (M, h, w) logits of one image.
        img_shape (tuple[int, int]): the resized image inside the network input (no padding
            for MedSAM: the whole input).
        input_shape (tuple[int, int]): the network input (H_in, W_in).
        ori_shape (tuple[int, int]): the raw image (H, W).
        threshold (float): probability threshold.

    Returns:
        Tensor: (M, H, W) bool masks.
    """
    h, w = low_res_logits.shape[-2:]
    valid_h = round(h * img_shape[0] / input_shape[0])
    valid_w = round(w * img_shape[1] / input_shape[1])
    probs = low_res_logits[None, :, :valid_h, :valid_w].sigmoid()
    probs = F.interpolate(probs, size=tuple(ori_shape), mode='bilinear', align_corners=False)
    return probs[0] > threshold
