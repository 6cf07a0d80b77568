"""HypothesisVisualizer grids, HypothesisVisualizationHook, and tools/test.py --show-dir."""
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmengine.visualization import Visualizer
from mmseg.structures import SegDataSample

from mmsam.engine.hooks.hypothesis_visualization_hook import HypothesisVisualizationHook
from mmsam.evaluation.functional.ged import d_avg, generalized_energy_distance
from mmsam.registry import VISUALIZERS
from mmsam.visualization.hypothesis_visualizer import HypothesisVisualizer
from conftest import SAM_MCL_RANDOM_CONFIG as CONFIG

REPO = Path(__file__).resolve().parents[2]
GRAY = 128
BOX = (20, 30, 80, 100)  # x0, y0, x1, y1 in pixels of the 128 x 128 image


def make_sample(num_annotators=4, num_hypotheses=3, size=128, box=BOX, empty=False,
                img_path='/data/samples/lesion00007.npz'):
    """A data sample as MultiHypothesisSegmentor + PackMultiAnnotatorInputs leave it."""
    sample = SegDataSample()
    meta = dict(img_path=img_path, ori_shape=(size, size), img_shape=(size, size))
    if box is not None:
        meta['prompt_box'] = np.array(box, np.float32)
    sample.set_metainfo(meta)
    rng = np.random.default_rng(0)
    if num_annotators:
        ann = np.zeros((num_annotators, size, size), np.uint8)
        if not empty:
            for k in range(num_annotators):
                top = int(rng.integers(35, 45))
                ann[k, top:top + 50, 30:75] = 1
        sample.gt_annotations = PixelData(data=torch.from_numpy(ann))
    hyp = torch.zeros(num_hypotheses, size, size, dtype=torch.bool)
    if not empty:
        for m in range(num_hypotheses):
            hyp[m, 40 + 3 * m:90, 35:80] = True
    sample.pred_hypotheses = PixelData(data=hyp)
    consensus = 2 * hyp.sum(0, keepdim=True) > num_hypotheses
    sample.pred_sem_seg = PixelData(data=consensus.long())
    return sample


def gray_image(size=128):
    return np.full((size, size, 3), GRAY, np.uint8)


@pytest.fixture
def visualizer():
    return HypothesisVisualizer(name='test_hypothesis_visualizer', min_panel_size=256,
                                spacing=4)


def grid_width(num_panels, panel, spacing=4):
    return num_panels * panel + (num_panels - 1) * spacing


@pytest.mark.parametrize('k, m', [(4, 3), (0, 1), (2, 1), (0, 5)])
def test_grid_has_one_panel_per_mask(visualizer, k, m):
    grid = visualizer.add_datasample('x', gray_image(), make_sample(k, m), out_file=None)
    # image + K readers + M hypotheses + consensus; 128 px upscaled by 2 to reach 256.
    assert grid.dtype == np.uint8 and grid.ndim == 3
    assert grid.shape[1] == grid_width(1 + k + m + 1, 256)
    assert 256 < grid.shape[0] < 256 + 80  # the panels and a title strip
    np.testing.assert_array_equal(visualizer.get_image(), grid)


def test_draw_gt_and_draw_pred_switch_panels_off(visualizer):
    sample = make_sample(3, 2)
    assert visualizer.draw_grid('x', gray_image(), sample, draw_gt=False).shape[1] == \
        grid_width(1 + 2 + 1, 256)
    assert visualizer.draw_grid('x', gray_image(), sample, draw_pred=False).shape[1] == \
        grid_width(1 + 3, 256)


def panels(grid, count, panel=256, spacing=4):
    """Split a grid into its panels (the title strip is on top)."""
    top = grid.shape[0] - panel
    return [grid[top:, i * (panel + spacing):i * (panel + spacing) + panel]
            for i in range(count)]


def is_red(pixel):
    r, g, b = (int(c) for c in pixel)
    return r > 180 and g < 90 and b < 90


def test_box_is_drawn_where_the_prompt_is(visualizer):
    grid = visualizer.add_datasample('x', gray_image(), make_sample(2, 2), out_file=None)
    first = panels(grid, 6)[0]
    x0, y0, x1, y1 = (2 * v + 1 for v in BOX)  # pixel centres at the x2 scale
    mid_x, mid_y = (x0 + x1) // 2, (y0 + y1) // 2
    for x, y in ((x0, mid_y), (x1, mid_y), (mid_x, y0), (mid_x, y1)):
        assert is_red(first[y, x]), (x, y, first[y, x])
    # Inside and outside the box the image is untouched (away from the label).
    for x, y in ((mid_x, mid_y), (x0 + 8, mid_y), (x1 + 10, mid_y), (mid_x, y1 + 10)):
        assert np.abs(first[y, x].astype(int) - GRAY).max() <= 3, (x, y, first[y, x])
    # The other panels have no box.
    second = panels(grid, 6)[1]
    assert not any(is_red(second[mid_y, x]) for x in range(x0 - 3, x0 + 4))


def test_masks_are_overlaid_in_their_panels(visualizer):
    sample = make_sample(1, 1)
    grid = visualizer.add_datasample('x', gray_image(), sample, out_file=None)
    image_panel, reader, hyp, consensus = panels(grid, 4)
    ann = sample.gt_annotations.data[0].numpy().astype(bool)
    ys, xs = np.nonzero(ann)
    inside = (2 * int(ys.mean()), 2 * int(xs.mean()))
    outside = (2 * 120, 2 * 120)
    # Reader masks in green, over a gray image: green rises, red falls.
    assert reader[inside][1] > GRAY + 20 and reader[inside][0] < GRAY - 20
    assert np.abs(reader[outside].astype(int) - GRAY).max() <= 3
    assert np.abs(image_panel[inside].astype(int) - GRAY).max() <= 3
    hyp_mask = sample.pred_hypotheses.data[0].numpy()
    ys, xs = np.nonzero(hyp_mask)
    inside = (2 * int(ys.mean()), 2 * int(xs.mean()))
    assert np.abs(hyp[inside].astype(int) - GRAY).max() > 20
    assert np.abs(consensus[inside].astype(int) - GRAY).max() > 20


def test_scores_are_the_functional_ged_and_d_avg(visualizer):
    sample = make_sample(4, 3)
    ann = sample.gt_annotations.data.numpy()
    hyp = sample.pred_hypotheses.data.numpy()
    ged, davg = visualizer.scores(ann.astype(bool), hyp)
    assert ged == pytest.approx(generalized_energy_distance(ann, hyp))
    assert davg == pytest.approx(100 * d_avg(ann, hyp, 0.0))
    assert visualizer.scores(None, hyp) is None
    assert visualizer.scores(np.zeros((0, 128, 128), bool), hyp) is None


def test_empty_masks_and_no_box_work(visualizer):
    grid = visualizer.add_datasample('x', gray_image(), make_sample(2, 1, empty=True, box=None),
                                     out_file=None)
    assert grid.shape[1] == grid_width(1 + 2 + 1 + 1, 256)
    # Only the title text differs from the gray image: no mask, no box drawn.
    assert not any(is_red(p) for p in panels(grid, 5)[0].reshape(-1, 3)[::97])


def test_out_file_is_written_in_bgr_order(visualizer, tmp_path):
    image = gray_image()
    image[:, :, 2] = 255  # blue image
    out = tmp_path / 'deep' / 'pic.png'
    grid = visualizer.add_datasample('x', image, make_sample(1, 1), out_file=str(out))
    written = cv2.imread(str(out))
    np.testing.assert_array_equal(written[..., ::-1], grid)
    assert written[-5, 5, 0] > 200 and written[-5, 5, 2] < 200  # BGR: blue first


def test_small_and_large_images_are_rescaled():
    vis = HypothesisVisualizer(name='test_rescale', min_panel_size=256, max_panel_size=512)
    assert vis.panel_size(128, 128) == (256, 256)
    assert vis.panel_size(100, 60) == (300, 180)  # x3, an integer factor
    assert vis.panel_size(300, 400) == (300, 400)
    assert vis.panel_size(1024, 512) == (512, 256)
    sample = make_sample(1, 1, size=1024, box=(100, 100, 900, 900))
    grid = vis.add_datasample('x', gray_image(1024), sample, out_file=None)
    assert grid.shape[1] == grid_width(4, 512)


def test_registered_and_writes_through_the_vis_backends(tmp_path):
    vis = VISUALIZERS.build(dict(type='HypothesisVisualizer', name='test_backend_vis',
                                 vis_backends=[dict(type='LocalVisBackend')],
                                 save_dir=str(tmp_path)))
    assert isinstance(vis, HypothesisVisualizer)
    vis.add_datasample('lesion00007', gray_image(), make_sample(2, 2), step=3)
    assert (tmp_path / 'vis_data' / 'vis_image' / 'lesion00007_3.png').is_file()


@pytest.mark.parametrize('runner_visualizer', ['SegLocalVisualizer', 'HypothesisVisualizer'])
def test_hook_draws_batch_images_named_after_samples(tmp_path, runner_visualizer):
    # The runner's visualizer is the current instance when hooks are built.
    cls = VISUALIZERS.get(runner_visualizer)
    name = f'test_hook_vis_{runner_visualizer}'
    cls.get_instance(name, save_dir=str(tmp_path), vis_backends=[dict(type='LocalVisBackend')])
    assert Visualizer.get_current_instance().instance_name == name
    hook = HypothesisVisualizationHook(draw=True, interval=2)
    assert isinstance(hook._visualizer, HypothesisVisualizer)
    samples = [make_sample(2, 3, size=96, box=(10, 10, 50, 60),
                           img_path=f'/d/samples/lesion{i:05d}.npz') for i in range(2)]
    # Network inputs are 64 x 64 (C, H, W) 0-255 tensors; the hook resizes them to ori_shape.
    inputs = [torch.full((3, 64, 64), 100.0) for _ in samples]
    runner = SimpleNamespace(iter=5)
    for batch_idx in range(3):  # interval 2: batches 1 only ((batch_idx + 1) % 2 == 0)
        hook._after_iter(runner, batch_idx, dict(inputs=inputs), samples, mode='test')
    hook._after_iter(runner, 1, dict(inputs=inputs), samples, mode='train')  # never drawn
    written = sorted(p.name for p in (tmp_path / 'vis_data' / 'vis_image').glob('*.png'))
    assert written == ['lesion00000_5.png', 'lesion00001_5.png']
    grid = cv2.imread(str(tmp_path / 'vis_data' / 'vis_image' / 'lesion00000_5.png'))
    # 96 px -> x3 panels of 288 px: image, 2 readers, 3 hypotheses, consensus.
    assert grid.shape[1] == grid_width(7, 288)


def test_hook_does_nothing_without_draw(tmp_path):
    HypothesisVisualizer.get_instance('test_hook_nodraw', save_dir=str(tmp_path),
                                      vis_backends=[dict(type='LocalVisBackend')])
    hook = HypothesisVisualizationHook(interval=1)
    hook._after_iter(SimpleNamespace(iter=0), 0, dict(inputs=[torch.zeros(3, 128, 128)]),
                     [make_sample()], mode='test')
    assert not (tmp_path / 'vis_data').exists()


def cpu_env():
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    env.pop('LOCAL_RANK', None)
    return env


@pytest.mark.slow
def test_tools_test_show_dir_writes_one_grid_per_test_image(tmp_path, mcl_checkpoint):
    config = CONFIG  # inherits configs/_base_/multi_annotator_runtime.py
    data_root = tmp_path / 'lesions'
    show_dir = tmp_path / 'show'
    loader = 'test_dataloader'
    cmd = [sys.executable, str(REPO / 'tools' / 'test.py'), str(config), str(mcl_checkpoint),
           '--work-dir', str(tmp_path / 'work'), '--show-dir', str(show_dir), '--cfg-options',
           f'{loader}.dataset.data_root={data_root}', f'{loader}.dataset.generator.num_train=0',
           f'{loader}.dataset.generator.num_val=0', f'{loader}.dataset.generator.num_test=4',
           f'{loader}.batch_size=2', f'{loader}.num_workers=0',
           f'{loader}.persistent_workers=False', 'default_hooks.visualization.interval=1']
    proc = subprocess.run(cmd, cwd=tmp_path, env=cpu_env(), capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    ids = (data_root / 'splits' / 'test.txt').read_text().split()
    assert len(ids) == 4
    # LocalVisBackend: <show dir>/vis_data/vis_image/<name>_<step>.png, step 0 when testing.
    pictures = sorted(p.relative_to(show_dir).as_posix() for p in show_dir.rglob('*.png'))
    assert pictures == sorted(f'vis_data/vis_image/{i}_0.png' for i in ids)
    grid = cv2.imread(str(show_dir / pictures[0]))
    # 128 px -> 256 px panels: image, 4 readers, 3 SAM-MCL hypotheses, consensus.
    assert grid.shape[1] == grid_width(1 + 4 + 3 + 1, 256)


def multi_annotator_configs():
    """Configs evaluated with GEDMetric (multi-annotator data, multi-hypothesis models)."""
    from mmengine.config import Config
    found = []
    for path in sorted(p for pattern in ('configs/**/*.py', 'projects/**/configs/**/*.py')
                       for p in REPO.glob(pattern) if '_base_' not in p.parts):
        evaluator = Config.fromfile(path).get('test_evaluator', {})
        if isinstance(evaluator, dict) and evaluator.get('type') == 'GEDMetric':
            found.append(path)
    return found


@pytest.mark.slow
def test_multi_annotator_configs_draw_hypotheses():
    configs = multi_annotator_configs()
    assert configs
    from mmengine.config import Config
    wrong = []
    for path in configs:
        cfg = Config.fromfile(path)
        if cfg.visualizer.type != 'HypothesisVisualizer' or \
                cfg.default_hooks.visualization.type != 'HypothesisVisualizationHook':
            wrong.append(str(path.relative_to(REPO)))
    assert not wrong, ('configs/_base_/multi_annotator_runtime.py (HypothesisVisualizer, '
                       f'HypothesisVisualizationHook) is not the runtime of {wrong}')
