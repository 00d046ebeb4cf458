"""Plugin: tools for fault tests (daemon replicas as subprocesses, a steady request load,
DSN rewriting to route a service through a ``proxy.TcpProxy``) and the ``report`` fixture."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from customer_manager.config import parse_dsn
from tests.support.amqp import Client, envelope
from tests.support.waiting import wait_until


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


@pytest.fixture
def report(
    request: pytest.FixtureRequest,
    record_property: Callable[[str, object], None],
    capsys: pytest.CaptureFixture[str],
) -> Callable[..., None]:
    """``report(key=value, ...)``: one line of figures on the terminal and in the JUnit XML."""

    def emit(**figures: object) -> None:
        for key, value in figures.items():
            record_property(key, value)
        text = " ".join(f"{k}={v}" for k, v in figures.items())
        with capsys.disabled():
            sys.stdout.write(f"\n[figures] {request.node.name}: {text}\n")
            sys.stdout.flush()

    return emit
