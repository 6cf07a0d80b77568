"""SAM2VolumeSegmentor: a 3D scan segmented from a prompt on one key slice, slices as video.

MedSAM2's inference (``medsam2_infer_3D_CT.py``, ``medsam2_infer_general.py``) runs SAM 2's
video predictor on the slices: the box goes on the key slice, the predictor propagates forwards
to the last slice, is reset, gets the same box again and propagates backwards to slice 0; a voxel
is foreground when either pass gives it a logit > 0, and the largest 3D connected component is
kept. This segmentor does the same with SAM 2's own per-frame code
(:class:`~mmsam.models.utils.sam2_memory_tracker.SAM2MemoryTracker`), on mmsam's encoder:

* the image encoder runs once per slice (the key slice's features serve both passes; the two
  passes visit disjoint slices otherwise), lazily, one slice at a time, as the video predictor;
* the key slice's prediction and memory are those of the video predictor (memory encoded from
  the upsampled low-res logits, binarized); both passes start from them, so the two passes agree
  on the key slice and the union of their masks is simply each slice's own pass;
* spatial memories are rounded to bfloat16 as the video predictor stores them
  (``test_cfg.memory_bf16``);
* each case is propagated on its own: nothing crosses cases.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.segmentors.base import BaseSegmentor
from scipy import ndimage

from mmsam.registry import MODELS
from ..utils.native_grid_resampling import labels_on_native_grid
from ..utils.sam2_memory_tracker import SAM2MemoryTracker
from ..utils.sam2_memory_training import sequence_losses

#: SAM 2's (and MedSAM2's) input normalisation of [0, 1] RGB images (ImageNet statistics)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_TEST_DEFAULTS = dict(memory_bf16=True, largest_component=True, native_resampling='sam2',
                      share_features=True)
#: ``'sam2'``: the low-res logits are resized bilinearly to the native slice size, as SAM 2's video
#: predictor resizes them to the video resolution (a resampled depth: nearest slice);
#: ``'nnunet'`` / ``'trilinear'``: through :func:`labels_on_native_grid` like other 3D models.
NATIVE_RESAMPLING = ('sam2', 'nnunet', 'trilinear')
#: MedSAM2's ``sam2.1_hiera_tiny_finetune512_dev.yaml`` (SAM2Train arguments and loss)
_TRAIN_DEFAULTS = dict(prob_point_input=0.5, prob_box_given_points=1.0, num_init_cond_frames=2,
                       num_frames_to_correct=2, num_correction_points=7, prob_click_from_gt=0.1,
                       box_noise=0.1, box_noise_bound=20,
                       loss_weights=dict(mask=20.0, dice=1.0, iou=1.0, occlusion=1.0),
                       focal_alpha=0.25, focal_gamma=2.0)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 26-connected component of a (D, H, W) bool mask (MedSAM2's
    ``getLargestCC``: ``skimage.measure.label`` at full connectivity, first label on a tie);
    an empty mask is returned unchanged."""
    if not mask.any():
        return mask
    labels, _ = ndimage.label(mask, structure=np.ones((3, ) * mask.ndim, bool))
    counts = np.bincount(labels.ravel())
    return labels == (int(np.argmax(counts[1:])) + 1)


@MODELS.register_module()
class SAM2VolumeSegmentor(BaseSegmentor):
    """Segments one object per prompt in a volume by SAM 2 memory propagation over its slices.

    Inputs are (B, C, T, H, W) volumes with intensities in [0, 1] (C = 1 is repeated to RGB)
    and H = W = the tracker's ``image_size``; the segmentor normalises them with ``pixel_mean``
    / ``pixel_std`` as SAM 2 and MedSAM2 normalise frames.

    Prompts (data sample metainfo, pixel coordinates of the network input):

    * one object: ``key_slice`` (int) with ``prompt_box`` (4,) x0 y0 x1 y1, and/or
      ``prompt_points`` (N, 2) x, y with ``prompt_point_labels`` (N,) 1/0, or ``prompt_mask``
      (H, W) binary (SAM 2's ``add_new_mask``);
    * several objects of one case (test): ``key_slices`` (K,), ``prompt_boxes`` (K, 4),
      ``prompt_labels`` (K,) class ids; each is propagated on its own and written into one
      label map in that order (a later object overwrites an earlier one where they overlap).

    Predictions: ``pred_sem_seg`` (D0, H0, W0) long on the native grid (``native_shape`` /
    ``spacing`` / ``native_spacing`` metainfo as for :class:`VolumeSAMSegmentor`); one object
    is labelled ``prompt_label`` if given, else 1; ``object_logits`` (K, T, H, W) float
    tensor, each object's logits on the network grid.

    ``test_cfg`` keys: ``memory_bf16`` (round spatial memories to bfloat16, as SAM 2's video
    predictor stores them), ``largest_component`` (keep each object's largest 3D component, as MedSAM2),
    ``native_resampling`` (:data:`NATIVE_RESAMPLING`), ``share_features`` (several objects of
    a case: encode each slice once and keep the features of all slices while the case is
    segmented, about T x 5 MB at 512 px; False: once per slice and object).

    Training (:meth:`loss`) follows MedSAM2's ``sam2.1_hiera_tiny_finetune512_dev.yaml``
    (SAM 2's ``SAM2Train``) on a sequence of T slices whose ``key_slice`` shows the object:
    ``train_cfg`` ``prob_point_input`` (0.5; else the ground-truth masks of the conditioning
    slices are the prompt), ``prob_box_given_points`` (1.0: the point prompt is a box, sam2's
    ``sample_box_points`` with ``box_noise`` 0.1 / ``box_noise_bound`` 20 px; else one click),
    ``num_init_cond_frames`` (2: the key slice plus, half of the time, one more prompted
    slice), ``num_frames_to_correct`` (2) and ``num_correction_points`` (7: with point
    prompts, 7 correction clicks sampled from the error region -- from the ground truth with
    ``prob_click_from_gt`` 0.1 -- on the conditioning slices and on up to one more slice, which
    then becomes a conditioning slice), ``loss_weights`` (mask focal 20, dice 1, IoU L1 1,
    occlusion 1), ``focal_alpha`` / ``focal_gamma`` (0.25 / 2). The conditioning slices are
    processed first, then the slices after the key forwards and those before it backwards.

    Weights: ``backbone.checkpoint`` and ``tracker.checkpoint`` name the same official SAM 2.1
    or MedSAM2 file; each part loads its keys strictly in ``init_weights``. MedSAM2's training
    keeps the image encoder frozen (SAM2Train's default ``freeze_image_encoder=True``, which
    its config leaves): ``SAM2ImageEncoder(frozen=True)``.

    Args:
        backbone (dict | nn.Module): ``SAM2ImageEncoder`` config without ``num_frames`` (or an
            encoder module returning SAM 2's ``ImageEncoder`` dict).
        tracker (dict): :class:`SAM2MemoryTracker` arguments.
        pixel_mean, pixel_std (Sequence[float]): RGB normalisation of [0, 1] inputs.
        train_cfg, test_cfg (dict, optional): see above.
        data_preprocessor (dict, optional): e.g. ``VolumeDataPreProcessor``.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, backbone, tracker: Dict, pixel_mean: Sequence[float] = IMAGENET_MEAN,
                 pixel_std: Sequence[float] = IMAGENET_STD, train_cfg: Optional[Dict] = None,
                 test_cfg: Optional[Dict] = None, data_preprocessor=None, init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = backbone if isinstance(backbone, nn.Module) else MODELS.build(backbone)
        tracker = dict(tracker)
        tracker.pop('type', None)
        self.tracker = SAM2MemoryTracker(**tracker)
        size = self.tracker.image_size
        if getattr(self.backbone, 'num_frames', None) is not None:
            raise ValueError('SAM2VolumeSegmentor encodes one slice at a time (memory carries '
                             'the depth): build the backbone without num_frames')
        enc_size = getattr(self.backbone, 'img_size', size)
        if enc_size != size:
            raise ValueError(f'SAM2VolumeSegmentor: backbone.img_size={enc_size} but '
                             f'tracker.image_size={size}; set both to the network input size')
        self.register_buffer('pixel_mean', torch.tensor(pixel_mean).view(1, 3, 1, 1), False)
        self.register_buffer('pixel_std', torch.tensor(pixel_std).view(1, 3, 1, 1), False)
        self.train_cfg = {**_TRAIN_DEFAULTS, **(train_cfg or {})}
        self.train_cfg['loss_weights'] = {**_TRAIN_DEFAULTS['loss_weights'],
                                          **self.train_cfg['loss_weights']}
        self.test_cfg = {**_TEST_DEFAULTS, **(test_cfg or {})}
        for name, cfg, allowed in (('train_cfg', self.train_cfg, _TRAIN_DEFAULTS),
                                   ('test_cfg', self.test_cfg, _TEST_DEFAULTS)):
            unknown = sorted(set(cfg) - set(allowed))
            if unknown:
                raise KeyError(f'SAM2VolumeSegmentor: unknown {name} keys {unknown}; '
                               f'known: {sorted(allowed)}')
        if self.test_cfg['native_resampling'] not in NATIVE_RESAMPLING:
            raise ValueError(f'SAM2VolumeSegmentor: test_cfg.native_resampling must be one of '
                             f'{NATIVE_RESAMPLING}, got {self.test_cfg["native_resampling"]!r}')

    # ------------------------------------------------------------------ features
    def slices_of(self, volume: torch.Tensor) -> torch.Tensor:
        """(C, T, H, W) volume in [0, 1] -> (T, 3, H, W) normalised encoder input."""
        if volume.ndim != 4 or volume.shape[0] not in (1, 3):
            raise ValueError(f'SAM2VolumeSegmentor expects (C, T, H, W) volumes with C = 1 or 3, '
                             f'got {tuple(volume.shape)}')
        size = self.tracker.image_size
        if tuple(volume.shape[-2:]) != (size, size):
            raise ValueError(f'SAM2VolumeSegmentor: slices of {tuple(volume.shape[-2:])} pixels, '
                             f'but the model takes {size} x {size}; resize them in the pipeline '
                             f'(or use segment_volume, which resizes)')
        x = volume.transpose(0, 1).float()
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        return (x - self.pixel_mean) / self.pixel_std

    def encode_frames(self, images: torch.Tensor) -> Tuple[List, List, List]:
        """Encoder features of (N, 3, S, S) frames in SAM2Base's tracking layout.

        Returns:
            tuple: ``vision_feats`` (levels of (h*w, N, C); levels 0/1 through the mask
            decoder's ``conv_s0`` / ``conv_s1`` when high-res features are used),
            ``vision_pos_embeds`` (same shapes), ``feat_sizes`` [(h, w)], as
            ``SAM2Base._prepare_backbone_features`` gives them.
        """
        out = self.backbone(images)
        if isinstance(out, dict):  # sam2's own ImageEncoder
            fpn, pos = list(out['backbone_fpn']), list(out['vision_pos_enc'])
        else:
            fpn = list(out)
            pos = list(self.backbone.position_encodings(fpn))
        tracker = self.tracker
        if tracker.use_high_res_features_in_sam:
            fpn[0] = tracker.sam_mask_decoder.conv_s0(fpn[0])
            fpn[1] = tracker.sam_mask_decoder.conv_s1(fpn[1])
        levels = tracker.num_feature_levels
        fpn, pos = fpn[-levels:], pos[-levels:]
        sizes = [tuple(p.shape[-2:]) for p in pos]
        return ([f.flatten(2).permute(2, 0, 1) for f in fpn],
                [p.flatten(2).permute(2, 0, 1) for p in pos], sizes)

    def extract_feat(self, inputs: torch.Tensor) -> Tuple[List, List, List]:
        """Encoder features of every slice of (B, C, T, H, W) volumes, b-major (b * T + t)."""
        return self.encode_frames(torch.cat([self.slices_of(v) for v in inputs]))

    # ------------------------------------------------------------------ prompts
    def key_prompt(self, box=None, points=None, point_labels=None, mask=None, device=None
                   ) -> Tuple[Optional[Dict], Optional[torch.Tensor]]:
        """SAM 2's point / mask inputs of one key slice (batch 1), as the video predictor's
        ``add_new_points_or_box`` (box corners as points labelled 2, 3, then the clicks) and
        ``add_new_mask`` build them; coordinates in input pixels (= the model's frame)."""
        if mask is not None:
            if box is not None or points is not None:
                raise ValueError('SAM2VolumeSegmentor: give a key-slice mask or a box / points, '
                                 'not both (SAM 2 takes one kind of prompt per frame)')
            mask = torch.as_tensor(mask, device=device).float()
            if mask.ndim != 2:
                raise ValueError(f'prompt_mask must be (H, W), got {tuple(mask.shape)}')
            mask = mask[None, None]
            size = self.tracker.image_size
            if tuple(mask.shape[-2:]) != (size, size):
                mask = F.interpolate(mask, size=(size, size), mode='bilinear',
                                     align_corners=False, antialias=True)
                mask = (mask >= 0.5).float()
            return None, mask
        coords, labels = [], []
        if box is not None:
            box = torch.as_tensor(box, dtype=torch.float32, device=device).reshape(2, 2)
            coords.append(box)
            labels.append(torch.tensor([2, 3], dtype=torch.int32, device=device))
        if points is not None:
            if point_labels is None:
                raise ValueError('prompt_points need prompt_point_labels')
            coords.append(torch.as_tensor(points, dtype=torch.float32,
                                          device=device).reshape(-1, 2))
            labels.append(torch.as_tensor(point_labels, dtype=torch.int32,
                                          device=device).reshape(-1))
        if not coords:
            raise ValueError('SAM2VolumeSegmentor: no prompt on the key slice (give prompt_box, '
                             'prompt_points + prompt_point_labels, or prompt_mask)')
        return dict(point_coords=torch.cat(coords)[None],
                    point_labels=torch.cat(labels)[None]), None

    # ------------------------------------------------------------------ propagation
    def _memory_entry(self, out: Dict, maskmem_features, maskmem_pos_enc) -> Dict:
        """What the memory bank keeps of a frame's output (the video predictor's compact
        output; spatial memory in bfloat16 with ``memory_bf16``)."""
        if self.test_cfg['memory_bf16']:
            # rounded to bfloat16 as the video predictor stores them, kept in the features'
            # dtype: the same values once concatenated with the float32 pointers, and the
            # memory attention never meets an all-bfloat16 memory outside autocast
            maskmem_features = maskmem_features.to(torch.bfloat16).to(maskmem_features.dtype)
        return dict(maskmem_features=maskmem_features, maskmem_pos_enc=maskmem_pos_enc,
                    pred_masks=out['pred_masks'], obj_ptr=out['obj_ptr'],
                    object_score_logits=out['object_score_logits'])

    @torch.no_grad()
    def propagate(self, slices: torch.Tensor, key_slice: int, box=None, points=None,
                  point_labels=None, mask=None, feature_cache: Optional[Dict] = None
                  ) -> torch.Tensor:
        """Low-res mask logits of every slice from a prompt on the key slice.

        The key slice is segmented as an initial conditioning frame, its memory encoded; then
        the slices after it are tracked forwards and the slices before it backwards
        (``track_in_reverse``), each pass with the key slice as its conditioning memory, as
        MedSAM2 runs SAM 2's video predictor twice.

        Args:
            slices (Tensor): (T, 3, S, S) normalised frames of one case.
            key_slice (int): the prompted slice.
            box, points, point_labels, mask: the key slice's prompt (:meth:`key_prompt`).
            feature_cache (dict, optional): slice -> encoder features, filled and reused
                (several objects of one case share their slices' features).

        Returns:
            Tensor: (T, 1, S/4, S/4) float32 logits.
        """
        tracker = self.tracker
        num = slices.shape[0]
        if not 0 <= int(key_slice) < num:
            raise ValueError(f'key_slice={key_slice} is outside the volume\'s {num} slices')
        key = int(key_slice)
        point_inputs, mask_inputs = self.key_prompt(box, points, point_labels, mask,
                                                    slices.device)
        cache = {} if feature_cache is None else feature_cache

        def features(t):
            if t in cache:
                return cache[t]
            feats, pos, sizes = self.encode_frames(slices[t:t + 1])
            out = feats, pos[-1:], sizes  # tracking reads the last level's position encoding
            if feature_cache is not None or t == key:  # the key slice serves both passes
                cache[t] = out
            return out

        feats, pos, sizes = features(key)
        cond = tracker.track_step(
            frame_idx=key, is_init_cond_frame=True, current_vision_feats=feats,
            current_vision_pos_embeds=pos, feat_sizes=sizes, point_inputs=point_inputs,
            mask_inputs=mask_inputs, output_dict=dict(cond_frame_outputs={},
                                                      non_cond_frame_outputs={}),
            num_frames=num, run_mem_encoder=False)
        # the video predictor encodes the key slice's memory before propagating, from the
        # low-res logits upsampled to the frame, as a prompted ("from points") mask
        high_res = F.interpolate(cond['pred_masks'], size=(tracker.image_size, ) * 2,
                                 mode='bilinear', align_corners=False)
        memory, memory_pos = tracker._encode_new_memory(
            current_vision_feats=feats, feat_sizes=sizes, pred_masks_high_res=high_res,
            object_score_logits=cond['object_score_logits'], is_mask_from_pts=True)
        cond_entry = self._memory_entry(cond, memory, memory_pos)
        logits = [None] * num
        logits[key] = cond['pred_masks']
        for reverse, order in ((False, range(key + 1, num)), (True, range(key - 1, -1, -1))):
            bank = dict(cond_frame_outputs={key: cond_entry}, non_cond_frame_outputs={})
            for t in order:
                feats, pos, sizes = features(t)
                out = tracker.track_step(
                    frame_idx=t, is_init_cond_frame=False, current_vision_feats=feats,
                    current_vision_pos_embeds=pos, feat_sizes=sizes, point_inputs=None,
                    mask_inputs=None, output_dict=bank, num_frames=num,
                    track_in_reverse=reverse, run_mem_encoder=True)
                bank['non_cond_frame_outputs'][t] = self._memory_entry(
                    out, out['maskmem_features'], out['maskmem_pos_enc'])
                logits[t] = out['pred_masks']
        return torch.cat(logits).float()

    # ------------------------------------------------------------------ test
    @staticmethod
    def object_prompts(meta: Dict) -> List[Dict]:
        """The objects a sample asks for: dicts of ``key_slice``, ``label`` and the prompt."""
        if 'key_slices' in meta:
            boxes = np.asarray(meta['prompt_boxes'], np.float32).reshape(-1, 4)
            keys = np.asarray(meta['key_slices']).reshape(-1)
            labels = np.asarray(meta.get('prompt_labels', np.ones(len(keys)))).reshape(-1)
            if not len(keys) == len(boxes) == len(labels):
                raise ValueError(f'{meta.get("case_id", "a sample")}: key_slices ({len(keys)}), '
                                 f'prompt_boxes ({len(boxes)}) and prompt_labels ({len(labels)}) '
                                 'differ in length')
            return [dict(key_slice=int(k), label=int(c), box=b)
                    for k, c, b in zip(keys, labels, boxes)]
        if 'key_slice' not in meta:
            raise KeyError(f'{meta.get("case_id", "a sample")}: SAM2VolumeSegmentor needs '
                           "'key_slice' (+ 'prompt_box' / 'prompt_points' / 'prompt_mask') or "
                           "'key_slices' + 'prompt_boxes' in the data sample's metainfo")
        return [dict(key_slice=int(meta['key_slice']), label=int(meta.get('prompt_label', 1)),
                     box=meta.get('prompt_box'), points=meta.get('prompt_points'),
                     point_labels=meta.get('prompt_point_labels'),
                     mask=meta.get('prompt_mask'))]

    def object_mask(self, low_res: torch.Tensor, native_shape: Sequence[int], meta: Dict
                    ) -> np.ndarray:
        """(T, 1, h, w) logits -> (D0, H0, W0) bool mask on the native grid."""
        mode = self.test_cfg['native_resampling']
        num = low_res.shape[0]
        if mode == 'sam2':
            logits = F.interpolate(low_res, size=tuple(native_shape[1:]), mode='bilinear',
                                   align_corners=False)[:, 0]
            if native_shape[0] != num:  # resampled along z: each native slice takes the
                # nearest model slice (the centre rule that maps the key slice)
                rows = np.floor((np.arange(native_shape[0]) + 0.5) * num / native_shape[0])
                logits = logits[torch.as_tensor(np.clip(rows, 0, num - 1).astype(np.int64))]
            mask = (logits > 0).cpu().numpy()
        else:
            size = self.tracker.image_size
            logits = F.interpolate(low_res, size=(size, size), mode='bilinear',
                                   align_corners=False)[:, 0]
            scores = torch.stack([torch.zeros_like(logits), logits])
            mask = labels_on_native_grid(scores, native_shape, meta.get('spacing'),
                                         meta.get('native_spacing'), mode).bool().cpu().numpy()
        if self.test_cfg['largest_component']:
            mask = largest_component(mask)
        return mask

    def predict(self, inputs: torch.Tensor, data_samples: Optional[List] = None) -> List:
        """Segment each prompted object of each case.

        Args:
            inputs (Tensor): (B, C, T, H, W) volumes in [0, 1].
            data_samples (list[SegDataSample]): with the prompts in metainfo.

        Returns:
            list[SegDataSample]: ``pred_sem_seg`` (D0, H0, W0) long, ``object_logits``
            (K, T, H, W) logits on the network grid.
        """
        if data_samples is None:
            raise ValueError('SAM2VolumeSegmentor.predict needs data samples (the prompts)')
        size = self.tracker.image_size
        for volume, sample in zip(inputs, data_samples):
            meta = sample.metainfo
            slices = self.slices_of(volume)
            native = tuple(meta.get('native_shape') or (slices.shape[0], size, size))
            labels = np.zeros(native, np.int64)
            all_logits = []
            for obj, low in self.propagate_objects(slices, meta):
                all_logits.append(F.interpolate(low, size=(size, size), mode='bilinear',
                                                align_corners=False)[:, 0])
                labels[self.object_mask(low, native, meta)] = obj['label']
            sample.pred_sem_seg = PixelData(data=torch.from_numpy(labels).to(inputs.device))
            sample.object_logits = torch.stack(all_logits)
        return data_samples

    @torch.no_grad()
    def segment_volume(self, volume: np.ndarray, key_slice: int, box: Sequence[float],
                       ) -> Tuple[np.ndarray, torch.Tensor]:
        """Segment one object of a (D, H0, W0) volume in [0, 1] from a box on a key slice.

        The slices are resized to the model's square input (bicubic with antialiasing, as
        MedSAM2 resizes them with PIL), the box scaled with them; the logits come back to
        (H0, W0) bilinearly, as SAM 2's video predictor returns them at the video resolution.

        Args:
            volume (ndarray): (D, H0, W0) float intensities in [0, 1] (MedSAM2: window ->
                [0, 255] -> / 255).
            key_slice (int): the prompted slice.
            box (Sequence[float]): x0 y0 x1 y1 in pixels of the volume's slices.

        Returns:
            tuple: (D, H0, W0) uint8 mask (largest component with ``largest_component``) and
            (D, H0, W0) float32 logits.
        """
        volume = torch.as_tensor(np.asarray(volume, np.float32), device=self.pixel_mean.device)
        if volume.ndim != 3:
            raise ValueError(f'segment_volume expects a (D, H, W) volume, got '
                             f'{tuple(volume.shape)}')
        _, height, width = volume.shape
        size = self.tracker.image_size
        resized = F.interpolate(volume[:, None], size=(size, size), mode='bicubic',
                                align_corners=False, antialias=True).clamp(0, 1)
        scale = torch.tensor([size / width, size / height] * 2)
        box = torch.as_tensor(box, dtype=torch.float32).reshape(4) * scale
        low = self.propagate(self.slices_of(resized.transpose(0, 1)), key_slice, box)
        logits = F.interpolate(low, size=(height, width), mode='bilinear',
                               align_corners=False)[:, 0]
        mask = (logits > 0).cpu().numpy()
        if self.test_cfg['largest_component']:
            mask = largest_component(mask)
        return mask.astype(np.uint8), logits.float().cpu()

    # ------------------------------------------------------------------ base API
    def propagate_objects(self, slices: torch.Tensor, meta: Dict):
        """Propagate every prompted object of one case, sharing its slice features.

        Args:
            slices (Tensor): (T, 3, S, S) the case's slices (:meth:`slices_of`).
            meta (dict): the case's metainfo with the prompts (:meth:`object_prompts`).

        Yields:
            tuple[dict, Tensor]: each object's prompt and its (T, 1, h, w) low-res logits.
        """
        objects = self.object_prompts(meta)
        cache = {} if len(objects) > 1 and self.test_cfg['share_features'] else None
        for obj in objects:
            yield obj, self.propagate(slices, obj['key_slice'], obj.get('box'),
                                      obj.get('points'), obj.get('point_labels'),
                                      obj.get('mask'), cache)

    def encode_decode(self, inputs, batch_img_metas):
        """Logits (B, K, T, S, S) of every case's K prompted objects at the input size.

        Args:
            inputs (Tensor): (B, C, T, S, S) volumes in [0, 1].
            batch_img_metas (list[dict]): per case, the prompts (same K in every case).
        """
        size = self.tracker.image_size
        return torch.stack([torch.stack([
            F.interpolate(low, size=(size, size), mode='bilinear', align_corners=False)[:, 0]
            for _, low in self.propagate_objects(self.slices_of(volume), meta)])
            for volume, meta in zip(inputs, batch_img_metas)])

    def _forward(self, inputs, data_samples=None):
        """Low-res logits (B, K, T, h, w) of every prompted object (for tracing / FLOPs)."""
        return torch.stack([torch.stack([
            low[:, 0] for _, low in self.propagate_objects(self.slices_of(volume),
                                                          sample.metainfo)])
            for volume, sample in zip(inputs, data_samples)])

    def loss(self, inputs: torch.Tensor, data_samples: List) -> Dict[str, torch.Tensor]:
        """MedSAM2's training losses on (B, C, T, H, W) slice sequences (see the class doc).

        Cases that share a key slice are tracked together (SAM 2's modules treat the batch
        items independently); the losses are summed over prediction steps, slices and cases and
        divided by the number of cases, as SAM 2 divides by the number of objects.

        Returns:
            dict[str, Tensor]: ``loss_mask``, ``loss_dice``, ``loss_iou``, ``loss_occlusion``
            (weighted).
        """
        num_cases, num = inputs.shape[0], inputs.shape[2]
        targets = self.training_targets(data_samples, num, inputs.device)
        feats, pos, sizes = self.extract_feat(inputs)
        groups: Dict[int, List[int]] = {}
        for b, sample in enumerate(data_samples):
            groups.setdefault(self.training_key_slice(sample, targets[b]), []).append(b)
        totals = dict(mask=0, dice=0, iou=0, occlusion=0)
        for key, cases in groups.items():

            def features(t, cases=cases):
                rows = torch.tensor([b * num + t for b in cases], device=inputs.device)
                return [f[:, rows] for f in feats], [p[:, rows] for p in pos]

            losses = sequence_losses(self.tracker, features, sizes, targets[cases], key,
                                     self.train_cfg)
            for name, value in losses.items():
                totals[name] = totals[name] + value
        weights = self.train_cfg['loss_weights']
        return {f'loss_{name}': weights[name] * value / num_cases
                for name, value in totals.items()}

    def training_targets(self, data_samples: List, num: int, device) -> torch.Tensor:
        """(B, T, S, S) float 0/1 targets from the samples' ``gt_sem_seg`` (T, S, S)."""
        size = self.tracker.image_size
        targets = []
        for sample in data_samples:
            gt = sample.gt_sem_seg.data if 'gt_sem_seg' in sample else None
            if gt is None or tuple(gt.shape[-3:]) != (num, size, size):
                raise ValueError(
                    f'{sample.metainfo.get("case_id", "a sample")}: SAM2VolumeSegmentor.loss '
                    f'needs gt_sem_seg ({num}, {size}, {size}) (one object, 0/1), got '
                    f'{None if gt is None else tuple(gt.shape)}')
            targets.append((gt.reshape(num, size, size) > 0).float())
        return torch.stack(targets).to(device)

    @staticmethod
    def training_key_slice(sample, target: torch.Tensor) -> int:
        """The sample's ``key_slice``, checked to show the object in ``target`` (T, S, S)."""
        where = sample.metainfo.get('case_id', 'a sample')
        if 'key_slice' not in sample.metainfo:
            raise KeyError(f"{where}: SAM2VolumeSegmentor.loss needs metainfo 'key_slice' (use "
                           'SampleSliceSequence in the training pipeline)')
        key = int(sample.metainfo['key_slice'])
        if not 0 <= key < target.shape[0] or not bool(target[key].any()):
            raise ValueError(f'{where}: key_slice={key} does not show the object (the prompt '
                             'slice must, as MedSAM2 samples it)')
        return key
