"""suggest_next_click on hand-made hypotheses."""
import numpy as np
import pytest
import torch

from mmsam.models.utils.next_click_suggestion import (agreement_map, hypothesis_share,
                                                      suggest_next_click)


def three_hypotheses():
    """Three 20 x 30 masks that agree on a core, and disagree on a large block (one of three
    marks it) and a single pixel (two of three mark it)."""
    masks = np.zeros((3, 20, 30), bool)
    masks[:, 5:10, 5:10] = True  # core: all agree
    masks[0, 4:15, 16:27] = True  # 11 x 11 block only hypothesis 0 marks
    masks[1:, 1, 1] = True  # a lone pixel two of three mark
    return masks


def test_agreement_values():
    masks = three_hypotheses()
    share, agreement = hypothesis_share(masks), agreement_map(masks)
    assert share[7, 7] == 1 and agreement[7, 7] == 1
    assert share[9, 21] == pytest.approx(1 / 3) and agreement[9, 21] == pytest.approx(2 / 3)
    assert share[1, 1] == pytest.approx(2 / 3) and agreement[1, 1] == pytest.approx(2 / 3)
    assert agreement[0, 29] == 1


def test_suggests_the_centre_of_the_largest_disputed_region_not_a_noisy_pixel():
    found = suggest_next_click(three_hypotheses())
    # the block's centre (row 9, col 21), the pixel farthest from its boundary
    assert found.point.tolist() == [21.0, 9.0]
    assert found.agreement == pytest.approx(2 / 3) and found.share == pytest.approx(1 / 3)
    assert found.region_size == 121 and found.region_mass == pytest.approx(121 / 3)


def test_mass_weighs_depth_of_doubt_as_well_as_size():
    # region A: 6 pixels at share 1/3 (mass 6 * 1/3 = 2); region B: 5 at 1/2 (mass 2.5)
    share = np.zeros((1, 10, 20))
    share[0, 2, 1:7] = 1 / 3
    share[0, 6, 10:15] = 0.5
    found = suggest_next_click(share)
    assert found.point.tolist() == [12.0, 6.0] and found.agreement == 0.5
    # threshold 0.6: A (agreement 2/3) is no longer disputed, B (0.5) still is
    assert suggest_next_click(share, agreement_threshold=0.6).point.tolist() == [12.0, 6.0]


def test_logits_single_hypothesis_valid_mask_and_no_doubt():
    logits = torch.full((1, 8, 8), -10.0)
    logits[0, 3:5, 2:7] = 0.0  # p = 0.5 on a 2 x 5 band
    found = suggest_next_click(logits, logits=True)
    assert found is not None and found.agreement == 0.5 and found.region_size == 10
    valid = np.ones((8, 8), bool)
    valid[3:5, 2:7] = False
    assert suggest_next_click(logits, logits=True, valid=valid) is None
    assert suggest_next_click(np.ones((4, 5, 5), bool)) is None  # all agree
    with pytest.raises(ValueError, match='outside'):
        suggest_next_click(logits)
    with pytest.raises(ValueError, match=r'\(M, H, W\)'):
        suggest_next_click(np.zeros((5, 5)))
    with pytest.raises(ValueError, match='agreement_threshold'):
        suggest_next_click(np.zeros((2, 5, 5)), agreement_threshold=0.5)
