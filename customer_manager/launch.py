"""The entry points: load the MySQL driver's C extension, then the program.

The extension must load before anything imports ``ssl`` or ``hashlib``
(``customer_manager/tricks/mysql_cext.py``), and the daemon and the CLI import pika, hence
``ssl``, at the top of their modules. So the console scripts start here: ``daemon`` and
``control`` preload the extension and only then import ``main`` and ``cli``. This module
imports nothing but the standard library and ``customer_manager.tricks``.

``python -m customer_manager.launch MODULE [ARGS...]`` runs MODULE as ``python -m`` would,
after the same preload: ``make test`` runs pytest so (pytest imports hashlib before any
conftest), and the fault tests start daemon subprocesses so.
"""

from __future__ import annotations

import ctypes
import os
import runpy
import sys

from customer_manager.tricks import mysql_cext

M_ARENA_MAX = -8  # glibc's mallopt parameter number
ARENAS = 2


def fewer_malloc_arenas() -> bool:
    """Cap glibc's malloc arenas at ARENAS (as ``MALLOC_ARENA_MAX=2`` would), before any thread
    starts. glibc gives threads that allocate at once arenas of their own, up to 8 per core,
    and the daemon's ~30 threads all allocate: peak RSS under load 50.4 -> 49.4 MiB
    (bench/RESULTS.md, issue 17). Nothing happens when MALLOC_ARENA_MAX is set or the C library
    is not glibc. True if the cap was applied."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        return bool(ctypes.CDLL(None).mallopt(M_ARENA_MAX, ARENAS))
    except (OSError, AttributeError):  # no mallopt: not glibc
        return False


def daemon() -> None:
    """``customer-manager``."""
    fewer_malloc_arenas()
    mysql_cext.preload()
    from customer_manager.main import main

    main()


def control() -> None:
    """``customer-control``."""
    mysql_cext.preload()
    from customer_manager.cli import main

    main()


def run_module() -> None:
    """``python -m customer_manager.launch MODULE [ARGS...]``."""
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m customer_manager.launch MODULE [ARGS...]")
    mysql_cext.preload()
    sys.argv = sys.argv[1:]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    run_module()
