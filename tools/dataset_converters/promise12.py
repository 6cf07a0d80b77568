"""Convert the PROMISE12 prostate MRI training data into mmsam's slice/volume format.

    python tools/dataset_converters/promise12.py SRC DST [--labelled N | --labelled-list FILE]
        [--test-list FILE] [--all-train] [--overwrite]

Source: the 50 training cases of the MICCAI 2012 Prostate MR Image Segmentation challenge
(Litjens et al., 2014), as distributed: ``SRC/CaseNN.mhd`` with its ``CaseNN.raw`` (or a
zlib-compressed ``.zraw``) and ``SRC/CaseNN_segmentation.mhd`` (+ data file), NN = 00..49.
MetaImage files are read by :func:`read_metaimage` (no SimpleITK needed).

Axis order: a MetaImage stores x fastest, so its voxels read as a (z, y, x) C-order array:
transversal slices first, (D, H, W) as mmsam stores them. The header's direction
(``TransformMatrix``) is not applied: slices are kept as stored.

Intensity: MR intensities have no fixed scale and a few very bright voxels, so each volume is
clipped to its own 0.5th and 99.5th percentiles and then rescaled linearly to [0, 1]
(``(clip(v, p0.5, p99.5) - p0.5) / (p99.5 - p0.5)``; a volume with p0.5 == p99.5 becomes 0).

Labels: {0: background, 1: prostate}; any other value is an error.

Spacing: ``ElementSpacing`` (x, y, z) of the image header, reordered to (z, y, x) mm.

Split (MLB-Seg, followed by H-SAM: 40 training / 10 test cases, 3 labelled training cases):
the command line defaults to H-SAM's published lists (official ``lists/lists_PROMISE_3``,
shipped in ``tools/dataset_converters/splits/hsam/``): test cases Case16, 35, 34, 49, 23, 12,
28, 43, 20, 13 (:data:`HSAM_PROMISE12_TEST`) and, as ``splits/train.txt``, the foreground slices
of the labelled Case29, Case14 and Case05 (:data:`HSAM_PROMISE12_3`). Options: ``--test-list
FILE`` or ``last10`` (Case40-Case49, :data:`DEFAULT_TEST_CASES`, the Python function's
default), ``--labelled N`` for the first N training cases, ``--labelled-list FILE`` to name
them, ``--train-slices all`` for every slice of the labelled cases. List files hold one case
a line (``Case07``, ``Case07.mhd`` or ``7``). All slices of the labelled cases (empty ones
included) are written; ``splits/train.txt`` lists the published slices or, without them, all
of them; with ``--all-train`` the slices of all training cases are
written too and listed in ``splits/train_all.txt``; test cases are volumes in
``splits/test.txt``.

Output goes to a temporary folder next to ``DST`` that is renamed to ``DST`` once complete
(``meta.json`` last), so a failed run leaves nothing at ``DST``. Every header, and that its
data file exists, is checked before anything is written.
"""
import argparse
import os
import os.path as osp
import re
import sys
import warnings
import zlib

import numpy as np

# Running `python tools/dataset_converters/promise12.py` puts this folder (not the repository)
# on sys.path; the repository root goes first so this checkout's mmsam is used.
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from mmsam.datasets import converter_utils  # noqa: E402
from mmsam.datasets.slice_selection import (HSAM_LA_4, HSAM_PROMISE12_3,  # noqa: E402
                                            HSAM_PROMISE12_TEST, labelled_cases_from_list,
                                            select_slices)
from mmsam.datasets.converter_utils import (ConversionError, check_folders,  # noqa: E402
                                            read_name_list, run_conversion, slice_names,
                                            staged_output)
from mmsam.datasets.promise12_dataset import CLASSES, PALETTE  # noqa: E402
from mmsam.utils.limits import check_voxel_limit  # noqa: E402
from mmsam.datasets.volume_io import (TEST_VOLUME_DIR, TRAIN_SLICE_DIR,  # noqa: E402
                                      save_slice, save_volume, write_meta, write_split)

CONVERTER_NAME = 'PROMISE12Converter'
CONVERTER_VERSION = 1

ALL_CASES = tuple(f'Case{n:02d}' for n in range(50))
DEFAULT_TEST_CASES = ALL_CASES[40:]
DEFAULT_LABELLED = 3
PERCENTILES = (0.5, 99.5)

_CASE_RE = re.compile(r'^Case(\d+)\.mhd$')

# MetaImage element types -> numpy type codes (MetaIO sizes: MET_LONG is 4 bytes).
MET_TYPES = {
    'MET_CHAR': 'i1', 'MET_UCHAR': 'u1', 'MET_SHORT': 'i2', 'MET_USHORT': 'u2',
    'MET_INT': 'i4', 'MET_UINT': 'u4', 'MET_LONG': 'i4', 'MET_ULONG': 'u4',
    'MET_LONG_LONG': 'i8', 'MET_ULONG_LONG': 'u8', 'MET_FLOAT': 'f4', 'MET_DOUBLE': 'f8',
}


class PROMISE12ConversionError(ConversionError):
    """A PROMISE12 source file or argument that the conversion cannot use."""


# ---------------------------------------------------------------------------------------------
# MetaImage


def read_metaimage_header(path):
    """Parse a MetaImage (``.mhd``/``.mha``) text header.

    Args:
        path (str): the header file.

    Returns:
        tuple: ``header`` (dict[str, str], keys as written) and ``offset`` (int), the byte
        position just after the ``ElementDataFile`` line (where ``LOCAL`` data start).
    """
    header, offset = {}, 0
    try:
        with open(path, 'rb') as f:
            for raw in f:
                offset += len(raw)
                line = raw.decode('latin-1').strip()
                if not line:
                    continue
                key, sep, value = line.partition('=')
                if not sep or not key.strip():
                    raise PROMISE12ConversionError(
                        f'{path}: line {line[:40]!r} is not "Key = Value"; the file is not a '
                        'MetaImage header or is damaged: re-download it')
                header[key.strip()] = value.strip()
                if key.strip() == 'ElementDataFile':  # always the last key
                    break
    except OSError as err:
        raise PROMISE12ConversionError(f'cannot read {path} ({err})') from err
    for key in ('NDims', 'DimSize', 'ElementType', 'ElementDataFile'):
        if key not in header:
            raise PROMISE12ConversionError(f'{path}: MetaImage header lacks {key}; the file is '
                                           'damaged or not a MetaImage header: re-download it')
    return header, offset


def _header_values(header, key, cast, count, path):
    try:
        values = [cast(v) for v in header[key].split()]
    except ValueError as err:
        raise PROMISE12ConversionError(f'{path}: {key} = {header[key]!r} is not {count} '
                                       'numbers') from err
    if len(values) != count:
        raise PROMISE12ConversionError(f'{path}: {key} = {header[key]!r} has {len(values)} '
                                       f'values, expected {count}')
    return values


def _true(header, *keys):
    return any(header.get(k, 'False').lower() in ('true', '1') for k in keys)


def metaimage_layout(path):
    """Work out where and how a MetaImage's voxels are stored, from its header alone.

    Args:
        path (str): the ``.mhd``/``.mha`` header file.

    Returns:
        dict: ``shape`` (tuple, numpy order: (z, y, x) for 3-D, channels last if > 1),
        ``dtype`` (numpy dtype with byte order), ``spacing`` (tuple, numpy order), ``data_file``,
        ``offset`` (bytes to skip; -1: the data are the file's last bytes), ``compressed``.
    """
    header, local_offset = read_metaimage_header(path)
    if header.get('ObjectType', 'Image').lower() != 'image':
        raise PROMISE12ConversionError(f'{path}: ObjectType {header["ObjectType"]!r} is not '
                                       'Image')
    try:
        ndims = int(header['NDims'])
    except ValueError as err:
        raise PROMISE12ConversionError(f'{path}: NDims = {header["NDims"]!r} is not an '
                                       'integer') from err
    dims = _header_values(header, 'DimSize', int, ndims, path)
    if min(dims) < 1:
        raise PROMISE12ConversionError(f'{path}: DimSize {dims} must be positive')
    key = 'ElementSpacing' if 'ElementSpacing' in header else 'ElementSize'
    spacing = (_header_values(header, key, float, ndims, path) if key in header
               else [1.0] * ndims)
    element = header['ElementType'].upper()
    if element not in MET_TYPES:
        raise PROMISE12ConversionError(f'{path}: ElementType {element} is not supported; use one '
                                       f'of {sorted(MET_TYPES)}')
    order = '>' if _true(header, 'BinaryDataByteOrderMSB', 'ElementByteOrderMSB') else '<'
    channels = _header_values(header, 'ElementNumberOfChannels', int, 1, path)[0] \
        if 'ElementNumberOfChannels' in header else 1
    data_name = header['ElementDataFile']
    if data_name.upper() == 'LOCAL':
        data_file, offset = path, local_offset
    elif data_name.upper().startswith('LIST') or '%' in data_name:
        raise PROMISE12ConversionError(f'{path}: ElementDataFile {data_name!r} (one file per '
                                       'slice) is not supported; use a single data file')
    else:
        data_file = osp.join(osp.dirname(path), data_name)
        offset = (_header_values(header, 'HeaderSize', int, 1, path)[0]
                  if 'HeaderSize' in header else 0)
    return dict(shape=tuple(dims[::-1]) + ((channels, ) if channels > 1 else ()),
                dtype=np.dtype(order + MET_TYPES[element]), spacing=tuple(spacing[::-1]),
                data_file=data_file, offset=offset,
                compressed=_true(header, 'CompressedData'))


def read_metaimage(path):
    """Read a MetaImage (header + raw, zlib-compressed raw, or local data) into an array.

    Args:
        path (str): the ``.mhd``/``.mha`` header file.

    Returns:
        tuple: ``array`` (ndarray, (z, y, x) for a 3-D image, native byte order) and
        ``spacing`` (tuple of floats in the same axis order, mm).
    """
    layout = metaimage_layout(path)
    # A header can claim any size: refuse before the data file is read.
    check_voxel_limit(layout['shape'], path, error=PROMISE12ConversionError)
    data_file, dtype = layout['data_file'], layout['dtype']
    expected = int(np.prod(layout['shape'])) * dtype.itemsize
    try:
        with open(data_file, 'rb') as f:
            if layout['offset'] > 0:
                f.seek(layout['offset'])
            data = f.read()
    except OSError as err:
        raise PROMISE12ConversionError(f'cannot read {data_file}, the data file of {path} '
                                       f'({err}); re-download or re-extract it') from err
    if layout['compressed']:
        try:
            # wbits = MAX_WBITS | 32 accepts zlib and gzip streams alike.
            inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)
            data = inflater.decompress(data) + inflater.flush()
        except zlib.error as err:
            raise PROMISE12ConversionError(f'cannot decompress {data_file} ({err}); the file is '
                                           'damaged: re-download or re-extract it') from err
    elif layout['offset'] == -1:
        data = data[-expected:] if len(data) >= expected else data
    if len(data) != expected:
        raise PROMISE12ConversionError(
            f'{data_file} holds {len(data)} bytes of voxels, the header {path} describes '
            f'{expected} ({layout["shape"]} {dtype.name}); the file is truncated or damaged: '
            're-download or re-extract it')
    array = np.frombuffer(data, dtype=dtype).reshape(layout['shape'])
    return array.astype(dtype.newbyteorder('=')), layout['spacing']


# ---------------------------------------------------------------------------------------------
# cases and splits


def image_path(src, case):
    return osp.join(src, f'{case}.mhd')


def segmentation_path(src, case):
    return osp.join(src, f'{case}_segmentation.mhd')


def find_cases(src):
    """Case names (``CaseNN``) of the image headers in ``src``, sorted by number."""
    found = [(int(m.group(1)), f[:-4]) for f in os.listdir(src)
             for m in [_CASE_RE.match(f)] if m]
    return [name for _, name in sorted(found)]


def read_case_list(path):
    """Read a file of case names (``Case07``, ``Case07.mhd`` or ``7``), one a line.

    Args:
        path (str): the list file; blank lines and ``#`` comments are skipped.

    Returns:
        list[str]: ``CaseNN`` names in file order.
    """
    def case_name(line):
        name = osp.basename(line)
        name = name[:-4] if name.endswith('.mhd') else name
        if name.isdigit():
            name = f'Case{int(name):02d}'
        if not re.fullmatch(r'Case\d+', name):
            raise PROMISE12ConversionError(f'case list {path}: {line!r} is not a case name like '
                                           'Case07')
        return name

    return read_name_list(path, 'case list', 'case', normalise=case_name,
                          error=PROMISE12ConversionError)


def choose_labelled(train_cases, labelled=DEFAULT_LABELLED, labelled_list=None):
    """Pick the labelled cases: the first ``labelled`` training cases, or those listed."""
    return converter_utils.choose_labelled(
        train_cases, labelled, labelled_list, read_case_list,
        'not training cases (test cases and cases missing from SRC cannot be labelled)',
        PROMISE12ConversionError)


def percentile_normalise(volume, percentiles=PERCENTILES):
    """Clip a volume to its own low/high percentiles and rescale it linearly to [0, 1].

    Args:
        volume (ndarray): (D, H, W) intensities.
        percentiles (tuple[float, float]): the clipping percentiles, default (0.5, 99.5).

    Returns:
        ndarray: (D, H, W) float32 in [0, 1]; all zeros when the two percentiles are equal.
    """
    volume = np.asarray(volume, dtype=np.float64)
    low, high = np.percentile(volume, percentiles)
    if high <= low:
        return np.zeros(volume.shape, dtype=np.float32)
    return ((np.clip(volume, low, high) - low) / (high - low)).astype(np.float32)


def read_promise12_case(src, case):
    """Read one PROMISE12 case: normalised image, binary label and spacing.

    Args:
        src (str): folder holding ``<case>.mhd`` and ``<case>_segmentation.mhd``.
        case (str): e.g. ``'Case07'``.

    Returns:
        tuple: ``image`` (D, H, W) float32 in [0, 1], ``label`` (D, H, W) uint8 in {0, 1},
        ``spacing`` (z, y, x) tuple of floats (mm).
    """
    img_path, seg_path = image_path(src, case), segmentation_path(src, case)
    image, spacing = read_metaimage(img_path)
    label, seg_spacing = read_metaimage(seg_path)
    if image.ndim != 3 or label.shape != image.shape:
        raise PROMISE12ConversionError(f'{img_path} and {seg_path}: expected one 3-D shape, got '
                                       f'{image.shape} and {label.shape}; the segmentation '
                                       'does not belong to the image: re-extract the release')
    if not np.allclose(spacing, seg_spacing, rtol=1e-3):
        warnings.warn(f'{seg_path}: spacing {seg_spacing} differs from the image\'s {spacing}; '
                      'using the image\'s')
    if not np.all(np.isfinite(image)):
        raise PROMISE12ConversionError(f'{img_path}: image contains NaN/inf; re-download it')
    values = np.unique(label)
    if not np.all(np.isin(values, (0, 1))):
        raise PROMISE12ConversionError(f'{seg_path}: label values {values[:10].tolist()} are not '
                                       '0/1 (background/prostate); is it a PROMISE12 '
                                       'segmentation? Re-extract the release')
    return percentile_normalise(image), label.astype(np.uint8), tuple(float(s) for s in spacing)


# ---------------------------------------------------------------------------------------------
# conversion


def _check_sources(src, cases):
    """Check that every needed header parses and its data file exists, before any writing."""
    for case in cases:
        for path in (image_path(src, case), segmentation_path(src, case)):
            if not osp.isfile(path):
                raise PROMISE12ConversionError(f'{path} does not exist; the data are incomplete: '
                                               're-download or re-extract them')
            data_file = metaimage_layout(path)['data_file']
            if not osp.isfile(data_file):
                raise PROMISE12ConversionError(f'{data_file}, the data file of {path}, does not '
                                               'exist; re-download or re-extract it')


def convert_promise12(src, dst, labelled=None, labelled_list=None, test_cases=None,
                      test_list=None, all_train=False, overwrite=False, log=None,
                      train_slices=None):
    """Convert PROMISE12's training cases at ``src`` into mmsam's format at ``dst``.

    Writes ``train_slices/`` (labelled cases, or all training cases with ``all_train``),
    ``test_volumes/``, ``splits/train.txt`` (labelled slices), ``splits/train_all.txt`` (with
    ``all_train``), ``splits/test.txt`` and ``meta.json`` into a temporary folder next to
    ``dst``, then renames it to ``dst``; on any error nothing is left at ``dst``.

    Args:
        src (str): folder with ``CaseNN.mhd`` and ``CaseNN_segmentation.mhd`` (+ data files).
        dst (str): output data root; must not exist, be empty, or (with ``overwrite``) hold a
            previous output of this converter.
        labelled (int | None): number of leading training cases used as labelled; None: 3,
            or with ``train_slices`` the cases that list names.
        labelled_list (str | None): file naming the labelled cases instead.
        test_cases (sequence[str] | None): test case names; default Case40-Case49.
        test_list (str | None): file naming the test cases (overrides ``test_cases``).
        all_train (bool): also write the slices of every training case (``train_all``).
        overwrite (bool): replace a previous output of this converter at ``dst``.
        log (callable | None): called with progress messages.
        train_slices (str | None): file of slice names (``<case>_sliceNNN``) that
            ``splits/train.txt`` lists instead of every slice of the labelled cases, e.g. H-SAM's
            published foreground slices (``'hsam'``: :data:`HSAM_PROMISE12_3`, the command line's
            default together with the test cases of :data:`HSAM_PROMISE12_TEST`).

    Returns:
        dict: the contents of ``meta.json``.
    """
    log = log or (lambda msg: None)
    src, dst = check_folders(src, dst, CONVERTER_NAME, overwrite, error=PROMISE12ConversionError)
    cases = find_cases(src)
    if test_list is not None:
        test_cases = read_case_list(test_list)
    test_cases = list(DEFAULT_TEST_CASES if test_cases is None else test_cases)
    absent = [c for c in test_cases if c not in cases]
    if absent:
        raise PROMISE12ConversionError(f'test case(s) {absent} have no .mhd in {src} (e.g. '
                                       f'{image_path(src, absent[0])} does not exist); the data '
                                       'are incomplete, or pass the test cases you have')
    train_cases = [c for c in cases if c not in test_cases]
    if len(cases) != len(ALL_CASES):
        warnings.warn(f'{src} has {len(cases)} cases, not PROMISE12\'s {len(ALL_CASES)} training '
                      f'cases; converting {len(train_cases)} training / {len(test_cases)} test')
    if not train_cases:
        raise PROMISE12ConversionError(f'{src} has no training cases besides the test cases')
    train_slices, labelled_cases = labelled_cases_from_list(
        src, train_slices, HSAM_PROMISE12_3, train_cases, labelled, labelled_list, DEFAULT_LABELLED,
        PROMISE12ConversionError)
    if labelled_cases is None:
        labelled_cases = choose_labelled(train_cases, DEFAULT_LABELLED if labelled is None
                                         else labelled, labelled_list)
    sliced = train_cases if all_train else labelled_cases
    _check_sources(src, [*sliced, *test_cases])

    with staged_output(dst) as tmp:
        names, foreground = {}, set()
        for i, case in enumerate(sliced, 1):
            image, label, _ = read_promise12_case(src, case)
            names[case] = slice_names(case, image.shape[0])
            log(f'[train {i}/{len(sliced)}] {case}: {image.shape[0]} slices '
                f'{image.shape[1]}x{image.shape[2]}')
            for name, image_k, label_k in zip(names[case], image, label):
                save_slice(osp.join(tmp, TRAIN_SLICE_DIR, f'{name}.npz'), image_k, label_k)
                if label_k.any():
                    foreground.add(name)
        for i, case in enumerate(test_cases, 1):
            image, label, spacing = read_promise12_case(src, case)
            log(f'[test {i}/{len(test_cases)}] {case}: volume {image.shape}, spacing {spacing}')
            save_volume(osp.join(tmp, TEST_VOLUME_DIR, f'{case}.npz'), image, label,
                        spacing=spacing)
        train_names = [n for c in labelled_cases for n in names[c]]
        if train_slices is not None:
            train_names = select_slices(train_slices, {c: names[c] for c in labelled_cases},
                                        foreground, error=PROMISE12ConversionError)
        write_split(tmp, 'train', train_names)
        if all_train:
            write_split(tmp, 'train_all', [n for c in train_cases for n in names[c]])
        write_split(tmp, 'test', test_cases)
        meta = dict(
            classes=list(CLASSES), palette=[list(c) for c in PALETTE],
            source=dict(dataset='PROMISE12 (MICCAI 2012 prostate MR segmentation), training '
                                'cases', format='MetaImage CaseNN.mhd / CaseNN_segmentation.mhd',
                        path=src),
            axes='(D, H, W) = (z, y, x) as stored; header direction not applied',
            intensity=f'per volume: clip to the {PERCENTILES[0]}-{PERCENTILES[1]} percentiles, '
                      'then min-max to [0, 1]',
            spacing_note='(z, y, x) mm from the image header\'s ElementSpacing',
            spacing_known=True,
            split=('MLB-Seg 40/10 (its exact lists are unpublished): test = '
                   + ('given list' if test_list or test_cases != list(DEFAULT_TEST_CASES)
                      else 'Case40-Case49') + ', labelled = '
                   + ('given list' if labelled_list else f'first {len(labelled_cases)} training '
                                                          'cases')),
            train_cases=train_cases, test_cases=test_cases, labelled_cases=labelled_cases,
            num_train_slices=len(train_names),
            train_slice_list=None if train_slices is None else osp.abspath(train_slices),
            splits=['train', *(['train_all'] if all_train else []), 'test'],
            converter=dict(name=CONVERTER_NAME, version=CONVERTER_VERSION))
        write_meta(tmp, meta)  # last: marks the data root complete
    log(f'wrote {dst}: {len(train_names)} training slices of {len(labelled_cases)} labelled '
        f'case(s), {len(test_cases)} test volumes')
    return meta


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert PROMISE12 prostate MRI (CaseNN.mhd) into mmsam\'s slice/volume '
                    'format.')
    parser.add_argument('src', help='folder with CaseNN.mhd and CaseNN_segmentation.mhd')
    parser.add_argument('dst', help='output data root (e.g. data/promise12)')
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--labelled', type=int, default=None,
                       help='use the first N training cases as labelled')
    group.add_argument('--labelled-list', default=None,
                       help='file of labelled case names (one a line, training cases)')
    parser.add_argument('--test-list', default=None,
                        help='file of test case names; default: H-SAM\'s published test set '
                             '(lists_PROMISE_3/test_vol.txt: Case16, 35, 34, 49, 23, 12, 28, 43, '
                             '20, 13); "last10" for Case40-Case49')
    parser.add_argument('--train-slices', default=None,
                        help='file of the training slices (<case>_sliceNNN) for splits/train.txt, '
                             'or "all" for every slice of the labelled cases; default: H-SAM\'s '
                             'published list (foreground slices of Case29, Case14, Case05, '
                             'lists_PROMISE_3/train.txt) unless --labelled/--labelled-list is '
                             'given')
    parser.add_argument('--all-train', action='store_true',
                        help='also write the slices of all training cases (splits/train_all.txt)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a previous output of this converter at DST')
    return parser.parse_args(argv)


def main(argv=None):
    """Run the command line; returns the exit status (0 done, 1 conversion error)."""
    args = parse_args(argv)
    train_slices = args.train_slices
    if train_slices is None and args.labelled is None and args.labelled_list is None:
        train_slices = 'hsam'  # HSAM_PROMISE12_3, or a draw when the source lacks its cases
    test_list = HSAM_PROMISE12_TEST if args.test_list is None else args.test_list
    return run_conversion(lambda: convert_promise12(
        args.src, args.dst, labelled=args.labelled, labelled_list=args.labelled_list,
        test_list=None if test_list == 'last10' else test_list, all_train=args.all_train,
        overwrite=args.overwrite, log=print,
        train_slices=None if train_slices == 'all' else train_slices))


if __name__ == '__main__':
    sys.exit(main())
