"""VolumeInteractiveSession: each slice encoded once, MedSAM-style propagation from the
neighbour's mask box, clicks refine a slice and re-propagate to its dependants, refused clicks."""
import numpy as np
import pytest
import torch

from conftest import SAM_MCL_RANDOM_CONFIG
from mmsam.apis import InteractiveSession, init_model
from mmsam.apis.volume_interactive_session import VolumeInteractiveSession, mask_box

BOX = [10., 15., 29., 34.]  # pixels of the 48 (H) x 40 (W) slices


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return init_model(str(SAM_MCL_RANDOM_CONFIG))


@pytest.fixture(scope='module')
def volume():
    volume = (np.random.default_rng(0).random((6, 48, 40)) * 0.2).astype(np.float32)
    volume[1:5, 15:35, 10:30] += 0.6  # a bright cuboid on slices 1-4
    return volume


@pytest.fixture
def counter(model):
    calls = []
    handle = model.backbone.register_forward_hook(lambda *_: calls.append(1))
    yield calls
    handle.remove()


def fresh(model, volume, z, *prompts):
    """Slice z answered by a new InteractiveSession given ``prompts`` (kwargs) in turn."""
    session = InteractiveSession(model, volume[z])
    for kwargs in prompts:
        answer = session.predict(**kwargs)
    return answer.mask


def test_mask_box_by_hand():
    mask = np.zeros((6, 8), np.uint8)
    mask[2:4, 3] = mask[1, 5] = 1
    assert mask_box(mask) == (3., 1., 5., 3.)
    assert mask_box(mask, margin=2) == (1., 0., 7., 5.)  # clipped to the 8 x 6 slice
    assert mask_box(np.zeros((6, 8))) is None


def test_the_encoder_runs_once_per_slice(model, volume, counter):
    session = VolumeInteractiveSession(model, volume)
    assert counter == []  # nothing is encoded before it is needed
    session.segment_box(BOX, z=2)
    for x, y, z, label in ((20, 25, 3, 0), (5, 5, 0, 1), (22, 20, 3, 1), (30, 40, 5, 1)):
        session.click(x, y, z, label)
    session.segment_box(BOX, z=2)
    assert session.encoded_slices == list(range(6))
    assert len(counter) == 6


def test_a_box_propagates_from_the_neighbours_mask(model, volume):
    session = VolumeInteractiveSession(model, volume)
    masks = session.segment_box(BOX, z=2).copy()
    assert np.array_equal(masks[2], fresh(model, volume, 2, dict(box=BOX)))
    for k, parent in ((3, 2), (4, 3), (1, 2), (0, 1)):
        assert session.parents[k] == parent
        expected = fresh(model, volume, k, dict(box=mask_box(masks[parent])))
        assert np.array_equal(masks[k], expected)


def test_a_click_refines_its_slice_and_the_slices_depending_on_it(model, volume):
    session = VolumeInteractiveSession(model, volume)
    before = session.segment_box(BOX, z=2).copy()
    after = session.click(20, 25, 3, label=0).copy()
    assert (after[3] != before[3]).any()  # the clicked slice changes
    box3 = mask_box(before[2])  # its propagated box stays, the click and its logits join it
    assert np.array_equal(after[3], fresh(model, volume, 3, dict(box=box3), dict(
        box=box3, points=[[20, 25]], point_labels=[0])))
    # slice 4 depends on slice 3: propagated again from its new mask; 0-2 do not
    assert np.array_equal(after[4], fresh(model, volume, 4, dict(box=mask_box(after[3]))))
    assert np.array_equal(after[:3], before[:3])
    assert 3 not in session.parents and session.clicks[3] == [(20., 25., 0)]
    # a second box on the key slice no longer overrides the user's slice 3
    session.click(21, 26, 3, label=1)
    kept = session.masks[3].copy()
    session.segment_box(BOX, z=2)
    assert np.array_equal(session.masks[3], kept)


class VanishingSession(VolumeInteractiveSession):
    """A session whose answers on the ``vanish`` slices are empty (as a model's would be on a
    slice without the object), to test where propagation stops."""

    vanish = {4}

    def _predict(self, z, **kwargs):
        answer = super()._predict(z, **kwargs)
        if z in self.vanish and not kwargs.get('points'):
            self.masks[z] = 0
        return answer


def test_propagation_stops_where_the_mask_vanishes_and_a_click_restores_it(model, volume,
                                                                         counter):
    session = VanishingSession(model, volume)
    masks = session.segment_box(BOX, z=2)
    assert masks[:4].any(axis=(1, 2)).all()
    assert not masks[4].any() and not masks[5].any()  # 4 vanished; 5 is never reached
    assert 5 not in session.parents and 5 not in session.encoded_slices
    # a positive click in the empty slice 4 creates a mask there and propagates on to 5
    masks = session.click(20, 25, 4, label=1)
    assert len(counter) == len(session.encoded_slices) == 6  # 5 encoded only now
    assert np.array_equal(masks[4], fresh(model, volume, 4, dict(box=mask_box(masks[3])), dict(
        box=mask_box(masks[3]), points=[[20, 25]], point_labels=[1])))
    assert masks[4].any() and masks[5].any() and session.parents[5] == 4


def test_a_positive_click_in_an_empty_slice_without_a_box(model, volume):
    session = VolumeInteractiveSession(model, volume)
    masks = session.click(20, 25, 5, label=1)
    assert masks[5].any()
    assert np.array_equal(masks[5], fresh(model, volume, 5, dict(points=[[20, 25]],
                                                                   point_labels=[1])))
    assert session.parents[4] == 5 and masks[4].any()  # propagated from the clicked slice


@pytest.mark.parametrize('x, y, z', [(5, 5, 6), (5, 5, -1), (40, 5, 0), (5, -0.5, 0),
                                     (5, 48, 2), (5, 5, 1.5)])
def test_clicks_outside_the_volume_are_refused(model, volume, counter, x, y, z):
    session = VolumeInteractiveSession(model, volume)
    with pytest.raises(ValueError, match=r'outside the volume of 40 x 48 x 6 \(W x H x D\)'):
        session.click(x, y, z)
    with pytest.raises(ValueError, match='label must be 1'):
        session.click(5, 5, 0, label=2)
    assert counter == [] and not session.masks.any()


def test_a_simulated_user_clicks_at_the_largest_error(model, volume, counter):
    from mmsam.datasets.transforms.click_simulator import next_click
    gt = np.zeros(volume.shape, bool)
    gt[1:5, 15:35, 10:30] = True
    session = VolumeInteractiveSession(model, volume)
    session.segment_box(BOX, z=2)
    for _ in range(3):
        before = session.masks.copy()
        (x, y, z), label = next_click(before, gt, rng=0)
        error = (gt & ~before.astype(bool)) if label == 1 else (before.astype(bool) & ~gt)
        assert error[int(z), int(y), int(x)]  # (x, y, z) indexes the volume as (z, y, x)
        session.click(x, y, z, label)
        assert session.clicks[int(z)][-1] == (float(x), float(y), label)
    assert len(counter) == len(session.encoded_slices) <= 6
