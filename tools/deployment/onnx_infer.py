"""Run an exported model (tools/deployment/pytorch2onnx.py) with onnxruntime on CPU.

    python tools/deployment/onnx_infer.py ONNX_DIR INPUT [INPUT ...] --out-dir DIR
        [every option of tools/infer.py: --box, --slices, --prompts, --intensity, --window,
         --pictures, --picture-slices, --max-voxels, --batch-size, --data-meta, ...]

Inputs and outputs are those of ``tools/infer.py`` (scans, images, .npz; label NIfTI in the
scan's geometry, hypotheses, agreement, pictures): it is the same tool, with the network run by
onnxruntime (:class:`mmsam.apis.onnx_runner.OnnxSegmentor`) instead of PyTorch, and the
config read from ``ONNX_DIR/config.py``.
"""
import importlib.util
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _infer_tool():
    spec = importlib.util.spec_from_file_location('mmsam_tool_infer_for_onnx',
                                                  osp.join(REPO_ROOT, 'tools', 'infer.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_onnx_model(parser, args, cfg):
    """The OnnxSegmentor of ``args.onnx_dir`` with the (possibly overridden) config."""
    from mmsam.apis.onnx_runner import OnnxSegmentor
    if args.device != 'cpu':
        parser.error(f'--device {args.device}: onnx_infer.py runs on CPU (onnxruntime)')
    try:
        return OnnxSegmentor(args.onnx_dir, cfg=cfg)
    except FileNotFoundError as err:
        parser.error(str(err))


def main(argv=None):
    infer = _infer_tool()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith('-'):
        infer.parse_args(['-h'])
    onnx_dir = argv[0]
    if not osp.isdir(onnx_dir):
        sys.exit(f'onnx_infer.py: error: {onnx_dir}: no such export folder')
    deploy = osp.join(onnx_dir, 'deploy.json')

    def parse(rest):
        parser, args = infer.parse_args([osp.join(onnx_dir, 'config.py'), deploy, *rest])
        args.onnx_dir = onnx_dir
        return parser, args

    return infer.main(argv[1:], load_model=load_onnx_model, parse=parse)


if __name__ == '__main__':
    main()
