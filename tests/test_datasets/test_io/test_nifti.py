"""mmsam.datasets.io.nifti, the one NIfTI reader: bad files, dimensions, geometry, the limit.

Expected values come from nibabel itself (the arrays and zooms written) or are stated by hand.
"""
import gzip

import nibabel as nib
import numpy as np
import pytest

from mmsam.datasets.io.nifti import (label_image, nifti_to_dhw, open_nifti, read_nifti_geometry,
                                     read_nifti_voxels)


class ReadError(RuntimeError):
    """Stands for a caller's error type (a converter's, the scan reader's)."""


def save(path, array, zooms=(0.7, 0.8, 2.5)):
    affine = np.diag([*zooms[:3], 1.0])
    affine[:3, 3] = (-10.0, 5.0, 3.0)
    nib.save(nib.Nifti1Image(array, affine), str(path))
    return path


def test_geometry_and_voxels_follow_the_dhw_convention(tmp_path):
    array = np.arange(4 * 3 * 2, dtype=np.int16).reshape(4, 3, 2)  # (I, J, K)
    path = save(tmp_path / 'a.nii.gz', array)
    shape, spacing = read_nifti_geometry(str(path))
    assert shape == (2, 3, 4)  # (D, H, W) = (K, J, I)
    assert spacing == pytest.approx((2.5, 0.8, 0.7))  # zooms (i, j, k) reversed
    volume = nifti_to_dhw(read_nifti_voxels(open_nifti(str(path)), str(path)))
    assert volume.dtype == np.float32 and volume.shape == (2, 3, 4)
    for k in range(2):  # slice k holds rows j, columns i
        np.testing.assert_array_equal(volume[k], array[:, :, k].T)
    # stored dtype kept on request
    assert read_nifti_voxels(open_nifti(str(path)), str(path), dtype=None).dtype == np.int16


def test_label_image_maps_back_onto_the_scan(tmp_path):
    array = np.random.default_rng(0).integers(0, 5, (4, 3, 2)).astype(np.uint8)
    path = save(tmp_path / 'scan.nii.gz', array.astype(np.float32))
    scan = open_nifti(str(path))
    volume = nifti_to_dhw(array)
    out = nib.Nifti1Image.from_bytes(label_image(volume, scan.affine, scan.header).to_bytes())
    np.testing.assert_array_equal(np.asanyarray(out.dataobj), array)
    np.testing.assert_allclose(out.affine, scan.affine)
    assert out.header.get_data_dtype() == np.uint8
    assert int(out.header['sform_code']) == int(scan.header['sform_code'])


def test_a_file_that_is_not_nifti_names_the_file_and_the_advice(tmp_path):
    path = tmp_path / 'broken.nii.gz'
    path.write_bytes(gzip.compress(b'not a NIfTI header at all'))
    with pytest.raises(ReadError, match=r'broken\.nii\.gz: not a readable NIfTI file.*'
                                        r're-download it'):
        open_nifti(str(path), error=ReadError, advice='re-download it')


def test_truncated_voxels_fail_on_reading_not_opening(tmp_path):
    path = save(tmp_path / 'cut.nii.gz', np.random.default_rng(1).random((30, 30, 20)))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    img = open_nifti(str(path), error=ReadError)  # the header is intact
    with pytest.raises(ReadError, match=r'voxels of .*cut\.nii\.gz.*damaged.*re-export it'):
        read_nifti_voxels(img, str(path), ReadError, 're-export it')


@pytest.mark.parametrize('shape,ndim,kept', [((5, 6, 4, 1), 3, (5, 6, 4)), ((5, 6, 1), 2, (5, 6)),
                                             ((5, 6, 1), 3, (5, 6, 1)), ((5, 6), 2, (5, 6))])
def test_trailing_unit_axes_beyond_ndim_are_dropped(tmp_path, shape, ndim, kept):
    array = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    path = save(tmp_path / 'x.nii', array)
    img = open_nifti(str(path), ndim)
    assert img.shape == kept
    np.testing.assert_array_equal(read_nifti_voxels(img, str(path)), array.reshape(kept))


@pytest.mark.parametrize('shape,ndim,expected', [
    ((8, 8, 3, 2), 3, r'a 4D image of shape \(8, 8, 3, 2\) is not a 3D image.*split a 4D series'),
    ((8, 8), 3, r'a 2D image of shape \(8, 8\) is not a 3D image'),
    ((8, 8, 3), 2, r'a 3D image of shape \(8, 8, 3\) is not a 2D image')])
def test_wrong_dimensions_are_refused(tmp_path, shape, ndim, expected):
    path = save(tmp_path / 'y.nii.gz', np.zeros(shape, np.float32))
    with pytest.raises(ReadError, match=expected):
        open_nifti(str(path), ndim, error=ReadError)
    with pytest.raises(ReadError, match=r'is not a .D image; the task is 2D$'):
        open_nifti(str(path), ndim, error=ReadError, dims_hint='the task is 2D')


def test_the_voxel_limit_is_checked_from_the_header(tmp_path, monkeypatch):
    path = save(tmp_path / 'big.nii.gz', np.zeros((10, 10, 10), np.float32))
    with pytest.raises(ReadError, match=r'big\.nii\.gz'):
        open_nifti(str(path), error=ReadError, max_voxels=999)
    monkeypatch.setenv('MMSAM_MAX_VOXELS', '999')
    with pytest.raises(ReadError, match=r'big\.nii\.gz'):
        open_nifti(str(path), error=ReadError)
    monkeypatch.setenv('MMSAM_MAX_VOXELS', '1000')
    assert open_nifti(str(path), error=ReadError).shape == (10, 10, 10)
