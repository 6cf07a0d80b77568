"""mmseg's PackSegInputs that also packs every annotator's mask."""
import torch
from mmengine.structures import PixelData
from mmseg.datasets.transforms import PackSegInputs

from mmsam.registry import TRANSFORMS

DEFAULT_META_KEYS = ('img_path', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor', 'flip',
                     'flip_direction', 'reduce_zero_label', 'prompt_box', 'prompt_annotation')


@TRANSFORMS.register_module()
class PackMultiAnnotatorInputs(PackSegInputs):
    """Pack inputs as mmseg does, plus ``gt_annotations`` (K, H, W) as a ``PixelData``.

    ``gt_sem_seg`` (the chosen single target, e.g. from :class:`BoxPromptFromAnnotation`) keeps
    working with mmseg's data preprocessor; ``gt_annotations`` stays at the loaded image's
    size (the metric compares there, after predictions are resized back to ``ori_shape``).

    Args:
        meta_keys (Sequence[str]): metainfo to pack; the defaults include the box prompt.
    """

    def __init__(self, meta_keys=DEFAULT_META_KEYS):
        super().__init__(meta_keys=meta_keys)

    def transform(self, results):
        packed = super().transform(results)
        if 'gt_annotations' in results:
            packed['data_samples'].gt_annotations = PixelData(
                data=torch.from_numpy(results['gt_annotations'].astype('uint8')))
        return packed
