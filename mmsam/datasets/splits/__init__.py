"""Published split lists shipped as package data (``setup.py`` ``package_data``).

Found with :mod:`importlib.resources`, so an installed mmsam has them as well as a checkout.
``hsam/`` holds the lists published with the official H-SAM code (see its README.md).
"""
from importlib.resources import files


def published_split(*parts: str) -> str:
    """Path of a shipped split file, e.g. ``published_split('hsam', 'la_4_train.txt')``.

    Args:
        parts (str): the file's path below ``mmsam/datasets/splits/``, one part each.

    Returns:
        str: the file's path on disk.

    Raises:
        FileNotFoundError: no such shipped file (an installation without package data).
    """
    path = files(__name__)
    for part in parts:
        path = path.joinpath(part)
    if not path.is_file():
        raise FileNotFoundError(f'published split {"/".join(parts)} is not in mmsam\'s package '
                                f'data ({path}); reinstall mmsam (pip install -e .)')
    return str(path)


HSAM_SYNAPSE_10PCT = published_split('hsam', 'synapse_train_220.txt')
HSAM_LA_4 = published_split('hsam', 'la_4_train.txt')
HSAM_PROMISE12_3 = published_split('hsam', 'promise12_3_train.txt')
HSAM_PROMISE12_TEST = published_split('hsam', 'promise12_test_vol.txt')
