"""Models: backbones, necks, heads, self-supervised algorithms and segmentors of the methods."""
from .backbones import *  # noqa: F401,F403
from .masking import *  # noqa: F401,F403
from .selfsup import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .classifiers import *  # noqa: F401,F403
from .segmentors import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .data_preprocessors import *  # noqa: F401,F403
from .pruning import *  # noqa: F401,F403
from .attacks import *  # noqa: F401,F403
