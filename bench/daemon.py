"""The daemon under test: spawn, time to first reply, memory, SIGTERM.

Memory comes from ``/proc/<pid>/status`` (``VmRSS`` now, ``VmHWM`` the peak so far) of the
spawned process itself, so ``--daemon-cmd`` should exec the service directly, not via a
shell. A sampler thread also records the highest ``VmRSS`` seen while load runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from bench.amqp import REQUEST_QUEUE, RpcClient, envelope, status_of

PROBE = envelope("GET", "/v1/customers?page_size=1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_status_kb(pid: int, field: str) -> int:
    """A ``kB`` field of /proc/<pid>/status, e.g. VmRSS or VmHWM; 0 if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler(threading.Thread):
    """Samples VmRSS every ``interval`` seconds; ``peak_kb`` since the last ``reset``."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_kb = 0
        self._halt = threading.Event()

    def reset(self) -> None:
        self.peak_kb = 0

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self.peak_kb = max(self.peak_kb, proc_status_kb(self.pid, "VmRSS"))

    def stop(self) -> None:
        self._halt.set()


class Daemon:
    """The service as a child process in its own session (Ctrl-C reaches only the harness)."""

    def __init__(self, cmd: list[str], env: dict[str, str], log_path: Path) -> None:
        self.cmd, self.env, self.log_path = cmd, env, log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.spawned_at = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.spawned_at = time.perf_counter()
            self.proc = subprocess.Popen(
                self.cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_first_reply(self, url: str, timeout: float = 60.0) -> float:
        """Seconds from spawn to the first 200 reply to ``GET /v1/customers?page_size=1``.

        The request queue is declared first (as the daemon declares it: durable, no
        arguments), so the probe waits in the queue until the daemon consumes it.
        """
        client = RpcClient(url, name="cm-bench-probe")
        try:
            client.channel.queue_declare(REQUEST_QUEUE, durable=True)
            cid = client.send(PROBE)
            deadline = time.perf_counter() + timeout
            while time.perf_counter() < deadline:
                client.conn.process_data_events(time_limit=0.005)
                if cid in client.replies:
                    if status_of(client.replies.pop(cid)) == 200:
                        return time.perf_counter() - self.spawned_at
                    time.sleep(0.1)
                    cid = client.send(PROBE)
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(
                        f"the daemon exited with {self.proc.returncode}; see {self.log_path}"
                    )
            raise TimeoutError(f"no reply from the daemon within {timeout}s; see {self.log_path}")
        finally:
            client.close()

    def rss_kb(self) -> int:
        return proc_status_kb(self.pid, "VmRSS")

    def hwm_kb(self) -> int:
        return proc_status_kb(self.pid, "VmHWM")

    def stop(self, timeout: float = 30.0) -> tuple[int | None, float]:
        """SIGTERM, wait (SIGKILL the group after ``timeout``); (exit code, seconds taken)."""
        if self.proc is None or self.proc.poll() is not None:
            return (self.proc.returncode if self.proc else None), 0.0
        began = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait(10)
        return code, time.perf_counter() - began

    def log_tail(self, lines: int = 5) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @contextlib.contextmanager
    def tail_on_failure(self, what: str) -> Iterator[None]:
        """On any error inside, print the last lines of the process's log, then re-raise."""
        try:
            yield
        except BaseException:
            print(f"bench: {what} log tail:\n{self.log_tail()}", file=sys.stderr)
            raise


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies over all CPUs from /proc/stat; diff two calls for a share."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


PEERS = {"beam.smp": "broker", "mariadbd": "mysql", "mysqld": "mysql", "redis-server": "redis"}


def peer_pids() -> dict[str, int]:
    """The local broker, database and Redis processes by role (those readable in /proc)."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                role = PEERS.get((entry / "comm").read_text().strip())
            except OSError:
                continue
            if role:
                found.setdefault(role, int(entry.name))
    return found
