"""docs/own_data.md's worked example, run as written: make the NIfTI pairs, convert, train 2
epochs with validation, test, infer; infer.py's labels equal tools/test.py's predictions."""
import os
import re
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from conftest import REPO_ROOT

pytestmark = pytest.mark.slow

DOC = REPO_ROOT / 'docs' / 'own_data.md'
WORK = 'work_dirs/samed_vit-tiny_my-ct'


def walkthrough_blocks():
    """The fenced blocks of the worked example up to "Train a 3D model", in order:
    [(language, text, file named by a ``<!-- file: PATH -->`` line above it, or None)]."""
    text = DOC.read_text()
    section = text[text.index('## Worked example'):text.index('### Train a 3D model')]
    blocks = []
    for match in re.finditer(r'(?:<!-- file: (\S+) -->\n)?```(\w+)\n(.*?)```', section, re.S):
        blocks.append((match.group(2), match.group(3), match.group(1)))
    return blocks


def shell_commands(block):
    """The commands of a bash block: continuation lines joined, comments dropped."""
    joined = block.replace('\\\n', ' ')
    return [line.split() for line in joined.splitlines()
            if line.strip() and not line.lstrip().startswith('#')]


@pytest.fixture(scope='module')
def walkthrough(tmp_path_factory):
    """Run every block in a fresh folder that holds the repository's configs/ and tools/."""
    root = tmp_path_factory.mktemp('own_data')
    for name in ('configs', 'tools'):
        os.symlink(REPO_ROOT / name, root / name)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1')
    outputs = []
    for language, text, path in walkthrough_blocks():
        if path is not None:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text)
            continue
        if language == 'python':
            commands = [[sys.executable, '-c', text]]
        else:
            assert language == 'bash', language
            commands = [[sys.executable if word == 'python' else word for word in command]
                        for command in shell_commands(text)]
        for command in commands:
            proc = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True,
                                  timeout=900)
            assert proc.returncode == 0, f'{command[:3]}:\n{proc.stderr[-4000:]}'
            outputs.append((command, proc))
    return root, outputs


def test_the_documented_commands_run(walkthrough):
    root, outputs = walkthrough
    scripts = [next((w for w in cmd if w.endswith('.py')), None) for cmd, _ in outputs]
    assert scripts == [None, 'tools/dataset_converters/nifti_folder.py', 'tools/train.py',
                       'tools/test.py', 'tools/infer.py']
    train_log = outputs[2][1].stdout + outputs[2][1].stderr
    assert 'Iter(val) [1/1]' in train_log and 'mDice' in train_log  # validated, no crash
    test_log = outputs[3][1].stdout + outputs[3][1].stderr
    assert 'liver' in test_log and 'tumour' in test_log  # the per-class table
    assert 'HD95 (mm)' in test_log  # the converter stored the spacing
    assert (root / WORK / 'epoch_2.pth').is_file()
    assert list((root / WORK / 'vis').rglob('*.png'))


def test_infer_labels_equal_the_test_predictions(walkthrough):
    root, _ = walkthrough
    tested = np.load(root / WORK / 'preds' / 'case04.npz')['pred']  # (D, H, W)
    scan = nib.load(root / 'my_nifti' / 'images' / 'case04.nii.gz')
    labels = nib.load(root / WORK / 'infer' / 'case04_label.nii.gz')
    np.testing.assert_allclose(labels.affine, scan.affine)  # the flipped x axis kept
    inferred = np.asarray(labels.dataobj)  # (x, y, z)
    assert inferred.shape == scan.shape == (96, 80, 8)
    assert (tested == 1).sum() > 1000  # the liver is found: the labels are not trivially equal
    np.testing.assert_array_equal(inferred.transpose(2, 1, 0), tested)
