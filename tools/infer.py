"""Draw a trained multi-hypothesis model's masks for images: one PNG grid per image.

    python tools/infer.py CONFIG CHECKPOINT IMAGE [IMAGE ...] --out-dir DIR
        [--box X0 Y0 X1 Y1] [--num-hypotheses M] [--device cpu] [--cfg-options k=v ...]

IMAGE is either a multi-annotator ``.npz`` sample (``image`` (H, W) in [0, 1] and ``masks``
(K, H, W), as the LIDC/QUBIQ converters and the synthetic lesions write them) or a PNG/JPEG/...
image (gray or RGB). An ``.npz`` goes through the config's test pipeline, so its box prompt
comes from the annotations as at test time, and the picture shows every annotator with the
image's GED and D_avg in the title. A plain image has no annotations: its box prompt is given
with ``--box`` (pixels of the image, ``x0 y0 x1 y1``), and it is resized and packed as the test
pipeline does. ``--box`` with an ``.npz`` replaces the box drawn from its annotations.

Each picture (see ``HypothesisVisualizer``) is written to ``DIR/<image name>.png``; the paths
are printed.
"""
import argparse
import os.path as osp
import sys

# Running `python tools/infer.py` puts tools/ (not the repository) on sys.path.
REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

from mmsam.apis import init_model  # noqa: E402
from mmsam.engine import ConfigArgumentError, ConfigError, load_config  # noqa: E402
from mmsam.registry import TRANSFORMS  # noqa: E402
from mmsam.utils import register_all_modules  # noqa: E402
from mmsam.visualization.hypothesis_visualizer import HypothesisVisualizer  # noqa: E402

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')
# Test-pipeline steps that need a sample file's annotations; plain images skip them (and the
# loading steps: the image is loaded here).
ANNOTATION_TRANSFORMS = ('BoxPromptFromAnnotation', )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Draw a multi-hypothesis model\'s masks for .npz samples or images')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint written by tools/train.py')
    parser.add_argument('images', nargs='+', metavar='IMAGE',
                        help='multi-annotator .npz samples or image files (need --box)')
    parser.add_argument('--out-dir', required=True, help='where the PNG grids are written')
    parser.add_argument('--box', type=float, nargs=4, metavar=('X0', 'Y0', 'X1', 'Y1'),
                        help='box prompt in pixels of the image (required for image files)')
    parser.add_argument('--num-hypotheses', type=int,
                        help='M, hypotheses per image (model.test_cfg.num_hypotheses)')
    parser.add_argument('--device', default='cpu', help='e.g. cpu or cuda:0')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides of the config, key=value')
    args = parser.parse_args(argv)
    check_args(parser, args)
    return parser, args


def check_args(parser, args):
    """Fails early (before any model is built) on missing files and a missing --box."""
    for what, path in (('config', args.config), ('checkpoint', args.checkpoint)):
        if not osp.isfile(path):
            parser.error(f'{what} {path}: no such file')
    for path in args.images:
        if not osp.isfile(path):
            parser.error(f'image {path}: no such file')
        suffix = osp.splitext(path)[1].lower()
        if suffix != '.npz' and suffix not in IMAGE_SUFFIXES:
            parser.error(f'image {path}: unsupported type {suffix!r}; give a multi-annotator '
                         f'.npz sample or an image ({", ".join(IMAGE_SUFFIXES)})')
        if suffix != '.npz' and args.box is None:
            parser.error(f'image {path} has no annotations to draw a box prompt from: give '
                         'the box with --box X0 Y0 X1 Y1 (pixels of the image)')
    if args.box is not None:
        x0, y0, x1, y1 = args.box
        if min(args.box) < 0 or x1 < x0 or y1 < y0:
            parser.error(f'--box {x0:g} {y0:g} {x1:g} {y1:g}: need 0 <= x0 <= x1 and '
                         '0 <= y0 <= y1 (pixels of the image)')
    if args.num_hypotheses is not None and args.num_hypotheses < 1:
        parser.error(f'--num-hypotheses must be >= 1, got {args.num_hypotheses}')


def test_pipeline_of(cfg):
    """The config's test pipeline (list of transform dicts)."""
    pipeline = cfg.get('test_dataloader', {}).get('dataset', {}).get('pipeline')
    if pipeline is None:
        pipeline = cfg.get('test_pipeline')
    if pipeline is None:
        raise ValueError('the config has neither test_dataloader.dataset.pipeline nor '
                         'test_pipeline')
    return list(pipeline)


def is_loading(transform_cfg):
    return str(transform_cfg['type']).startswith('Load')


def run_pipeline(transforms, results):
    """Applies built transforms in order; returns the packed results and the loaded image."""
    loaded = None
    for transform_cfg, transform in transforms:
        if loaded is None and not is_loading(transform_cfg):
            loaded = results['img'].copy()  # the image before resizing: what is drawn
        results = transform(results)
        if results is None:
            raise ValueError(f'the test pipeline step {transform_cfg["type"]} dropped the '
                             'sample')
    return results, loaded


def prepare_npz(path, transforms, box):
    """Packed inputs and the loaded image of a multi-annotator ``.npz`` sample."""
    packed, image = run_pipeline(
        transforms, dict(img_path=path, seg_fields=[], reduce_zero_label=False))
    if box is not None:
        packed['data_samples'].set_metainfo(dict(prompt_box=box))
    return packed, image


def prepare_image(path, transforms, box):
    """Packed inputs and the loaded RGB image of an image file with the given box."""
    with open(path, 'rb') as f:
        image = cv2.imdecode(np.frombuffer(f.read(), np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError('not a readable image')
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)  # gray files come as 3 equal channels
    height, width = image.shape[:2]
    if box[2] > width - 1 or box[3] > height - 1:
        raise ValueError(f'--box {" ".join(f"{v:g}" for v in box)} lies outside the '
                         f'{width} x {height} image (x1 <= {width - 1}, y1 <= {height - 1})')
    results = dict(img_path=path, img=image, img_shape=(height, width),
                   ori_shape=(height, width), prompt_box=box, seg_fields=[],
                   reduce_zero_label=False)
    packed, _ = run_pipeline(transforms, results)
    return packed, image


def unique_names(paths):
    """Output names: each file's basename without extension, numbered when repeated."""
    names, seen = [], {}
    for path in paths:
        name = osp.splitext(osp.basename(path))[0]
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f'{name}_{seen[name]}')
    return names


def build_visualizer(cfg):
    """A HypothesisVisualizer with the config's visualizer options when it configures one."""
    options = {}
    vis_cfg = cfg.get('visualizer')
    if vis_cfg is not None and vis_cfg.get('type') in ('HypothesisVisualizer',
                                                        HypothesisVisualizer):
        options = {k: v for k, v in vis_cfg.items()
                   if k not in ('type', 'name', 'vis_backends', 'save_dir')}
    return HypothesisVisualizer(name='infer_visualizer', **options)


def main(argv=None):
    parser, args = parse_args(argv)
    register_all_modules(init_default_scope=True)
    try:
        cfg = load_config(args.config)
    except ConfigError as err:
        parser.error(str(err))
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.num_hypotheses is not None:
        cfg.merge_from_dict({'model.test_cfg.num_hypotheses': args.num_hypotheses})
    pipeline = test_pipeline_of(cfg)
    npz_steps = [(t, TRANSFORMS.build(t)) for t in pipeline]
    image_steps = [(t, step) for t, step in npz_steps
                   if not is_loading(t) and t['type'] not in ANNOTATION_TRANSFORMS]
    box = None if args.box is None else np.asarray(args.box, dtype=np.float32)

    # Every input is read before the model is built, so a bad file fails at once.
    inputs = []
    for path in args.images:
        try:
            if path.lower().endswith('.npz'):
                inputs.append(prepare_npz(path, npz_steps, box))
            else:
                inputs.append(prepare_image(path, image_steps, box))
        except (OSError, KeyError, ValueError) as err:
            parser.error(f'image {path}: {err}')

    try:
        model = init_model(cfg, args.checkpoint, device=args.device)
    except ConfigArgumentError as err:
        parser.error(f'{err} (config {args.config})')
    visualizer = build_visualizer(cfg)
    written = []
    for name, (packed, image), path in zip(unique_names(args.images), inputs, args.images):
        with torch.no_grad():
            (sample, ) = model.test_step(dict(inputs=[packed['inputs']],
                                              data_samples=[packed['data_samples']]))
        sample = sample.cpu()
        if 'pred_hypotheses' not in sample:
            parser.error(f'{args.config}: the model gives no pred_hypotheses; infer.py draws '
                         'multi-hypothesis segmentors (model.type=MultiHypothesisSegmentor)')
        out_file = osp.join(args.out_dir, f'{name}.png')
        visualizer.add_datasample(name, np.clip(image, 0, 255).astype(np.uint8), sample,
                                  out_file=out_file)
        written.append(out_file)
        print(out_file)
    return written


if __name__ == '__main__':
    main()
