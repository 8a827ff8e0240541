"""A user's Python function named on the command line: ``MODULE:FUNCTION`` or ``FILE.py:FUNCTION``.

Judges (``fn:`` in ``alignkit eval``) and online-RL rewards and costs
(``reward.source: fn:...``) name scoring functions the same way; this module
resolves the name and reports what is wrong with it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

from alignkit.errors import AlignkitError


def load_user_function(target: str, what: str,
                       error: type[AlignkitError] = AlignkitError) -> Callable:
    """The callable named by ``target`` (without its ``fn:`` prefix).

    Args:
        target: ``MODULE:FUNCTION`` (importable from ``sys.path``) or ``FILE.py:FUNCTION``.
        what: how messages name the setting, e.g. ``"judge"`` or ``"reward source"``.
        error: the exception raised for a bad name (``ConfigError`` inside a configuration).
    """
    module_name, _, function_name = target.rpartition(":")
    where = f"{what} 'fn:{target}'"
    if not module_name or not function_name:
        raise error(f"{where} must be fn:MODULE:FUNCTION or fn:FILE.py:FUNCTION, e.g. "
                    "fn:my_rewards:length_bonus")
    if module_name.endswith(".py"):
        module = _module_from_file(Path(module_name), what, error)
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise error(f"{where}: cannot import module '{module_name}' ({exc}); is it on "
                        "PYTHONPATH?") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise error(f"{where}: module '{module_name}' has no function '{function_name}'")
    return function


def _module_from_file(path: Path, what: str, error: type[AlignkitError]):
    if not path.is_file():
        raise error(f"{what} file '{path}' does not exist")
    name = f"alignkit_user_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise error(f"{what} file '{path}' failed to load: {type(exc).__name__}: "
                    f"{exc}") from exc
    return module
