"""Optional: sample the daemon with py-spy while one scenario runs (``--profile``).

py-spy (``pip install py-spy``) records in ``raw`` (collapsed stack) format, non-blocking,
so the daemon is not paused. py-spy does not see a thread blocked in a lock or socket
call as idle; ``python -m bench.flame FILE`` separates those waits from work.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

from bench.env import BIN


class Profiler:
    def __init__(self, pid: int, out: str, duration: float, rate: int = 250) -> None:
        exe = shutil.which("py-spy") or str(BIN / "py-spy")
        self.cmd = [
            exe,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(duration) + 2),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            out,
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profiler:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.proc is None:
            return
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            _, err = self.proc.communicate(timeout=10)
        if self.proc.returncode:
            print(f"bench: py-spy failed: {err.decode(errors='replace')[-500:]}", file=sys.stderr)
