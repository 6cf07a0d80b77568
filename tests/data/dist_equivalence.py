"""Test driver: trains (then tests) several configs in one process, alone or as one rank of a
torchrun job, and records what the distributed-equivalence test compares.

    python tests/data/dist_equivalence.py OUT SPEC.json
    python -m torch.distributed.run --nproc_per_node 2 tests/data/dist_equivalence.py OUT SPEC.json

``SPEC.json`` is a list of ``{"name", "config", "options": {...}, "test": bool}``. For each
entry the script builds mmsam's Runner (``--launcher pytorch`` under torchrun), trains, and
writes ``OUT/<name>.rank<R>.json`` (the rank's training loss of each iteration and, with
``test``, the test metrics) and, on rank 0, ``OUT/<name>.pth`` (the final state dict).
"""
import json
import os
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402

from mmsam.engine import build_runner, destroy_process_group  # noqa: E402
from mmsam.utils import register_all_modules  # noqa: E402


class LossRecorder(Hook):
    priority = 'LOWEST'

    def __init__(self):
        self.losses = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses.append(float(outputs['loss']))


def main(out, spec_path):
    register_all_modules(init_default_scope=True)
    with open(spec_path) as f:
        spec = json.load(f)
    distributed = 'WORLD_SIZE' in os.environ
    rank = int(os.environ.get('RANK', 0))
    for entry in spec:
        cfg = Config.fromfile(entry['config'])
        cfg.merge_from_dict(entry['options'])
        cfg.launcher = 'pytorch' if distributed else 'none'
        cfg.work_dir = osp.join(out, f'{entry["name"]}_work')
        cfg.experiment_name = entry['name']
        runner = build_runner(cfg)
        recorder = LossRecorder()
        runner.register_hook(recorder)
        runner.train()
        record = dict(losses=recorder.losses)
        if entry.get('test'):
            record['metrics'] = {k: float(v) for k, v in runner.test().items()}
        with open(osp.join(out, f'{entry["name"]}.rank{rank}.json'), 'w') as f:
            json.dump(record, f)
        if rank == 0:
            model = getattr(runner.model, 'module', runner.model)
            torch.save(model.state_dict(), osp.join(out, f'{entry["name"]}.pth'))
    destroy_process_group()


if __name__ == '__main__':
    main(*sys.argv[1:3])
