"""Check the environment mmsam runs in: versions, compiled ops, GPUs, CPU bf16; each mismatch
with what to do.

    python tools/misc/check_env.py

Exits 1 when a problem keeps mmsam from working as installed (notes alone exit 0). The same
report: ``python -m mmsam.utils.collect_env``.
"""
import sys

from mmsam.utils.collect_env import main

if __name__ == '__main__':
    sys.exit(main())
