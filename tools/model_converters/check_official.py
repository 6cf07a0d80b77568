"""Check mmsam against an official implementation's outputs (one fixture folder).

    python tools/model_converters/check_official.py FIXTURE_DIR [--attn-impl fused]
        [--config CONFIG] [--dump OUT.pt]

FIXTURE_DIR holds the official weight file(s), ``inputs.pt``, the official ``outputs.pt`` and
``meta.json`` (e.g. ../shared/fixtures/official/samed). The tool builds the model of the
method's paper-table config with meta.json's widths, converts the official file(s) with the
method's converter, runs ``inputs.pt`` through mmsam's preprocessing and forward, and prints
the max abs difference per key of ``outputs.pt``. It exits 1 when one is above 1e-5 (fp32) or
missing. ``--dump`` writes mmsam's outputs under the same keys. This is also how a user checks
a conversion of their own files made the same way.
"""
import argparse
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
from mmsam.models.converters import TOLERANCE, check_fixture
from mmsam.utils.io import atomic_torch_save


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('fixture_dir', help='folder with meta.json, inputs.pt, outputs.pt')
    parser.add_argument('--attn-impl', default='fused', choices=('fused', 'reference'),
                        help="the image encoder's attention implementation")
    parser.add_argument('--config', help='build from this config instead of the method\'s '
                        'paper-table config')
    parser.add_argument('--dump', help='write mmsam\'s outputs (same keys) to this .pt')
    args = parser.parse_args(argv)
    try:
        result = check_fixture(args.fixture_dir, REPO, args.attn_impl, args.config)
    except (FileNotFoundError, KeyError, ValueError, RuntimeError) as err:
        sys.exit(f'error: {err}')
    print(f'case {result["case"]}: config {osp.relpath(result["config"], REPO)}, '
          f'attn_impl {args.attn_impl}')
    for note in result['notes']:
        print(f'  {note}')
    width = max(len(k) for k in result['diffs'])
    for key, diff in result['diffs'].items():
        if diff is None:
            status = 'MISSING (mmsam gives no such output)'
        else:
            status = f'{diff:.3e}' + ('' if diff <= TOLERANCE else f'  > {TOLERANCE:g}')
        print(f'  {key:<{width}}  {status}')
    if args.dump:
        atomic_torch_save({k: v.detach().cpu() for k, v in result['outputs'].items()},
                          args.dump)
        print(f'wrote {args.dump}')
    print('PASS' if result['passed'] else 'FAIL')
    sys.exit(0 if result['passed'] else 1)


if __name__ == '__main__':
    main()
