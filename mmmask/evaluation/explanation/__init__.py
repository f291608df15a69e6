"""Explanation and input-masking evaluation (T-TAME, layer masking)."""
from .ttame import *  # noqa: F401,F403,E402
from .layer_masking import *  # noqa: F401,F403,E402
