"""Pictures of predictions for data stored as arrays (slices and volumes), not image files."""
import cv2
import numpy as np
from mmseg.engine.hooks import SegVisualizationHook

from mmsam.registry import HOOKS


def batch_image(image, ori_shape):
    """The un-normalised (C, h, w) input tensor of one sample as an RGB uint8 image at
    ``ori_shape`` (the frame of its labels)."""
    img = image.detach().cpu().float().numpy().transpose(1, 2, 0)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    height, width = ori_shape[:2]
    if img.shape[:2] != (height, width):
        img = cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)
    return img


@HOOKS.register_module()
class SliceVisualizationHook(SegVisualizationHook):
    """mmseg's ``SegVisualizationHook`` drawing on the batch's own input images.

    mmseg's hook re-reads each ``img_path`` as an image file, which fails for mmsam's ``.npz``
    slices and volumes. This hook takes the (un-normalised) input image from the data batch
    instead, resizes it to the sample's ``ori_shape`` when needed, and names the picture after
    the case and slice (``<mode>_<case>_slice<NNN>``). Class names are not written on the
    picture (small slices; and mmseg's label drawing fails with opencv 5).

    Args:
        **kwargs: mmseg's (``draw``, ``interval``, ``show``, ``wait_time``).
    """

    def _after_iter(self, runner, batch_idx, data_batch, outputs, mode='val'):
        if self.draw is False or mode == 'train':
            return
        if not self.every_n_inner_iters(batch_idx, self.interval):
            return
        for image, output in zip(data_batch['inputs'], outputs):
            img = batch_image(image, output.ori_shape)
            name = output.get('case_id', 'image')
            if 'slice_index' in output:
                name = f'{name}_slice{output.slice_index:03d}'
            self._visualizer.add_datasample(f'{mode}_{name}', img, data_sample=output,
                                            show=self.show, wait_time=self.wait_time,
                                            step=runner.iter, with_labels=False)
