"""Check the environment mmsam runs in: versions, compiled ops, GPUs, CPU bf16; each mismatch
with what to do.

    python tools/misc/check_env.py

Exits 1 when a problem keeps mmsam from working as installed (notes alone exit 0). The same
report: ``python -m mmsam.utils.collect_env``.
"""
import os.path as osp
import sys

# Running `python tools/misc/check_env.py` puts tools/misc/ (not the repository) on sys.path.
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from mmsam.utils.collect_env import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
