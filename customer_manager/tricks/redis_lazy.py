"""Two modules that ``import redis`` loads and the daemon never uses, loaded on first use.

``import redis`` runs ``from redis import asyncio``, whose ``__init__`` imports the asyncio
client, cluster, sentinel and connection modules, and ``redis.utils`` imports
``importlib.metadata`` (with email, zipfile, csv, ...) at its top only to look up its own version
for CLIENT SETINFO (``DriverInfo``; the cache passes that version itself). The daemon's sync
clients need neither, and kept them for the process's life: 2.1 MiB of RSS together
(bench/RESULTS.md, seventh session; redis-py 8.1.0, pinned ``>=8.1,<8.2`` in setup.cfg).

``defer()`` puts each in ``sys.modules`` before anything imports redis, as the real module (its
spec, file and ``__path__``) whose code has not run yet: submodules still import as usual (the
sync client imports ``redis.asyncio.observability.recorder``), and the first attribute asked of
it (``redis.asyncio.Redis``, ``importlib.metadata.version``) runs the module's code then, so a
user of either gets it whole. The private part is redis-py's layout: which of its modules the
sync client imports and which it only names.

This must precede ``import redis``, so the entry points call it (``customer_manager.launch``)
and ``tricks.install()`` only reports it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from collections.abc import Callable
from importlib.abc import Loader
from importlib.machinery import ModuleSpec
from typing import Any

from customer_manager.tricks.mysql_cext import in_range, installed_version

DISTRIBUTION = "redis"
MEASURED = ("8.1", "8.2")  # [from, below): the versions pinned in setup.cfg

_lock = threading.RLock()
_deferred: list[str] = []


def defer() -> list[str]:
    """Defer ``redis.asyncio`` and ``importlib.metadata`` if redis is the measured version and
    neither is imported yet; returns the names deferred in this process so far."""
    if "redis" in sys.modules or not in_range(installed_version(DISTRIBUTION), MEASURED):
        return _deferred
    found = importlib.util.find_spec("redis")  # finds the package without running it
    if found is None or not found.submodule_search_locations:
        return _deferred
    folder = os.path.join(found.submodule_search_locations[0], "asyncio")
    asyncio_spec = importlib.util.spec_from_file_location(
        "redis.asyncio", os.path.join(folder, "__init__.py"), submodule_search_locations=[folder]
    )
    for spec in (asyncio_spec, importlib.util.find_spec("importlib.metadata")):
        if spec is not None and spec.loader is not None and spec.name not in sys.modules:
            _defer(spec, spec.loader)
    return _deferred


def deferred() -> list[str]:
    """The modules ``defer()`` deferred in this process (whether used since or not)."""
    return _deferred


def _defer(spec: ModuleSpec, loader: Loader) -> None:
    module = importlib.util.module_from_spec(spec)
    running = False
    mine: list[Any] = []  # the hook, once made: the module's code may define its own

    def __getattr__(name: str) -> Any:  # the module's PEP 562 hook
        nonlocal running
        with _lock:  # another thread asking meanwhile waits for the module's code to finish
            if running:  # asked by the module's own code: as if the name were not set yet
                raise AttributeError(f"module {spec.name!r} has no attribute {name!r}")
            if vars(module).get("__getattr__") is mine[0]:
                running = True
                try:
                    loader.exec_module(module)
                    if vars(module).get("__getattr__") is mine[0]:
                        del vars(module)["__getattr__"]
                finally:
                    running = False
        try:
            return vars(module)[name]
        except KeyError:
            raise AttributeError(f"module {spec.name!r} has no attribute {name!r}") from None

    hook: Callable[[str], Any] = __getattr__
    mine.append(hook)
    vars(module)["__getattr__"] = hook
    sys.modules[spec.name] = module
    parent, _, child = spec.name.rpartition(".")
    if parent in sys.modules:  # as an import would: ``importlib.metadata`` is an attribute
        setattr(sys.modules[parent], child, module)
    _deferred.append(spec.name)
