"""``register_all_modules`` as in mmpretrain/mmseg/mmdet."""
import datetime
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every mmmask module so that it registers, and optionally make ``mmmask`` the scope.

    Args:
        init_default_scope: set the default scope to ``mmmask``. If another scope is current, a new
            uniquely named ``mmmask`` scope instance is created (as mmpretrain does).
    """
    import mmmask.datasets  # noqa: F401
    import mmmask.engine  # noqa: F401
    import mmmask.evaluation  # noqa: F401
    import mmmask.models  # noqa: F401
    import mmmask.evaluation.explanation  # noqa: F401
    import mmmask.evaluation.robustness  # noqa: F401
    if not init_default_scope:
        return
    never_created = (DefaultScope.get_current_instance() is None
                     or not DefaultScope.check_instance_created('mmmask'))
    if never_created:
        DefaultScope.get_instance('mmmask', scope_name='mmmask')
        return
    current = DefaultScope.get_current_instance()
    if current.scope_name != 'mmmask':
        warnings.warn(f'The current default scope "{current.scope_name}" is not "mmmask", '
                      '`register_all_modules` will force the current default scope to be "mmmask".')
        name = f'mmmask-{datetime.datetime.now()}'
        DefaultScope.get_instance(name, scope_name='mmmask')
