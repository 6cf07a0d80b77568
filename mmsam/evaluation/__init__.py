"""Evaluation: registered metrics and the plain functions they call."""
# A child registry does not import its parent's modules: importing mmseg's evaluation here
# registers mmseg's metrics (IoUMetric, ...) so configs with default_scope='mmsam' find them.
import mmseg.evaluation  # noqa: F401

from .functional import *  # noqa: F401,F403
from .metrics import *  # noqa: F401,F403
