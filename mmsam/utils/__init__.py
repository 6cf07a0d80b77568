"""Utilities: registering mmsam's modules (``register_all_modules``), crash-safe file writes
(``io``), the environment report (``collect_env``), free-disk checks (``disk``), input-size limits
(``limits``) and filters for known third-party warnings (``warning_filters``)."""
from .setup_env import register_all_modules

__all__ = ['register_all_modules']
