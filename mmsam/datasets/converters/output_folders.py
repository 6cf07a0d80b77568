"""The output folder of a dataset converter: checked before any work, sized against the disk.

A converter checks its source and destination with :func:`check_folders`, then writes
everything inside ``with staged_output(dst) as tmp:`` (:func:`mmsam.utils.io.staged_output`: a
temporary folder next to ``dst``, renamed to ``dst`` once complete, removed on any error).
"""
import json
import os
import os.path as osp
from typing import Tuple

from mmsam.datasets.io.data_root import META_FILE
from mmsam.utils.disk import check_free_disk, folder_bytes, human_bytes
from .errors import ConversionError


#: A converted data root needs at most about this many times its source's size (float32 slices
#: compressed next to int16 / uint8 sources compressed), checked before anything is written.
OUTPUT_SIZE_FACTOR = 1.5


def is_converter_output(folder: str, converter_name: str) -> bool:
    """Tell whether ``folder`` holds a data root written by the converter ``converter_name``.

    Args:
        folder (str): the folder to look at.
        converter_name (str): the ``converter.name`` recorded in its ``meta.json``.

    Returns:
        bool: True when ``folder/meta.json`` names ``converter_name`` as its converter.
    """
    try:
        with open(osp.join(folder, META_FILE)) as f:
            return json.load(f).get('converter', {}).get('name') == converter_name
    except (OSError, ValueError, AttributeError):
        return False


def check_folders(src: str, dst: str, converter_name: str, overwrite: bool = False,
                  error: type = ConversionError) -> Tuple[str, str]:
    """Check that ``src`` is a folder and that ``dst`` may be written, before any work.

    ``dst`` may be missing or empty; a non-empty ``dst`` is replaced only with ``overwrite``
    and only when it holds an earlier output of this converter.

    Args:
        src (str): the source folder.
        dst (str): the output data root.
        converter_name (str): name of the converter, as recorded in its ``meta.json``.
        overwrite (bool): allow replacing a previous output of this converter.
        error (type): the converter's :class:`ConversionError` subclass to raise.

    Returns:
        tuple[str, str]: ``src`` and ``dst`` as absolute paths.
    """
    src, dst = osp.abspath(src), osp.abspath(dst)
    if not osp.isdir(src):
        raise error(f'source folder {src} does not exist')
    if osp.exists(dst) and not osp.isdir(dst):
        raise error(f'{dst} exists and is not a folder; choose another DST')
    if osp.isdir(dst) and os.listdir(dst):
        if not overwrite:
            raise error(f'{dst} exists and is not empty; pass --overwrite to replace a previous '
                        'conversion, or choose another DST')
        if not is_converter_output(dst, converter_name):
            raise error(f'{dst} is not empty and is not an output of this converter (no '
                        'meta.json of it); refusing to replace it')
    check_output_space(src, dst, error)
    return src, dst


def check_output_space(src: str, dst: str, error: type = ConversionError) -> None:
    """Raise ``error`` when ``dst``'s disk lacks room for the conversion of ``src``.

    The need is estimated as :data:`OUTPUT_SIZE_FACTOR` times the source folder's size (the
    output is staged next to ``dst`` while a previous output still exists).
    """
    source = folder_bytes(src)
    check_free_disk(dst, int(OUTPUT_SIZE_FACTOR * source), 'the converted data set',
                    fix=f'or choose a DST on another disk (estimated as {OUTPUT_SIZE_FACTOR} x '
                    f'the source {src}, {human_bytes(source)})', error=error)
