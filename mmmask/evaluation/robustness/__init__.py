from .patch_robustness import *  # noqa: F401,F403,E402
from .disrt import *  # noqa: F401,F403,E402
from .foraug_bias import *  # noqa: F401,F403,E402
