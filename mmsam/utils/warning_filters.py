"""Known third-party warnings that say nothing to an mmsam user, silenced by exact message.

Each entry names its source and why it is safe to drop; any other warning still shows. The
Python warnings are filtered by :func:`filter_known_warnings` (called by
``register_all_modules``, hence by every tool); the mmengine log lines by
:class:`KnownLogWarningFilter`, which ``MMSAMRunner`` attaches to its logger.
"""
import logging
import re
import warnings

#: (message regex, category, why it is safe to drop) of Python warnings.
KNOWN_PYTHON_WARNINGS = (
    (r'``build_loss`` would be deprecated soon', UserWarning,
     'mmseg 1.2.2 calls its own deprecated build_loss inside every decode head'),
    (r'Default ``avg_non_ignore`` is False', UserWarning,
     'mmseg CrossEntropyLoss notice; mmsam labels have no ignore index in the loss'),
)

#: (message regex, category, module regex, why it is safe to drop) of Python warnings that are
#: dropped only when raised from that third-party module (the same message from mmsam's own
#: code, or from another package, still shows).
KNOWN_MODULE_WARNINGS = (
    (r'`torch\.cuda\.amp\.autocast\(args\.\.\.\)` is deprecated', FutureWarning,
     r'mmseg\.models\.assigners\.hungarian_assigner$',
     "mmseg 1.2.2's HungarianAssigner.assign disables autocast with the deprecated "
     "torch.cuda.amp.autocast(enabled=False) for its matching (MaskSAM's criterion); the "
     'call works, only its spelling is old'),
)

#: Regexes of mmengine log WARNING lines that are notices about mmengine's own internals.
KNOWN_LOG_WARNINGS = (
    r'^The prefix is not set in metric class',  # mmsam metrics keep unprefixed keys on purpose
    r'^"FileClient" will be deprecated in future',  # mmengine's CheckpointHook uses it itself
    r'^"HardDiskBackend" is the alias of "LocalBackend"',  # same, from FileClient
)


def filter_known_warnings():
    """Install the filters for :data:`KNOWN_PYTHON_WARNINGS` and :data:`KNOWN_MODULE_WARNINGS`
    (idempotent)."""
    for message, category, _ in KNOWN_PYTHON_WARNINGS:
        warnings.filterwarnings('ignore', message=message, category=category)
    for message, category, module, _ in KNOWN_MODULE_WARNINGS:
        warnings.filterwarnings('ignore', message=message, category=category, module=module)


class KnownLogWarningFilter(logging.Filter):
    """Drops WARNING records whose message matches :data:`KNOWN_LOG_WARNINGS`."""

    patterns = tuple(re.compile(p) for p in KNOWN_LOG_WARNINGS)

    def filter(self, record):
        if record.levelno != logging.WARNING:
            return True
        message = record.getMessage()
        return not any(p.search(message) for p in self.patterns)
