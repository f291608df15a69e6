"""Robustness and bias evaluation tools run on trained models (issue 11): DiSRT oddity testbench,
patch-perturbation robustness, ForAug bias metrics.

Like ``mmmask.evaluation.explanation`` it needs ``mmmask.models`` (and so mmcv's compiled ops): it is
imported by ``register_all_modules``, the registry locations and configs' ``custom_imports``, not by
``mmmask.evaluation``.
"""
from .disrt import *  # noqa: F401,F403,E402
from .patch_robustness import *  # noqa: F401,F403,E402
from .foraug_bias import *  # noqa: F401,F403,E402
