"""Registering mmsam's (and mmseg's) modules and setting the default scope."""
import datetime
import importlib
import warnings

from mmengine import DefaultScope

# Imported for their side effect of registering modules, in this order: mmsam's registries are
# children of mmseg's, so mmseg's modules are registered first (a child registry does not
# import its parent's modules).
MMSAM_SUBPACKAGES = ('mmsam.datasets', 'mmsam.engine', 'mmsam.evaluation', 'mmsam.models',
                     'mmsam.visualization')


def register_all_modules(init_default_scope: bool = True) -> None:
    """Registers all modules of mmseg and mmsam into the registries.

    Args:
        init_default_scope (bool): Whether to set the global default scope to ``'mmsam'``, so
            registries build from mmsam's node first and fall back to mmseg's and mmengine's.
            Defaults to True.
    """
    from mmseg.utils import register_all_modules as register_mmseg_modules

    from .warning_filters import filter_known_warnings
    filter_known_warnings()
    register_mmseg_modules(init_default_scope=False)
    for name in MMSAM_SUBPACKAGES:
        importlib.import_module(name)

    if init_default_scope:
        never_created = (DefaultScope.get_current_instance() is None
                         or not DefaultScope.check_instance_created('mmsam'))
        if never_created:
            DefaultScope.get_instance('mmsam', scope_name='mmsam')
            return
        current_scope = DefaultScope.get_current_instance()
        if current_scope.scope_name != 'mmsam':
            warnings.warn(f'The current default scope "{current_scope.scope_name}" is not '
                          '"mmsam"; `register_all_modules` switches it to "mmsam". Pass '
                          '`init_default_scope=False` if this is not intended.')
            # A new instance name, because DefaultScope instance names must be unique.
            new_instance_name = f'mmsam-{datetime.datetime.now()}'
            DefaultScope.get_instance(new_instance_name, scope_name='mmsam')
