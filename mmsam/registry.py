"""mmsam's registries: children of mmseg's, so configs with ``default_scope='mmsam'`` find
mmsam's components first and mmseg's / mmengine's by the same names through the parents."""
from mmengine.registry import Registry
from mmseg.registry import DATA_SAMPLERS as MMSEG_DATA_SAMPLERS
from mmseg.registry import DATASETS as MMSEG_DATASETS
from mmseg.registry import EVALUATOR as MMSEG_EVALUATOR
from mmseg.registry import HOOKS as MMSEG_HOOKS
from mmseg.registry import LOG_PROCESSORS as MMSEG_LOG_PROCESSORS
from mmseg.registry import LOOPS as MMSEG_LOOPS
from mmseg.registry import METRICS as MMSEG_METRICS
from mmseg.registry import MODEL_WRAPPERS as MMSEG_MODEL_WRAPPERS
from mmseg.registry import MODELS as MMSEG_MODELS
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMSEG_OPTIM_WRAPPER_CONSTRUCTORS
from mmseg.registry import OPTIM_WRAPPERS as MMSEG_OPTIM_WRAPPERS
from mmseg.registry import OPTIMIZERS as MMSEG_OPTIMIZERS
from mmseg.registry import PARAM_SCHEDULERS as MMSEG_PARAM_SCHEDULERS
from mmseg.registry import RUNNERS as MMSEG_RUNNERS
from mmseg.registry import TASK_UTILS as MMSEG_TASK_UTILS
from mmseg.registry import TRANSFORMS as MMSEG_TRANSFORMS
from mmseg.registry import VISBACKENDS as MMSEG_VISBACKENDS
from mmseg.registry import VISUALIZERS as MMSEG_VISUALIZERS
from mmseg.registry import WEIGHT_INITIALIZERS as MMSEG_WEIGHT_INITIALIZERS

RUNNERS = Registry('runner', parent=MMSEG_RUNNERS, locations=['mmsam.engine'])
LOOPS = Registry('loop', parent=MMSEG_LOOPS, locations=['mmsam.engine'])
HOOKS = Registry('hook', parent=MMSEG_HOOKS, locations=['mmsam.engine'])
LOG_PROCESSORS = Registry('log processor', parent=MMSEG_LOG_PROCESSORS, locations=['mmsam.engine'])
OPTIMIZERS = Registry('optimizer', parent=MMSEG_OPTIMIZERS, locations=['mmsam.engine'])
OPTIM_WRAPPERS = Registry('optim wrapper', parent=MMSEG_OPTIM_WRAPPERS, locations=['mmsam.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor', parent=MMSEG_OPTIM_WRAPPER_CONSTRUCTORS,
    locations=['mmsam.engine'])
PARAM_SCHEDULERS = Registry('parameter scheduler', parent=MMSEG_PARAM_SCHEDULERS,
                            locations=['mmsam.engine'])
MODEL_WRAPPERS = Registry('model_wrapper', parent=MMSEG_MODEL_WRAPPERS, locations=['mmsam.engine'])

DATASETS = Registry('dataset', parent=MMSEG_DATASETS, locations=['mmsam.datasets'])
DATA_SAMPLERS = Registry('data sampler', parent=MMSEG_DATA_SAMPLERS, locations=['mmsam.datasets'])
TRANSFORMS = Registry('transform', parent=MMSEG_TRANSFORMS, locations=['mmsam.datasets'])

MODELS = Registry('model', parent=MMSEG_MODELS, locations=['mmsam.models'])
WEIGHT_INITIALIZERS = Registry('weight initializer', parent=MMSEG_WEIGHT_INITIALIZERS,
                               locations=['mmsam.models'])
TASK_UTILS = Registry('task util', parent=MMSEG_TASK_UTILS, locations=['mmsam.models'])

METRICS = Registry('metric', parent=MMSEG_METRICS, locations=['mmsam.evaluation'])
EVALUATOR = Registry('evaluator', parent=MMSEG_EVALUATOR, locations=['mmsam.evaluation'])

VISUALIZERS = Registry('visualizer', parent=MMSEG_VISUALIZERS, locations=['mmsam.visualization'])
VISBACKENDS = Registry('vis_backend', parent=MMSEG_VISBACKENDS, locations=['mmsam.visualization'])
