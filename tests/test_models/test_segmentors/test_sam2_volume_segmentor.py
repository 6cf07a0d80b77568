"""SAM2VolumeSegmentor: propagation from a key-slice prompt equals sam2's own video predictor.

A tiny SAM 2.1 (Hiera-t shrunk by hydra overrides: 64 px, width 32, memory width 16) is built by
the ``sam2`` package with random weights; the segmentor gets the same weights.
"""
import copy
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

pytest.importorskip('sam2')
import sam2.sam2_video_predictor as video_predictor_module  # noqa: E402
from sam2.build_sam import build_sam2, build_sam2_video_predictor  # noqa: E402
from sam2.sam2_image_predictor import SAM2ImagePredictor  # noqa: E402

from mmsam.registry import MODELS  # noqa: E402
from mmsam.models.segmentors.sam2_volume_segmentor import (  # noqa: E402
    SAM2VolumeSegmentor, largest_component)

D, MEM, S, T = 32, 16, 64, 6
SAM21_T = 'configs/sam2.1/sam2.1_hiera_t.yaml'
TINY_OVERRIDES = [
    f'++model.image_size={S}',
    '++model.image_encoder.trunk.embed_dim=8', '++model.image_encoder.trunk.num_heads=1',
    '++model.image_encoder.trunk.stages=[1,2,2,1]',
    '++model.image_encoder.trunk.global_att_blocks=[4]',
    f'++model.image_encoder.neck.d_model={D}',
    '++model.image_encoder.neck.backbone_channel_list=[64,32,16,8]',
    f'++model.image_encoder.neck.position_encoding.num_pos_feats={D}',
    f'++model.memory_attention.d_model={D}', '++model.memory_attention.num_layers=2',
    f'++model.memory_attention.layer.d_model={D}',
    '++model.memory_attention.layer.dim_feedforward=64',
    f'++model.memory_attention.layer.self_attention.embedding_dim={D}',
    f'++model.memory_attention.layer.self_attention.feat_sizes=[{S // 16},{S // 16}]',
    f'++model.memory_attention.layer.cross_attention.embedding_dim={D}',
    f'++model.memory_attention.layer.cross_attention.feat_sizes=[{S // 16},{S // 16}]',
    f'++model.memory_attention.layer.cross_attention.kv_in_dim={MEM}',
    f'++model.memory_encoder.out_dim={MEM}', f'++model.memory_encoder.in_dim={D}',
    f'++model.memory_encoder.position_encoding.num_pos_feats={MEM}',
    f'++model.memory_encoder.mask_downsampler.embed_dim={D}',
    f'++model.memory_encoder.fuser.layer.dim={D}',
]
TINY_ARCH = dict(embed_dim=8, num_heads=1, stages=(1, 2, 2, 1), global_att_blocks=(4, ),
                 window_pos_embed_bkg_spatial_size=(7, 7), d_model=D)  # as TINY_OVERRIDES
TRACKER = dict(d_model=D, mem_dim=MEM, image_size=S,
               memory_attention=dict(num_layers=2, dim_feedforward=64))


@pytest.fixture(scope='module')
def reference():
    """sam2's video predictor with random weights (seeded)."""
    torch.manual_seed(0)
    return build_sam2_video_predictor(SAM21_T, None, device='cpu',
                                      hydra_overrides_extra=TINY_OVERRIDES)


@pytest.fixture(scope='module')
def official_file(reference, tmp_path_factory):
    """The reference's weights in the official layout ({'model': state_dict})."""
    path = tmp_path_factory.mktemp('sam2') / 'tiny_sam2.1.pt'
    torch.save({'model': reference.state_dict()}, path)
    return str(path)


def segmentor_like(reference, checkpoint=None, **kwargs):
    """SAM2VolumeSegmentor with the reference's weights: built from a config with mmsam's
    SAM2ImageEncoder when the official-layout ``checkpoint`` is given (each part loads its keys
    strictly), else around a copy of sam2's own ImageEncoder."""
    if checkpoint is None:
        seg = SAM2VolumeSegmentor(backbone=copy.deepcopy(reference.image_encoder),
                                  tracker=TRACKER, **kwargs)
        state = {k: v for k, v in reference.state_dict().items()
                 if not k.startswith('image_encoder.')}
        seg.tracker.load_state_dict(state, strict=True)
        return seg.eval()
    seg = MODELS.build(dict(type='SAM2VolumeSegmentor', backbone=dict(
        type='SAM2ImageEncoder', arch=TINY_ARCH, img_size=S, checkpoint=checkpoint,
        frozen=False), tracker=dict(TRACKER, checkpoint=checkpoint), **kwargs))
    seg.init_weights()
    return seg.eval()


@pytest.fixture(scope='module')
def segmentor(reference, official_file):
    return segmentor_like(reference, official_file)


def video_predictor_logits(reference, frames, key, box=None, mask=None):
    """MedSAM2's inference with sam2's video predictor on ``frames`` (T, 3, S, S): prompt on
    ``key``, propagate forwards; reset, prompt again, propagate backwards. Returns (T, S, S)."""
    loader = video_predictor_module.load_video_frames
    video_predictor_module.load_video_frames = lambda **kw: (frames.clone(), S, S)
    try:
        state = reference.init_state('frames given in memory')
    finally:
        video_predictor_module.load_video_frames = loader
    out = {}
    for reverse in (False, True):
        reference.reset_state(state)
        if mask is not None:
            reference.add_new_mask(state, frame_idx=key, obj_id=1, mask=mask)
        else:
            reference.add_new_points_or_box(state, frame_idx=key, obj_id=1, box=box)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # fill-hole post-processing: no CUDA extension
            for t, _, logits in reference.propagate_in_video(state, reverse=reverse):
                out.setdefault(t, logits[0, 0])
    return torch.stack([out[t] for t in range(frames.shape[0])])


def upsampled(low_res):
    return F.interpolate(low_res, size=(S, S), mode='bilinear', align_corners=False)[:, 0]


def random_volume(seed, batch=1):
    return torch.rand(batch, 1, T, S, S, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize('key', [0, 2, T - 1])
def test_box_propagation_equals_video_predictor(reference, segmentor, key):
    frames = segmentor.slices_of(random_volume(1)[0])
    box = [10.0, 12.0, 40.0, 50.0]
    expected = video_predictor_logits(reference, frames, key, box=box)
    ours = upsampled(segmentor.propagate(frames, key, box))
    assert (ours - expected).abs().max().item() <= 1e-4
    assert 0 < (expected > 0).float().mean() < 1  # a mask, not all or nothing


def test_mask_prompt_equals_video_predictor(reference, segmentor):
    frames = segmentor.slices_of(random_volume(2)[0])
    mask = torch.zeros(S, S, dtype=torch.bool)
    mask[20:44, 16:40] = True
    expected = video_predictor_logits(reference, frames, 3, mask=mask)
    ours = upsampled(segmentor.propagate(frames, 3, mask=mask))
    assert (ours - expected).abs().max().item() <= 1e-4


def test_the_comparison_sees_the_memory_rules(reference, segmentor, official_file):
    """Tracking the backward pass as if forwards changes slices before the key by > 1e-3:
    the equality above is not blind to the memory selection."""
    frames = segmentor.slices_of(random_volume(1)[0])
    box, key = [10.0, 12.0, 40.0, 50.0], 3
    expected = video_predictor_logits(reference, frames, key, box=box)
    wrong = segmentor_like(reference, official_file, test_cfg=dict(memory_bf16=False))
    original = wrong.tracker.track_step

    def forwards_only(**kwargs):
        kwargs['track_in_reverse'] = False
        return original(**kwargs)

    wrong.tracker.track_step = forwards_only
    ours = upsampled(wrong.propagate(frames, key, box))
    assert (ours[:key] - expected[:key]).abs().max().item() > 1e-3


def test_key_slice_equals_image_predictor(reference, segmentor):
    image_model = build_sam2(SAM21_T, None, device='cpu', hydra_overrides_extra=TINY_OVERRIDES)
    image_model.load_state_dict(reference.state_dict(), strict=True)
    predictor = SAM2ImagePredictor(image_model)
    predictor._bb_feat_sizes = [(S // 4, S // 4), (S // 8, S // 8), (S // 16, S // 16)]  # 1024 px
    volume = random_volume(3)[0]
    key, box = 4, np.array([8.0, 20.0, 50.0, 44.0])
    predictor.set_image(volume[0, key, :, :, None].expand(S, S, 3).numpy())
    _, _, low_res = predictor.predict(box=box, multimask_output=False, return_logits=True)
    ours = segmentor.propagate(segmentor.slices_of(volume), key, box)[key, 0]
    assert (ours - torch.as_tensor(low_res[0])).abs().max().item() <= 1e-4


def test_encoder_runs_once_per_slice(segmentor):
    calls = []
    hook = segmentor.backbone.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        segmentor.propagate(segmentor.slices_of(random_volume(4)[0]), 2, [5, 5, 30, 30])
    finally:
        hook.remove()
    assert sum(calls) == T


def prompted_sample(key, box, case_id):
    return SegDataSample(metainfo=dict(case_id=case_id, key_slice=key, prompt_box=box))


def test_cases_do_not_interact(segmentor):
    volumes = random_volume(5, batch=2)
    samples = lambda: [prompted_sample(1, [6.0, 8.0, 44.0, 40.0], 'a'),  # noqa: E731
                       prompted_sample(4, [20.0, 10.0, 60.0, 30.0], 'b')]
    first = segmentor.predict(volumes, samples())
    perturbed = volumes.clone()
    perturbed[1] = torch.rand(1, T, S, S, generator=torch.Generator().manual_seed(9))
    second = segmentor.predict(perturbed, samples())
    alone = segmentor.predict(volumes[:1], samples()[:1])
    assert torch.equal(first[0].object_logits, second[0].object_logits)
    assert torch.equal(first[0].object_logits, alone[0].object_logits)
    assert torch.equal(first[0].pred_sem_seg.data, second[0].pred_sem_seg.data)
    assert not torch.equal(first[1].object_logits, second[1].object_logits)


def test_encode_decode_gives_predicts_object_logits(segmentor):
    volumes = random_volume(5, batch=2)
    samples = [prompted_sample(1, [6.0, 8.0, 44.0, 40.0], 'a'),
               prompted_sample(4, [20.0, 10.0, 60.0, 30.0], 'b')]
    logits = segmentor.encode_decode(volumes, [s.metainfo for s in samples])
    predicted = segmentor.predict(volumes, samples)
    assert logits.shape == (2, 1, T, S, S)
    for case_logits, sample in zip(logits, predicted):
        assert torch.equal(case_logits, sample.object_logits)


def test_predict_labels_and_native_grid(segmentor):
    volume = random_volume(6)
    sample = SegDataSample(metainfo=dict(key_slices=[1, 3], prompt_boxes=[[4, 4, 30, 30],
                                                                          [30, 30, 60, 60]],
                                         prompt_labels=[2, 5], native_shape=(T, 40, 50)))
    out = segmentor.predict(volume, [sample])[0]
    labels = out.pred_sem_seg.data
    assert labels.shape == (T, 40, 50)
    assert set(labels.unique().tolist()) <= {0, 2, 5}
    low = segmentor.propagate(segmentor.slices_of(volume[0]), 3, [30, 30, 60, 60])
    expected = largest_component(
        (F.interpolate(low, size=(40, 50), mode='bilinear', align_corners=False)[:, 0] > 0)
        .numpy())
    assert np.array_equal((labels == 5).numpy(), expected)  # the later object wins overlaps


def test_largest_component_is_26_connected():
    mask = np.zeros((3, 5, 5), bool)
    mask[0, 0, 0] = mask[1, 1, 1] = True  # corner neighbours: one component
    mask[2, 3:5, 3:5] = True  # 4 voxels, apart
    mask[0, 4, 0] = True
    kept = largest_component(mask)
    assert kept.sum() == 4 and kept[2, 3:5, 3:5].all()
    mask[0, 2, 2] = True  # joins (0,0,0)-(1,1,1) diagonally: 3 voxels, still fewer
    assert largest_component(mask).sum() == 4
    assert not largest_component(np.zeros((2, 2, 2), bool)).any()


def training_sample(key, target, case_id):
    sample = prompted_sample(key, None, case_id)
    sample.gt_sem_seg = PixelData(data=target)
    return sample


def training_batch(seed=7):
    targets = torch.zeros(2, T, S, S, dtype=torch.uint8)
    targets[0, 1:5, 16:40, 20:44] = 1
    targets[1, :, 30:60, 8:30] = 1
    samples = [training_sample(1, targets[0], 'a'), training_sample(3, targets[1], 'b')]
    return random_volume(seed, batch=2), samples


@pytest.mark.parametrize('prob_point_input', [0.0, 1.0])
def test_loss_step_gives_finite_grads(reference, official_file, prob_point_input):
    torch.manual_seed(0)
    seg = segmentor_like(reference, official_file, train_cfg=dict(prob_point_input=prob_point_input,
                                                   num_correction_points=2)).train()
    volumes, samples = training_batch()
    losses = seg.loss(volumes, samples)
    assert set(losses) == {'loss_mask', 'loss_dice', 'loss_iou', 'loss_occlusion'}
    total = sum(losses.values())
    assert torch.isfinite(total) and total > 0
    total.backward()
    grads = {name: p.grad for name, p in seg.named_parameters() if p.grad is not None}
    assert all(torch.isfinite(g).all() for g in grads.values())
    for part in ('backbone.', 'tracker.memory_attention.', 'tracker.memory_encoder.',
                 'tracker.sam_mask_decoder.', 'tracker.obj_ptr_proj.'):
        assert any(name.startswith(part) and g.abs().sum() > 0 for name, g in grads.items()), part


def test_loss_refuses_a_key_slice_without_the_object(reference):
    seg = segmentor_like(reference).train()
    volumes, samples = training_batch()
    samples[0].set_metainfo(dict(key_slice=5))
    with pytest.raises(ValueError, match='key_slice=5'):
        seg.loss(volumes, samples)


def test_step_losses_worked_by_hand():
    from mmsam.models.utils.sam2_memory_losses import sam2_step_losses
    target = torch.tensor([[1.0, 0.0], [0.0, 0.0]]).view(1, 1, 2, 2)
    logits = torch.zeros(1, 2, 2, 2)
    logits[0, 1] = torch.tensor([[9.0, -9.0], [-9.0, -9.0]])  # candidate 2 is right
    weights = dict(mask=20.0, dice=1.0)
    one = sam2_step_losses(logits[:, :1], torch.tensor([[0.3]]), torch.zeros(1, 1), target,
                           weights)
    # p = 0.5 everywhere: focal = ln2 * 0.5^2 * mean(0.25, 0.75, 0.75, 0.75); dice = 1 - 2/4;
    # no pixel > 0 -> actual IoU 0 -> |0.3 - 0|; occlusion = BCE(0, present) = ln2
    assert one['mask'].item() == pytest.approx(np.log(2) * 0.25 * 2.5 / 4, rel=1e-5)
    assert one['dice'].item() == pytest.approx(0.5, rel=1e-6)
    assert one['iou'].item() == pytest.approx(0.3, rel=1e-6)
    assert one['occlusion'].item() == pytest.approx(np.log(2), rel=1e-6)
    two = sam2_step_losses(logits, torch.tensor([[0.3, 0.8]]), torch.zeros(1, 1), target,
                           weights)
    p = torch.sigmoid(torch.tensor(9.0)).item()
    assert two['dice'].item() == pytest.approx(1 - (2 * p + 1) / (p + 3 * (1 - p) + 1 + 1),
                                               abs=1e-6)  # the best candidate's
    assert two['iou'].item() == pytest.approx((0.3 + 0.2) / 2, rel=1e-6)  # mean over both
    empty = sam2_step_losses(logits, torch.tensor([[0.3, 0.8]]), torch.zeros(1, 1),
                             torch.zeros_like(target), weights)
    assert empty['mask'] == 0 and empty['dice'] == 0 and empty['iou'] == 0


def test_step_losses_equal_sam2_training_loss():
    """Summed over frames and steps and divided by the objects, the step losses equal SAM 2's
    own ``training.loss_fns.MultiStepMultiMasksAndIous`` (shipped in the sam2 wheel; its
    trainer module needs tensordict, so only its loss key is provided here) with MedSAM2's
    settings, on random logits, multimask and single-mask steps, an empty target included."""
    import sys
    import types
    trainer = types.ModuleType('training.trainer')
    trainer.CORE_LOSS_KEY = 'core_loss'
    sys.modules.setdefault('training.trainer', trainer)
    loss_fns = pytest.importorskip('training.loss_fns')
    from mmsam.models.utils.sam2_memory_losses import sam2_step_losses
    gen = torch.Generator().manual_seed(3)
    num_obj, size = 3, 16
    targets = (torch.rand(2, num_obj, size, size, generator=gen) > 0.7).float()
    targets[1, 2] = 0  # the object is absent from the second frame
    frames = []
    for _ in range(2):
        steps = [(torch.randn(num_obj, m, size, size, generator=gen) * 3,
                  torch.rand(num_obj, m, generator=gen), torch.randn(num_obj, 1, generator=gen))
                 for m in (3, 1)]
        frames.append(steps)
    official = loss_fns.MultiStepMultiMasksAndIous(
        weight_dict=dict(loss_mask=20.0, loss_dice=1.0, loss_iou=1.0, loss_class=1.0),
        supervise_all_iou=True, iou_use_l1_loss=True, pred_obj_scores=True,
        focal_gamma_obj_score=0.0, focal_alpha_obj_score=-1)
    expected = official([dict(multistep_pred_multimasks_high_res=[s[0] for s in steps],
                              multistep_pred_ious=[s[1] for s in steps],
                              multistep_object_score_logits=[s[2] for s in steps])
                         for steps in frames], targets)
    ours = dict(mask=0, dice=0, iou=0, occlusion=0)
    for steps, target in zip(frames, targets):
        for logits, ious, obj in steps:
            for name, value in sam2_step_losses(logits, ious, obj, target[:, None],
                                                dict(mask=20.0, dice=1.0)).items():
                ours[name] = ours[name] + value / num_obj
    for name, key in (('mask', 'loss_mask'), ('dice', 'loss_dice'), ('iou', 'loss_iou'),
                      ('occlusion', 'loss_class')):
        assert ours[name].item() == pytest.approx(float(expected[key]), rel=1e-5), name


def test_sam2_encoder_module_gives_the_same_masks(reference, segmentor):
    """Around sam2's own ImageEncoder (dict output) the segmentor predicts what it predicts
    with mmsam's SAM2ImageEncoder loaded from the official-layout file."""
    frames = segmentor.slices_of(random_volume(8)[0])
    around_sam2 = segmentor_like(reference)
    assert torch.allclose(around_sam2.propagate(frames, 2, [4, 8, 50, 40]),
                          segmentor.propagate(frames, 2, [4, 8, 50, 40]), atol=1e-5, rtol=0)


def test_encoder_with_num_frames_is_refused(official_file):
    with pytest.raises(ValueError, match='num_frames'):
        MODELS.build(dict(type='SAM2VolumeSegmentor', backbone=dict(
            type='SAM2ImageEncoder', arch=TINY_ARCH, img_size=S, num_frames=2),
            tracker=TRACKER))


def test_native_depth_takes_the_nearest_slice(segmentor):
    volume = random_volume(10)
    meta = dict(key_slice=2, prompt_box=[6.0, 6.0, 50.0, 50.0], native_shape=(2 * T, S, S))
    seg = copy.deepcopy(segmentor)
    seg.test_cfg['largest_component'] = False
    out = seg.predict(volume, [SegDataSample(metainfo=meta)])[0]
    same_depth = seg.predict(volume, [SegDataSample(metainfo=dict(meta, native_shape=(T, S, S)))])
    labels, per_slice = out.pred_sem_seg.data, same_depth[0].pred_sem_seg.data
    assert torch.equal(labels[0::2], per_slice) and torch.equal(labels[1::2], per_slice)


def test_objects_of_a_case_share_slice_features(segmentor):
    volume = random_volume(11)
    meta = dict(key_slices=[1, 4], prompt_boxes=[[4, 4, 30, 30], [30, 30, 60, 60]],
                prompt_labels=[1, 2])
    calls = []
    hook = segmentor.backbone.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        shared = segmentor.predict(volume, [SegDataSample(metainfo=meta)])[0]
        segmentor.test_cfg['share_features'] = False
        apart = segmentor.predict(volume, [SegDataSample(metainfo=meta)])[0]
    finally:
        segmentor.test_cfg['share_features'] = True
        hook.remove()
    assert calls == [1] * (T + 2 * T)  # shared: each slice once; apart: once per object
    assert torch.equal(shared.object_logits, apart.object_logits)


def test_cases_sharing_a_key_slice_train_apart(reference, official_file):
    """The loss of two cases tracked together is the sum of their losses tracked alone
    (eval mode: no dropout; mask prompts, one conditioning slice: no random draws per case)."""
    seg = segmentor_like(reference, official_file, train_cfg=dict(
        prob_point_input=0.0, num_init_cond_frames=1))
    volumes, samples = training_batch()
    samples[1].set_metainfo(dict(key_slice=1))
    together = seg.loss(volumes, samples)
    alone = [seg.loss(volumes[b:b + 1], samples[b:b + 1]) for b in range(2)]
    for name, value in together.items():
        assert torch.allclose(2 * value, alone[0][name] + alone[1][name], rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # ~10 s: two 39M-parameter models on CPU
def test_sam21_tiny_dimensions_equal_video_predictor(tmp_path):
    """SAM 2.1-tiny's own sizes (Hiera-t, d_model 256, memory 64, 4 memory-attention layers:
    the tracker's defaults) at a 128-px input: the official-layout file loads strictly into
    SAM2ImageEncoder('hiera_t') + SAM2MemoryTracker, and propagation equals the video
    predictor."""
    size = 128
    torch.manual_seed(1)
    reference = build_sam2_video_predictor(SAM21_T, None, device='cpu', hydra_overrides_extra=[
        f'++model.image_size={size}',
        f'++model.memory_attention.layer.self_attention.feat_sizes=[{size // 16},{size // 16}]',
        f'++model.memory_attention.layer.cross_attention.feat_sizes=[{size // 16},{size // 16}]'])
    path = str(tmp_path / 'sam2.1_tiny_random.pt')
    torch.save({'model': reference.state_dict()}, path)
    seg = MODELS.build(dict(type='SAM2VolumeSegmentor', backbone=dict(
        type='SAM2ImageEncoder', arch='hiera_t', img_size=size, checkpoint=path),
        tracker=dict(image_size=size, checkpoint=path)))
    seg.init_weights()
    seg.eval()
    frames = seg.slices_of(torch.rand(1, 4, size, size, generator=torch.Generator().manual_seed(3)))
    box = [20.0, 30.0, 90.0, 100.0]
    loader = video_predictor_module.load_video_frames
    video_predictor_module.load_video_frames = lambda **kw: (frames.clone(), size, size)
    try:
        state = reference.init_state('frames given in memory')
    finally:
        video_predictor_module.load_video_frames = loader
    expected = {}
    for reverse in (False, True):
        reference.reset_state(state)
        reference.add_new_points_or_box(state, frame_idx=1, obj_id=1, box=box)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            for t, _, logits in reference.propagate_in_video(state, reverse=reverse):
                expected.setdefault(t, logits[0, 0])
    expected = torch.stack([expected[t] for t in range(4)])
    ours = F.interpolate(seg.propagate(frames, 1, box), size=(size, size), mode='bilinear',
                         align_corners=False)[:, 0]
    assert (ours - expected).abs().max().item() <= 1e-4
