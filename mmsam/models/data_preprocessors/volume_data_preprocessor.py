"""Batches (C, T, H, W) volume patches into (B, C, T, H, W) for the 3D segmentors."""
import torch
from mmengine.model import BaseDataPreprocessor

from mmsam.registry import MODELS


@MODELS.register_module()
class VolumeDataPreProcessor(BaseDataPreprocessor):
    """Stacks volume inputs and moves them to the model's device.

    No SAM pixel mean/std: volumes arrive z-scored by ``NormalizeIntensity3D`` and go to the
    model's stem as they are (as MaskSAM does). Training patches must share one shape
    (``RandomPatchCrop3D``); whole test volumes differ in size, so a test batch holds one case.
    """

    def forward(self, data, training=False):
        """Args:
            data (dict): ``inputs`` list of (C, T, H, W) tensors, ``data_samples`` list.
            training (bool): whether the batch is for training.

        Returns:
            dict: ``inputs`` (B, C, T, H, W) float32, ``data_samples``.
        """
        data = self.cast_data(data)
        inputs = data['inputs']
        if isinstance(inputs, torch.Tensor):
            inputs = list(inputs)
        shapes = {tuple(x.shape) for x in inputs}
        if any(len(s) != 4 for s in shapes):
            raise ValueError(f'VolumeDataPreProcessor expects (C, T, H, W) inputs, got shapes '
                             f'{sorted(shapes)}; pack volumes with PackVolumeInputs')
        if not training and len(inputs) != 1:
            raise ValueError(f'VolumeDataPreProcessor: a test batch holds one whole volume, got '
                             f'{len(inputs)}; set test_dataloader.batch_size=1')
        if len(shapes) != 1:
            raise ValueError(f'VolumeDataPreProcessor: training patches differ in shape '
                             f'{sorted(shapes)}; crop them to one patch_size with '
                             f'RandomPatchCrop3D')
        return dict(inputs=torch.stack(inputs).float(), data_samples=data.get('data_samples'))
