from .patch_robustness import *  # noqa: F401,F403,E402
