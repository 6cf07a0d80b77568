"""The samed fixture's loss goes through mmsam's own label path (data preprocessor, then the
head's loss_label_resize): the official low_res_label is scipy zoom(order=0), which
F.interpolate(nearest) does not reproduce."""
from pathlib import Path

import pytest
import torch

from mmsam.models.converters import TOLERANCE, check_fixture

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO.parent / 'shared' / 'fixtures' / 'official' / 'samed'

pytestmark = pytest.mark.skipif(
    not FIXTURE.is_dir(), reason=f'{FIXTURE} (the shared official-code fixture pack, '
    '../shared next to the repository) is absent in this clone')


def test_samed_loss_needs_the_official_label_zoom(tmp_path):
    torch.set_num_threads(1)
    official = check_fixture(str(FIXTURE), str(REPO))
    assert official['passed'], official['diffs']
    assert "loss_label_resize='zoom': 0 of 1024" in official['notes'][-1]
    config = tmp_path / 'interpolate.py'
    config.write_text(f"_base_ = ['{REPO / 'configs/samed/samed_vit-b_synapse.py'}']\n"
                      "model = dict(decode_head=dict(loss_label_resize='interpolate'))\n")
    result = check_fixture(str(FIXTURE), str(REPO), config=str(config))
    failing = {k for k, d in result['diffs'].items() if d > TOLERANCE}
    assert failing == {'loss', 'loss_ce', 'loss_dice'}  # the network itself is unchanged
    assert "'interpolate': 150 of 1024" in result['notes'][-1]
