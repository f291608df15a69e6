"""mmmask's registries: an own ``mmmask`` scope whose nodes are children of mmengine's roots.

Every node has ``locations`` so that ``type='mmmask.X'`` (or ``default_scope='mmmask'``) imports the
modules that register ``X`` on first use, as mmpretrain/mmseg/mmdet do. mmmask code builds its own
submodules through these registries, never through whatever default scope happens to be active.
"""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import \
    RUNNER_CONSTRUCTORS as MMENGINE_RUNNER_CONSTRUCTORS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import \
    WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import DefaultScope, Registry

# Runner, loops, hooks.
RUNNERS = Registry('runner', parent=MMENGINE_RUNNERS, locations=['mmmask.engine'])
RUNNER_CONSTRUCTORS = Registry(
    'runner constructor', parent=MMENGINE_RUNNER_CONSTRUCTORS, locations=['mmmask.engine'])
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, locations=['mmmask.engine'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, locations=['mmmask.engine', 'mmmask.datasets'])
LOG_PROCESSORS = Registry(
    'log processor', parent=MMENGINE_LOG_PROCESSORS, locations=['mmmask.engine'])

# Optimisation.
OPTIMIZERS = Registry('optimizer', parent=MMENGINE_OPTIMIZERS, locations=['mmmask.engine'])
OPTIM_WRAPPERS = Registry(
    'optim wrapper', parent=MMENGINE_OPTIM_WRAPPERS, locations=['mmmask.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    locations=['mmmask.engine'])
PARAM_SCHEDULERS = Registry(
    'parameter scheduler', parent=MMENGINE_PARAM_SCHEDULERS, locations=['mmmask.engine'])

# Data.
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS,
                    locations=['mmmask.datasets', 'mmmask.evaluation.robustness'])
DATA_SAMPLERS = Registry(
    'data sampler', parent=MMENGINE_DATA_SAMPLERS, locations=['mmmask.datasets'])
TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS,
                      locations=['mmmask.datasets', 'mmmask.evaluation.explanation',
                                 'mmmask.evaluation.robustness'])

# Models.
MODELS = Registry('model', parent=MMENGINE_MODELS,
                  locations=['mmmask.models', 'mmmask.evaluation.explanation',
                             'mmmask.evaluation.robustness'])
MODEL_WRAPPERS = Registry(
    'model_wrapper', parent=MMENGINE_MODEL_WRAPPERS, locations=['mmmask.models'])
WEIGHT_INITIALIZERS = Registry(
    'weight initializer', parent=MMENGINE_WEIGHT_INITIALIZERS, locations=['mmmask.models'])
TASK_UTILS = Registry('task util', parent=MMENGINE_TASK_UTILS, locations=['mmmask.models'])

# Evaluation and visualisation (no mmmask visualisers yet: their package adds
# `locations=['mmmask.visualization']` when it lands).
METRICS = Registry('metric', parent=MMENGINE_METRICS,
                   locations=['mmmask.evaluation', 'mmmask.evaluation.explanation',
                              'mmmask.evaluation.robustness'])
EVALUATOR = Registry('evaluator', parent=MMENGINE_EVALUATOR, locations=['mmmask.evaluation'])
VISUALIZERS = Registry('visualizer', parent=MMENGINE_VISUALIZERS)
VISBACKENDS = Registry('vis_backend', parent=MMENGINE_VISBACKENDS)

__all__ = [
    'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'LOG_PROCESSORS', 'OPTIMIZERS',
    'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'DATASETS',
    'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS', 'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS',
    'TASK_UTILS', 'METRICS', 'EVALUATOR', 'VISUALIZERS', 'VISBACKENDS', 'build_in_scope'
]


def build_in_scope(registry: Registry, cfg, **kwargs):
    """Build ``cfg`` from ``registry`` with ``mmmask`` as the default scope, whatever scope the
    caller (an mmseg/mmdet/mmpretrain runner) has set: how mmmask modules build their own parts.
    Upstream types inside ``cfg`` need their scope prefix (``'mmseg.UPerHead'``)."""
    with DefaultScope.overwrite_default_scope('mmmask'):
        return registry.build(cfg, **kwargs)
