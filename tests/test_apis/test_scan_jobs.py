"""mmsam.apis.scan_jobs.plan_scan_jobs: each scan's prompts checked against its header (D, H, W)
before a model is built; hand-worked slices, pixels and clicks of a 4 x 10 x 12 NIfTI scan."""
import nibabel as nib
import numpy as np
import pytest

from mmsam.apis.prompts import PromptError
from mmsam.apis.scan_jobs import ScanJob, plan_scan_jobs, scan_prompts
from mmsam.datasets.io.scan import MedicalImageError


@pytest.fixture
def scan(tmp_path):
    """A NIfTI scan stored (x, y, z) = (12, 10, 4): (D, H, W) = (4, 10, 12) as read."""
    path = tmp_path / 'case.nii.gz'
    nib.save(nib.Nifti1Image(np.zeros((12, 10, 4), np.int16), np.eye(4)), str(path))
    return str(path)


def test_a_box_on_a_slice_range_gives_one_box_per_slice(scan):
    prompts = scan_prompts(None, box=[1, 2, 8, 9], slices='1:3')
    [job] = plan_scan_jobs([scan], prompts)
    assert job == ScanJob(scan, {1: (1, 2, 8, 9), 2: (1, 2, 8, 9)}, None, None, None)
    assert not job.interactive


def test_clicks_alone_make_an_interactive_job(scan):
    prompts = scan_prompts(None, points=[3, 4, 2, 1, 5, 6, 2, 0])
    [job] = plan_scan_jobs([scan], prompts, interactive=True, propagate=True)
    assert job.interactive and job.boxes == {}
    coords, labels = job.points[2]
    np.testing.assert_array_equal(coords, [[3, 4], [5, 6]])
    np.testing.assert_array_equal(labels, [1, 0])
    assert [tuple(c) for c in job.clicks] == [(3, 4, 2, 1), (5, 6, 2, 0)]


def test_prompts_outside_the_scan_or_too_large_scans_fail_naming_the_file(scan, tmp_path):
    with pytest.raises(PromptError, match=r'case.nii.gz; need 0 <= x0 <= x1 <= 11'):
        plan_scan_jobs([scan], scan_prompts(None, box=[0, 0, 12, 5]))
    with pytest.raises(PromptError, match=r'case.nii.gz .*0 <= z <= 3'):
        plan_scan_jobs([scan], scan_prompts(None, points=[1, 1, 4, 1]), interactive=True)
    assert len(plan_scan_jobs([scan], scan_prompts(None, box=[0, 0, 5, 5]), max_voxels=480))
    with pytest.raises(MedicalImageError, match='480 voxels, over the limit of 479'):
        plan_scan_jobs([scan], scan_prompts(None, box=[0, 0, 5, 5]), max_voxels=479)
    logits = tmp_path / 'case.scan_logits.npz'
    logits.write_bytes(b'')
    prompts = scan_prompts(None, points=[1, 1, 0, 1], previous_mask=str(logits))
    with pytest.raises(PromptError, match='--propagate replays'):
        plan_scan_jobs([scan], prompts, interactive=True, propagate=True)
