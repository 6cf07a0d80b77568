"""SliceVisualizationHook: which slices of which cases are drawn, for 2D slices and 3D volumes."""
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer

from mmsam.engine.hooks import SliceVisualizationHook
from mmsam.visualization.slice_choice import choose_slices, slice_scores
from mmsam.visualization import slice_overlay

CLASSES = ('background', 'liver', 'gallbladder', 'pancreas')
PALETTE = [[0, 0, 0], [200, 0, 0], [0, 200, 0], [0, 0, 200]]


def case_labels(depth=8, size=32):
    """(D, H, W) gt: liver on every slice, gallbladder on 2-3, pancreas on 3 and 6."""
    gt = np.zeros((depth, size, size), np.uint8)
    gt[:, 4:20, 4:20] = 1
    gt[2:4, 22:26, 22:26] = 2
    gt[3, 26:30, 4:8] = 3
    gt[6, 26:30, 4:10] = 3
    return gt


@pytest.fixture
def visualizer(tmp_path, request):
    vis = SegLocalVisualizer.get_instance(f'slice_hook_{request.node.name}',
                                          vis_backends=[dict(type='LocalVisBackend')],
                                          save_dir=str(tmp_path))
    vis.dataset_meta = dict(classes=CLASSES, palette=PALETTE)
    return vis


def written(tmp_path):
    return sorted(p.name for p in (tmp_path / 'vis_data' / 'vis_image').glob('*.png'))


def slice_sample(case, index, depth, gt, pred):
    sample = SegDataSample()
    sample.set_metainfo(dict(case_id=case, slice_index=index, num_slices=depth,
                             ori_shape=gt.shape, img_shape=gt.shape))
    sample.gt_sem_seg = PixelData(data=torch.from_numpy(gt[None].astype(np.int64)))
    sample.pred_sem_seg = PixelData(data=torch.from_numpy(pred[None].astype(np.int64)))
    return sample


def run_2d(hook, cases, batch_size=3, mode='test'):
    """Feed ``cases`` (name -> (D, H, W) gt) slice by slice in batches, as a test loop does."""
    stream = [(case, i, gt) for case, gt in cases.items() for i in range(len(gt))]
    runner = SimpleNamespace(iter=0)
    hook._before_epoch(runner, mode=mode)
    for b in range(0, len(stream), batch_size):
        batch = stream[b:b + batch_size]
        inputs = [torch.full((3,) + gt.shape[1:], 80.0) for _, _, gt in batch]
        outputs = [slice_sample(case, i, len(gt), gt[i], gt[i]) for case, i, gt in batch]
        hook._after_iter(runner, b // batch_size, dict(inputs=inputs), outputs, mode=mode)
    hook._after_epoch(runner, mode=mode)


def test_scores_and_choice():
    gt = case_labels()
    scores = slice_scores(gt)
    assert scores[3].tolist() == [3, 16]  # liver, gallbladder, pancreas (4 x 4 = 16 voxels)
    assert scores[6].tolist() == [2, 24] and scores[0].tolist() == [1, 256]
    assert slice_scores(np.zeros((2, 4, 4), np.uint8)).tolist() == [[0, 0], [0, 0]]
    assert choose_slices(scores, range(8), 1, depth=8) == [3]
    # The second-best slices (2 and 6 have 2 classes) next to 3: 2 is too close, 6 is taken.
    assert choose_slices(scores, range(8), 2, depth=8) == [3, 6]
    assert choose_slices(scores, range(8), 1, 'middle', 8) == [4]
    assert choose_slices(scores, range(8), 3, 'middle', 8) == [2, 4, 6]
    assert choose_slices(scores, range(8), 8, depth=8) == list(range(8))


def test_2d_slices_two_per_case_from_every_case(tmp_path, visualizer):
    hook = SliceVisualizationHook(draw=True, slices_per_case=2)
    run_2d(hook, {'case0001': case_labels(), 'case0002': case_labels()[::-1].copy()})
    assert written(tmp_path) == ['test_case0001_slice003_0.png', 'test_case0001_slice006_0.png',
                                 'test_case0002_slice001_0.png', 'test_case0002_slice004_0.png']
    picture = cv2.imread(str(tmp_path / 'vis_data' / 'vis_image' / written(tmp_path)[0]))
    # 32 px slices -> x12 panels of 384 px, two of them side by side.
    assert picture.shape[1] == 3 * slice_overlay.MARGIN + 2 * 384
    assert picture.shape[0] > 384


def test_interval_counts_cases_and_none_draws_every_slice(tmp_path, visualizer):
    hook = SliceVisualizationHook(draw=True, interval=2, slices_per_case=None)
    run_2d(hook, {f'case{i}': case_labels()[:3].copy() for i in range(3)})
    assert written(tmp_path) == [f'test_case{c}_slice{i:03d}_0.png' for c in (0, 2)
                                 for i in range(3)]


def test_nothing_without_draw_or_in_training(tmp_path, visualizer):
    run_2d(SliceVisualizationHook(draw=False), {'case0001': case_labels()})
    run_2d(SliceVisualizationHook(draw=True), {'case0001': case_labels()}, mode='train')
    assert not (tmp_path / 'vis_data').exists()


def test_3d_volume_sample(tmp_path, visualizer, monkeypatch):
    calls = []
    real_legend = slice_overlay.draw_legend
    monkeypatch.setattr(slice_overlay, 'draw_legend',
                        lambda names, *a: calls.append(list(names)) or real_legend(names, *a))
    gt = case_labels(depth=8, size=32)
    pred = gt.copy()
    pred[3] = 0  # the prediction misses the best slice entirely
    sample = SegDataSample()
    sample.set_metainfo(dict(case_id='case0007', is_volume=True, native_shape=gt.shape,
                             ori_shape=(4, 16, 16), img_shape=(4, 16, 16)))
    sample.gt_sem_seg = PixelData(data=torch.from_numpy(gt.astype(np.int64)))
    sample.pred_sem_seg = PixelData(data=torch.from_numpy(pred.astype(np.int64)))
    # The z-scored input on a coarser (resampled) grid than the native-grid labels.
    volume = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    hook = SliceVisualizationHook(draw=True, slices_per_case=1)
    runner = SimpleNamespace(iter=0)
    hook._before_epoch(runner, mode='test')
    hook._after_iter(runner, 0, dict(inputs=[volume]), [sample], mode='test')
    hook._after_epoch(runner, mode='test')
    assert written(tmp_path) == ['test_case0007_slice003_0.png']
    picture = cv2.imread(str(tmp_path / 'vis_data' / 'vis_image' / written(tmp_path)[0]))
    assert picture.shape[1] == 3 * slice_overlay.MARGIN + 2 * 384
    assert calls == [['liver', 'gallbladder', 'pancreas']]
    # The image is shown by percentiles, not clipped to 0-255 as 2D inputs are.
    panel = picture[-384 - 60:-60, slice_overlay.MARGIN + 200:slice_overlay.MARGIN + 380]
    assert panel.std() > 10

    hook = SliceVisualizationHook(draw=True, slices_per_case=2, slice_choice='middle')
    hook._after_iter(SimpleNamespace(iter=5), 0, dict(inputs=[volume]), [sample], mode='val')
    assert {'val_case0007_slice002_5.png', 'val_case0007_slice005_5.png'} <= set(
        written(tmp_path))


def test_bad_arguments():
    with pytest.raises(ValueError, match='slice_choice'):
        SliceVisualizationHook(slice_choice='best')
    with pytest.raises(ValueError, match='slices_per_case'):
        SliceVisualizationHook(slices_per_case=0)
    with pytest.raises(ValueError, match='interval'):
        SliceVisualizationHook(interval=0)
