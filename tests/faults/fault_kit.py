"""Tools for fault tests: waiting on conditions, daemon replicas as subprocesses, a steady
request load, and DSN/URL rewriting to route a service through an ``amqp_kit.TcpProxy``."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from amqp_kit import Client, TcpProxy, envelope

from customer_manager.config import parse_dsn


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``predicate`` until true; return the seconds it took, fail after ``timeout``."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"timed out after {timeout} s: {what}"
        time.sleep(0.05)
    return time.monotonic() - started


def dsn_via(dsn: str, port: int) -> str:
    """The same MySQL DSN, but through 127.0.0.1:``port`` (a proxy)."""
    p = parse_dsn(dsn)
    return f"{p.user}:{p.password}@tcp(127.0.0.1:{port})/{p.database}"


def unique_email(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}@fault.test"


def http_get(port: int, path: str, timeout: float = 10) -> tuple[int, str]:
    """GET http://127.0.0.1:port/path -> (status, body); HTTP errors are returned too."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return int(r.status), r.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


def metric(text: str, name: str) -> float:
    """The sum of every sample of ``name`` in a Prometheus exposition ``text``."""
    pattern = re.compile(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", re.M)
    return sum(float(v) for v in pattern.findall(text))


class Replica:
    """The daemon as a subprocess, started as its console script starts it (the MySQL C
    extension loaded first: ``python -m customer_manager.launch customer_manager.main``), its
    stderr (JSON log lines) in a file so it can be read while the process runs."""

    def __init__(self, env: dict[str, str], log_path: Path, *args: str) -> None:
        self.log_path = log_path
        self._log = log_path.open("w")
        argv = [sys.executable, "-m", "customer_manager.launch", "customer_manager.main", *args]
        self.proc = subprocess.Popen(
            argv, env=os.environ | env, stdout=subprocess.DEVNULL, stderr=self._log
        )

    def lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.lines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"message": line})
        return out

    def health_port(self, timeout: float = 20) -> int:
        found: list[int] = []

        def look() -> bool:
            for line in self.lines():
                if m := re.search(r"metrics and health on [^:]*:(\d+)", line):
                    found.append(int(m.group(1)))
                    return True
            assert self.proc.poll() is None, "the replica exited:\n" + "\n".join(self.lines())
            return False

        wait_until(look, timeout, "the replica never served /metrics")
        return found[0]

    def metric(self, name: str) -> float:
        return metric(http_get(self.health_port(), "/metrics")[1], name)

    def answered(self) -> set[str]:
        """Correlation ids of the RPCs this replica answered (its one INFO line per RPC)."""
        return {r["correlation_id"] for r in self.records() if r.get("correlation_id")}

    def terminate(self, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """SIGTERM (the daemon drains and flushes its batched log lines), SIGKILL if stuck."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


def replica_env(
    amqp_url: str, dsn: str, redis_address: str, redis_db: int, **extra: str
) -> dict[str, str]:
    return {
        "RABBITMQ_ADDRESS": amqp_url,
        "DATABASE_DSN": dsn,
        "REDIS_ADDRESS": redis_address,
        "REDIS_DATABASE": str(redis_db),
        "PROMETHEUS_LISTEN_ADDRESS": "127.0.0.1:0",
        **extra,
    }


def steady_load(
    client: Client,
    make: Callable[[int], bytes],
    rate: float,
    duration: float,
    during: Callable[[float], None] = lambda _t: None,
) -> list[str]:
    """Send ``make(i)`` at ``rate`` per second for ``duration`` s from the client's thread,
    pumping its connection between sends; ``during(elapsed)`` runs after each send."""
    corrs: list[str] = []
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < duration:
        if len(corrs) < elapsed * rate:
            corrs.append(client.send(make(len(corrs))))
        during(elapsed)
        client.conn.process_data_events(time_limit=0.002)
    return corrs


def create_body(tag: str) -> Callable[[int], bytes]:
    return lambda i: envelope("POST", "/v1/customers", {"email": unique_email(f"{tag}{i}")})


class CommitCutter(TcpProxy):
    """A TCP proxy on 127.0.0.1 to MySQL that, once ``arm()``ed, forwards the next COMMIT
    to the server, lets no reply back, waits until the server has applied it and then cuts
    the connection: the client loses it at COMMIT, after the change was stored."""

    def __init__(self, target: tuple[str, int], settle: float = 0.3) -> None:
        super().__init__(target)
        self.settle = settle
        self.armed = threading.Event()
        self.commit_cut = threading.Event()

    def arm(self) -> None:
        self.commit_cut.clear()
        self.armed.set()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.target)
        muted = threading.Event()
        threading.Thread(target=self._up, args=(client, upstream, muted), daemon=True).start()
        threading.Thread(target=_down, args=(upstream, client, muted), daemon=True).start()

    def _up(self, client: socket.socket, upstream: socket.socket, muted: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                commit = self.armed.is_set() and b"\x03commit" in data.lower()
                if commit:
                    self.armed.clear()
                    muted.set()  # the server's OK must not reach the client
                upstream.sendall(data)
                if commit:
                    time.sleep(self.settle)
                    break
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if muted.is_set():
            self.commit_cut.set()


def _down(src: socket.socket, dst: socket.socket, muted: threading.Event) -> None:
    with contextlib.suppress(OSError):
        while (data := src.recv(65536)) and not muted.is_set():
            dst.sendall(data)
