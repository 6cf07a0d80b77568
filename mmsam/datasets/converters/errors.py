"""The error a dataset converter raises for input it cannot use."""


class ConversionError(RuntimeError):
    """A source file or argument that the conversion cannot use; the message says what to do.

    Attributes:
        own_files (bool): the converter reads the user's own files, not an official release;
            the shared checks (e.g. :func:`mmsam.datasets.io.nifti.read_nifti_pair`) then
            advise fixing or re-exporting the files instead of re-extracting a release.
            Subclasses set it.
    """

    own_files = False


def redo_advice(error: type) -> str:
    """What to do with a damaged source file: re-export one's own, re-fetch a release's.

    Args:
        error (type): the error class the caller raises; its ``own_files`` picks the advice.

    Returns:
        str: the advice, to end an error message.
    """
    if getattr(error, 'own_files', False):
        return 're-export it (e.g. save it again with nibabel or SimpleITK)'
    return 're-download or re-extract it'
