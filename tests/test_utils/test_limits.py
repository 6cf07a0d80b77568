"""mmsam.utils.limits: the voxel limit from the argument, the environment and the default."""
import pytest

from mmsam.utils.limits import MAX_VOXELS, check_voxel_limit, max_voxels


def test_within_limit_returns_voxel_count():
    assert check_voxel_limit((2, 3, 4), 'a.nii.gz', limit=24) == 24


def test_over_limit_names_file_shape_and_fix():
    with pytest.raises(ValueError, match=r'big\.nii\.gz.*\(2, 3, 5\).*30.*over the limit of 24.*'
                                         r'MMSAM_MAX_VOXELS'):
        check_voxel_limit((2, 3, 5), 'big.nii.gz', limit=24)


def test_environment_overrides_default(monkeypatch):
    monkeypatch.delenv('MMSAM_MAX_VOXELS', raising=False)
    assert max_voxels() == MAX_VOXELS
    monkeypatch.setenv('MMSAM_MAX_VOXELS', '1e3')
    assert max_voxels() == 1000
    assert max_voxels(5) == 5
    monkeypatch.setenv('MMSAM_MAX_VOXELS', 'lots')
    with pytest.raises(ValueError, match='MMSAM_MAX_VOXELS'):
        max_voxels()


def test_custom_error_class():
    class ConversionError(RuntimeError):
        pass
    with pytest.raises(ConversionError):
        check_voxel_limit((10, 10, 10), 'x.mha', limit=999, error=ConversionError)
