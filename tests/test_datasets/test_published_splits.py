"""H-SAM's published split lists ship with the converters and are their command-line defaults."""
import importlib
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import load_script

from mmsam.datasets.splits import (
    HSAM_LA_4, HSAM_PROMISE12_3, HSAM_PROMISE12_TEST, HSAM_SYNAPSE_10PCT)
from mmsam.datasets.converters.slice_lists import read_slice_list


def _module(name):
    return importlib.import_module(f'mmsam.datasets.converters.{name}')


def _cli(name):
    return load_script(f'tools/dataset_converters/{name}.py')


@pytest.fixture(scope='module')
def synapse():
    return _module('synapse')


def test_shipped_lists_are_the_published_ones(synapse):
    names, cases = read_slice_list(HSAM_SYNAPSE_10PCT)
    # "10% training data, i.e. 221 slices, randomly from different subjects" (supp. A)
    assert len(names) == 221 and len(cases) == 18
    assert set(cases) == set(synapse.ALL_CASES) - set(synapse.TEST_CASES)
    names, cases = read_slice_list(HSAM_LA_4)
    assert len(names) == 224 and cases == ['06SR5RBREL16DQ6M8LWS', '0RZDK210BSMWAA6467LU',
                                           '1D7CUD1955YZPGK8XHJX', '1GU15S0GJ6PFNARO469W']
    names, cases = read_slice_list(HSAM_PROMISE12_3)
    assert len(names) == 58 and cases == ['Case29', 'Case14', 'Case05']
    test = Path(HSAM_PROMISE12_TEST).read_text().split()
    assert test == ['Case16', 'Case35', 'Case34', 'Case49', 'Case23', 'Case12', 'Case28',
                    'Case43', 'Case20', 'Case13']
    assert not set(test) & set(cases)


def _transunet_release(root, slices):
    """The listed slices of every training case plus one more (slice 999) each."""
    rng = np.random.default_rng(0)
    (root / 'train_npz').mkdir(parents=True)
    (root / 'test_vol_h5').mkdir()
    by_case = {}
    for name in slices:
        by_case.setdefault(name.rsplit('_slice', 1)[0], []).append(name)
    for case, names in by_case.items():
        for name in [*names, f'{case}_slice999']:
            label = rng.integers(0, 9, (8, 8)).astype(np.float32)
            np.savez(root / 'train_npz' / f'{name}.npz', image=rng.random((8, 8)), label=label)
    return by_case


def test_synapse_cli_defaults_to_the_published_10pct_list(tmp_path, synapse):
    names, _ = read_slice_list(HSAM_SYNAPSE_10PCT)
    src = tmp_path / 'src'
    _transunet_release(src, names)
    for case in synapse.TEST_CASES:
        with h5py.File(src / 'test_vol_h5' / f'{case}.npy.h5', 'w') as f:
            f['image'] = np.zeros((2, 8, 8), np.float32)
            f['label'] = np.zeros((2, 8, 8), np.float32)
    assert _cli('synapse').main([str(src), str(tmp_path / 'out')]) == 0
    split = (tmp_path / 'out' / 'splits' / 'train_10pct.txt').read_text().split()
    assert split == names
    # a seed asks for the seeded draw instead
    assert _cli('synapse').main([str(src), str(tmp_path / 'drawn'), '--seed', '0']) == 0
    drawn = (tmp_path / 'drawn' / 'splits' / 'train_10pct.txt').read_text().split()
    assert len(drawn) == round(0.1 * len(list((src / 'train_npz').iterdir())))
    assert drawn != names
