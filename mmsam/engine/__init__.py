"""Runner, checkpoint loading and distributed helpers, the embedding cache, and hooks."""
from .amp import AmpOptimWrapper, autocast_for, resolve_amp_dtype
from .checkpoint import (CorruptCheckpointError, OfficialFormatError, allow_mmengine_checkpoints,
                         check_checkpoint_file, check_official_format, checkpoint_must_fit,
                         checkpoint_problem,
                         find_resume_checkpoint, load_checkpoint, mmengine_checkpoint_globals,
                         newest_intact_checkpoint)
from .config_errors import (ConfigArgumentError, ConfigError, config_argument_errors,
                            load_config)
from .distributed import destroy_process_group, init_dist, model_wrapper_cfg_for_device
from .embedding_cache import EmbeddingCache, weights_digest
from .hooks import *  # noqa: F401,F403
from .preflight import PrerequisiteError, check_prerequisites
from .runner import MMSAMRunner, build_runner
from .schedulers import PolyLRAfterWarmup

__all__ = [
    'AmpOptimWrapper', 'autocast_for', 'resolve_amp_dtype',
    'ConfigArgumentError', 'ConfigError', 'CorruptCheckpointError', 'OfficialFormatError',
    'check_checkpoint_file', 'check_official_format',
    'checkpoint_problem', 'find_resume_checkpoint', 'newest_intact_checkpoint',
    'config_argument_errors', 'load_config',
    'EmbeddingCache', 'MMSAMRunner', 'PrerequisiteError', 'allow_mmengine_checkpoints',
    'build_runner', 'check_prerequisites', 'checkpoint_must_fit',
    'destroy_process_group', 'init_dist', 'load_checkpoint', 'mmengine_checkpoint_globals',
    'model_wrapper_cfg_for_device', 'weights_digest', 'PolyLRAfterWarmup'
]
