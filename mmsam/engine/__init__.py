"""Runner, checkpoint loading and distributed helpers, the embedding cache, and hooks."""
from .checkpoint import (allow_mmengine_checkpoints, checkpoint_must_fit, load_checkpoint,
                         mmengine_checkpoint_globals)
from .config_errors import (ConfigArgumentError, ConfigError, config_argument_errors,
                            load_config)
from .distributed import destroy_process_group, init_dist, model_wrapper_cfg_for_device
from .embedding_cache import EmbeddingCache, weights_digest
from .hooks import *  # noqa: F401,F403
from .preflight import PrerequisiteError, check_prerequisites
from .runner import MMSAMRunner, build_runner

__all__ = [
    'ConfigArgumentError', 'ConfigError', 'config_argument_errors', 'load_config',
    'EmbeddingCache', 'MMSAMRunner', 'PrerequisiteError', 'allow_mmengine_checkpoints',
    'build_runner', 'check_prerequisites', 'checkpoint_must_fit',
    'destroy_process_group', 'init_dist', 'load_checkpoint', 'mmengine_checkpoint_globals',
    'model_wrapper_cfg_for_device', 'weights_digest'
]
