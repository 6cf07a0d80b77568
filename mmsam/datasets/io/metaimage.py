"""MetaImage (``.mhd`` with its data file, or ``.mha``): a header parser and reader in numpy.

Reads what the MetaIO format allows for one image in one data file: raw, zlib- or
gzip-compressed, local (``ElementDataFile = LOCAL``) data, either byte order, any channel
count. SimpleITK is not needed; scans for inference with their direction cosines are read
through :mod:`mmsam.datasets.io.scan` (SimpleITK).
"""
import os.path as osp
import zlib
from typing import Tuple

import numpy as np

from mmsam.utils.limits import check_voxel_limit

METAIMAGE_SUFFIXES = ('.mha', '.mhd')
# MetaImage element types -> numpy type codes (MetaIO sizes: MET_LONG is 4 bytes).
MET_TYPES = {
    'MET_CHAR': 'i1', 'MET_UCHAR': 'u1', 'MET_SHORT': 'i2', 'MET_USHORT': 'u2',
    'MET_INT': 'i4', 'MET_UINT': 'u4', 'MET_LONG': 'i4', 'MET_ULONG': 'u4',
    'MET_LONG_LONG': 'i8', 'MET_ULONG_LONG': 'u8', 'MET_FLOAT': 'f4', 'MET_DOUBLE': 'f8',
}


def read_metaimage_header(path: str, error: type = ValueError) -> Tuple[dict, int]:
    """Parse a MetaImage (``.mhd``/``.mha``) text header.

    Args:
        path (str): the header file.
        error (type): exception class to raise.

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
                    raise error(
                        f'{path}: line {line[:40]!r} is not "Key = Value"; the file is not a '
                        'MetaImage header or is damaged: re-download it')
                header[key.strip()] = value.strip()
                if key.strip() == 'ElementDataFile':  # always the last key
                    break
    except OSError as err:
        raise error(f'cannot read {path} ({err})') from err
    for key in ('NDims', 'DimSize', 'ElementType', 'ElementDataFile'):
        if key not in header:
            raise error(f'{path}: MetaImage header lacks {key}; the file is '
                                           'damaged or not a MetaImage header: re-download it')
    return header, offset


def _header_values(header, key, cast, count, path, error):
    try:
        values = [cast(v) for v in header[key].split()]
    except ValueError as err:
        raise error(f'{path}: {key} = {header[key]!r} is not {count} '
                                       'numbers') from err
    if len(values) != count:
        raise error(f'{path}: {key} = {header[key]!r} has {len(values)} '
                                       f'values, expected {count}')
    return values


def _true(header, *keys):
    return any(header.get(k, 'False').lower() in ('true', '1') for k in keys)


def metaimage_layout(path: str, error: type = ValueError) -> dict:
    """Work out where and how a MetaImage's voxels are stored, from its header alone.

    Args:
        path (str): the ``.mhd``/``.mha`` header file.
        error (type): exception class to raise.

    Returns:
        dict: ``shape`` (tuple, numpy order: (z, y, x) for 3-D, channels last if > 1),
        ``dtype`` (numpy dtype with byte order), ``spacing`` (tuple, numpy order), ``data_file``,
        ``offset`` (bytes to skip; -1: the data are the file's last bytes), ``compressed``.
    """
    header, local_offset = read_metaimage_header(path, error)
    if header.get('ObjectType', 'Image').lower() != 'image':
        raise error(f'{path}: ObjectType {header["ObjectType"]!r} is not '
                                       'Image')
    try:
        ndims = int(header['NDims'])
    except ValueError as err:
        raise error(f'{path}: NDims = {header["NDims"]!r} is not an '
                                       'integer') from err
    dims = _header_values(header, 'DimSize', int, ndims, path, error)
    if min(dims) < 1:
        raise error(f'{path}: DimSize {dims} must be positive')
    key = 'ElementSpacing' if 'ElementSpacing' in header else 'ElementSize'
    spacing = (_header_values(header, key, float, ndims, path, error) if key in header
               else [1.0] * ndims)
    element = header['ElementType'].upper()
    if element not in MET_TYPES:
        raise error(f'{path}: ElementType {element} is not supported; use one '
                                       f'of {sorted(MET_TYPES)}')
    order = '>' if _true(header, 'BinaryDataByteOrderMSB', 'ElementByteOrderMSB') else '<'
    channels = _header_values(header, 'ElementNumberOfChannels', int, 1, path, error)[0] \
        if 'ElementNumberOfChannels' in header else 1
    data_name = header['ElementDataFile']
    if data_name.upper() == 'LOCAL':
        data_file, offset = path, local_offset
    elif data_name.upper().startswith('LIST') or '%' in data_name:
        raise error(f'{path}: ElementDataFile {data_name!r} (one file per '
                                       'slice) is not supported; use a single data file')
    else:
        data_file = osp.join(osp.dirname(path), data_name)
        offset = (_header_values(header, 'HeaderSize', int, 1, path, error)[0]
                  if 'HeaderSize' in header else 0)
    return dict(shape=tuple(dims[::-1]) + ((channels, ) if channels > 1 else ()),
                dtype=np.dtype(order + MET_TYPES[element]), spacing=tuple(spacing[::-1]),
                data_file=data_file, offset=offset,
                compressed=_true(header, 'CompressedData'))


def read_metaimage(path: str, error: type = ValueError) -> Tuple[np.ndarray, tuple]:
    """Read a MetaImage (header + raw, zlib-compressed raw, or local data) into an array.

    Args:
        path (str): the ``.mhd``/``.mha`` header file.
        error (type): exception class to raise.

    Returns:
        tuple: ``array`` (ndarray, (z, y, x) for a 3-D image, native byte order) and
        ``spacing`` (tuple of floats in the same axis order, mm).
    """
    layout = metaimage_layout(path, error)
    # A header can claim any size: refuse before the data file is read.
    check_voxel_limit(layout['shape'], path, error=error)
    data_file, dtype = layout['data_file'], layout['dtype']
    expected = int(np.prod(layout['shape'])) * dtype.itemsize
    try:
        with open(data_file, 'rb') as f:
            if layout['offset'] > 0:
                f.seek(layout['offset'])
            data = f.read()
    except OSError as err:
        raise error(f'cannot read {data_file}, the data file of {path} '
                                       f'({err}); re-download or re-extract it') from err
    if layout['compressed']:
        try:
            # wbits = MAX_WBITS | 32 accepts zlib and gzip streams alike.
            inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)
            data = inflater.decompress(data) + inflater.flush()
        except zlib.error as err:
            raise error(f'cannot decompress {data_file} ({err}); the file is '
                                           'damaged: re-download or re-extract it') from err
    elif layout['offset'] == -1:
        data = data[-expected:] if len(data) >= expected else data
    if len(data) != expected:
        raise error(
            f'{data_file} holds {len(data)} bytes of voxels, the header {path} describes '
            f'{expected} ({layout["shape"]} {dtype.name}); the file is truncated or damaged: '
            're-download or re-extract it')
    array = np.frombuffer(data, dtype=dtype).reshape(layout['shape'])
    return array.astype(dtype.newbyteorder('=')), layout['spacing']
