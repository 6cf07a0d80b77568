"""mmsam's models. Importing mmseg.models registers mmseg's components in the parent registry,
so configs under ``default_scope='mmsam'`` can name them (a child registry does not import
its parent's modules)."""
import mmseg.models  # noqa: F401

from .adapters import *  # noqa: F401,F403
from .backbones import *  # noqa: F401,F403
from .data_preprocessors import *  # noqa: F401,F403
from .decode_heads import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .prompts import *  # noqa: F401,F403
from .segmentors import *  # noqa: F401,F403
from .utils import *  # noqa: F401,F403
