"""Read the test metrics that ``tools/test.py`` saves in a work dir."""
import glob
import json
import os.path as osp


def latest_result(work_dir: str) -> dict:
    """The newest test-metrics json of a work dir, as a dict.

    Args:
        work_dir (str): a work dir holding ``<timestamp>/<timestamp>.json`` files, one per
            ``tools/test.py`` run (training's ``vis_data/scalars.json`` is skipped).

    Returns:
        dict: the metrics of the run whose timestamp folder sorts last.

    Raises:
        FileNotFoundError: the work dir holds no test results.
    """
    files = sorted(glob.glob(osp.join(work_dir, '*', '*.json')),
                   key=lambda p: osp.basename(osp.dirname(p)))
    files = [f for f in files if osp.basename(f) != 'scalars.json']
    if not files:
        raise FileNotFoundError(f'no test results (<timestamp>/<timestamp>.json) under '
                                f'{work_dir}; run tools/test.py with --work-dir {work_dir}')
    with open(files[-1]) as f:
        return json.load(f)
