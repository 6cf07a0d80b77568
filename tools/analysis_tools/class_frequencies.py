"""Pixel frequency of each class in a config's training set (for H-SAM's class balance).

    python tools/analysis_tools/class_frequencies.py configs/hsam/hsam_vit-b_synapse_10pct.py

Prints the list to put in ``model.decode_head.class_frequencies``; without it, ``HSAMHead``
counts the classes of the training labels it has seen. Labels are read from the dataset's
files through its pipeline's loader (no augmentation).
"""
import argparse

import numpy as np
from mmengine.config import Config, DictAction

from mmsam.registry import DATASETS
from mmsam.utils import register_all_modules


def class_frequencies(dataset):
    """Pixel frequency of each class over a dataset.

    Args:
        dataset (BaseSegDataset): yields ``gt_seg_map`` through its pipeline's first step.

    Returns:
        ndarray: (C,) frequencies summing to 1 (255 pixels ignored).
    """
    num_classes = len(dataset.metainfo['classes'])
    counts = np.zeros(num_classes, dtype=np.int64)
    load = dataset.pipeline.transforms[0]
    for i in range(len(dataset)):
        label = load(dataset.get_data_info(i))['gt_seg_map']
        counts += np.bincount(label[label != 255].ravel(), minlength=num_classes)[:num_classes]
    return counts / max(counts.sum(), 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, as in tools/train.py')
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    register_all_modules(init_default_scope=True)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    freqs = class_frequencies(dataset)
    for name, freq in zip(dataset.metainfo['classes'], freqs):
        print(f'{name:>16s} {freq:.6f}')
    print('class_frequencies=[' + ', '.join(f'{f:.6g}' for f in freqs) + ']')
    return freqs


if __name__ == '__main__':
    main()
