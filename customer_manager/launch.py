"""The entry points: load the MySQL driver's C extension, then the program.

The extension must load before anything imports ``ssl`` or ``hashlib``
(``customer_manager/tricks/mysql_cext.py``), and the daemon and the CLI import pika, hence
``ssl``, at the top of their modules. So the console scripts start here: ``daemon`` and
``control`` preload the extension and only then import ``main`` and ``cli``. This module
imports nothing but the standard library at import, and ``customer_manager.tricks`` when an
entry point runs (after ``daemon``'s exec).

``python -m customer_manager.launch MODULE [ARGS...]`` runs MODULE as ``python -m`` would,
after the same preload: ``make test`` runs pytest so (pytest imports hashlib before any
conftest), and the fault tests start daemon subprocesses so.
"""

from __future__ import annotations

import os
import runpy
import sys

ARENAS = 1


def fewer_malloc_arenas() -> None:
    """Run the process with glibc's malloc arenas capped at ARENAS: unless MALLOC_ARENA_MAX is
    set already (an operator's setting wins) or the C library is not glibc, set it and exec the
    same command line again, before anything is imported or started; glibc reads it only when
    a process starts. glibc gives threads that allocate at once arenas of their own, up to 8
    per core, and the daemon's ~30 threads all allocate: peak RSS under load 50.4 -> 49.4 MiB
    with 2 arenas (bench/RESULTS.md, issue 17); one arena and no ctypes (``mallopt`` through
    ctypes kept ctypes and libffi loaded: 0.45 MiB) another 0.4 MiB less (VmHWM 50.3-50.5 ->
    49.9-50.1 MiB in paired runs, bench/RESULTS.md, sixth session).
    Returns only if it did not exec."""
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.executable or not _glibc():
        return
    os.environ["MALLOC_ARENA_MAX"] = str(ARENAS)
    try:
        os.execv(sys.executable, sys.orig_argv)
    except OSError:  # cannot exec ourselves: run on, uncapped
        del os.environ["MALLOC_ARENA_MAX"]


def _glibc() -> bool:
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError):  # the name is unknown: not glibc
        return False


def preload_mysql() -> None:
    """``mysql_cext.preload()``, and ``redis_lazy.defer()`` (which must also come
    before the program's imports); imported here, so that ``daemon`` execs before them."""
    from customer_manager.tricks import mysql_cext, redis_lazy

    mysql_cext.preload()
    redis_lazy.defer()


def daemon() -> None:
    """``customer-manager``."""
    fewer_malloc_arenas()
    preload_mysql()
    from customer_manager.main import main

    main()


def control() -> None:
    """``customer-control``."""
    preload_mysql()
    from customer_manager.cli import main

    main()


def run_module() -> None:
    """``python -m customer_manager.launch MODULE [ARGS...]``."""
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m customer_manager.launch MODULE [ARGS...]")
    preload_mysql()
    sys.argv = sys.argv[1:]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    run_module()
