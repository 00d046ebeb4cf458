"""The daemon's entry point caps glibc's malloc arenas (launch.fewer_malloc_arenas, issue 17:
peak RSS under load) by exec'ing itself with MALLOC_ARENA_MAX set, unless the operator set
it; it never imports ctypes for that."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from customer_manager import launch

# Prints what the process sees after the call; the exec runs this same code again, so a run
# that exec'd prints once, with the variable set, and the pid of the process that was started.
PROBE = (
    "import os, sys\n"
    "from customer_manager import launch\n"
    "launch.fewer_malloc_arenas()\n"
    "print(os.getpid(), os.environ.get('MALLOC_ARENA_MAX'), 'ctypes' in sys.modules)\n"
)


def _run(env_value: str | None) -> tuple[subprocess.Popen[str], list[str]]:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    if env_value is not None:
        env["MALLOC_ARENA_MAX"] = env_value
    proc = subprocess.Popen(
        [sys.executable, "-c", PROBE], env=env, stdout=subprocess.PIPE, text=True
    )
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    return proc, out.split()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="MALLOC_ARENA_MAX is glibc's")
def test_the_cap_is_applied_on_glibc_by_exec_in_the_same_process() -> None:
    proc, (pid, value, ctypes_loaded) = _run(None)
    assert (int(pid), value, ctypes_loaded) == (proc.pid, str(launch.ARENAS), "False")


def test_an_operator_setting_wins() -> None:
    proc, (pid, value, _) = _run("8")
    assert (int(pid), value) == (proc.pid, "8")
