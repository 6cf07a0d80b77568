"""Grid pictures of multi-hypothesis predictions during validation and testing."""
import os.path as osp

from mmengine.logging import print_log
from mmseg.engine.hooks import SegVisualizationHook

from mmsam.registry import HOOKS
from mmsam.visualization.hypothesis_visualizer import HypothesisVisualizer
from .slice_visualization_hook import batch_image


@HOOKS.register_module()
class HypothesisVisualizationHook(SegVisualizationHook):
    """Draws every ``interval``-th val/test batch as :class:`HypothesisVisualizer` grids.

    As :class:`SliceVisualizationHook`, the picture is drawn on the batch's own (un-normalised)
    input image, resized back to the sample's ``ori_shape``, since mmsam's ``.npz`` samples
    are not image files. Each picture is named after its sample (the basename of
    ``img_path`` without extension); with ``LocalVisBackend`` it is written to
    ``<visualizer save_dir>/vis_data/vis_image/<name>_<step>.png`` (``tools/test.py
    --show-dir DIR`` sets the save_dir to DIR; the step is the runner's iteration, 0 when
    testing).

    When the runner's visualizer is not a :class:`HypothesisVisualizer` (a config that
    switched the hook but kept ``SegLocalVisualizer``), the hook draws with a
    ``HypothesisVisualizer`` that writes through the runner visualizer's backends, so the
    pictures still land where that visualizer would put them.

    Args:
        **kwargs: mmseg's :class:`SegVisualizationHook` arguments (``draw``, ``interval``,
            ``show``, ``wait_time``).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(self._visualizer, HypothesisVisualizer):
            runner_visualizer = self._visualizer
            self._visualizer = HypothesisVisualizer(
                name=f'{runner_visualizer.instance_name}_hypotheses',
                vis_backends=list(runner_visualizer._vis_backends.values()))
            print_log(f'HypothesisVisualizationHook: the visualizer is a '
                      f'{type(runner_visualizer).__name__}, not a HypothesisVisualizer; drawing '
                      "with a HypothesisVisualizer on its backends (set visualizer.type="
                      "'HypothesisVisualizer' in the config to configure it)",
                      logger='current')

    def _after_iter(self, runner, batch_idx, data_batch, outputs, mode='val'):
        if self.draw is False or mode == 'train':
            return
        if not self.every_n_inner_iters(batch_idx, self.interval):
            return
        for image, output in zip(data_batch['inputs'], outputs):
            img = batch_image(image, output.ori_shape)
            img_path = output.metainfo.get('img_path')
            name = osp.splitext(osp.basename(img_path))[0] if img_path else f'{mode}_image'
            self._visualizer.add_datasample(name, img, data_sample=output, show=self.show,
                                            wait_time=self.wait_time, step=runner.iter)
