"""The names myninja's packages had before 0.2 (`skills`, `backends`, `agent_graph`,
`ninja_tui`), kept for plugins written against them until the next release.

They are not packages on disk: `allow()` puts a finder in front of `sys.meta_path` that hands
out the module under its new name (`skills.api` is `myninja.skills.api`, the same object) with
a DeprecationWarning. Distributions named `skills` or `backends` on PyPI ship real packages of
those names; when one is installed, the finder still wins, but only while plugins load."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType

OLD_NAMES = ("skills", "backends", "agent_graph", "ninja_tui")


class _OldNameFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".", 1)[0] not in OLD_NAMES:
            return None
        new = f"myninja.{fullname}"
        if importlib.util.find_spec(new) is None:
            return None
        is_package = hasattr(importlib.import_module(new), "__path__")
        return importlib.machinery.ModuleSpec(fullname, self, is_package=is_package)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = f"myninja.{spec.name}"
        if "." not in spec.name:  # once per old name, not once per module under it
            warnings.warn(
                f"'{spec.name}' is now '{new}'; the old name goes in the next release",
                DeprecationWarning,
                stacklevel=2,
            )
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        pass  # it ran under its new name already


_FINDER = _OldNameFinder()


class allow:
    """While plugins load: `import skills.api` gives `myninja.skills.api`, with a warning."""

    def __enter__(self) -> None:
        sys.meta_path.insert(0, _FINDER)

    def __exit__(self, *exc: object) -> None:
        if _FINDER in sys.meta_path:
            sys.meta_path.remove(_FINDER)
