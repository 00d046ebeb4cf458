"""Metrics, liveness and readiness over HTTP (docs/configuration.md#metrics-and-health).

One small ``http.server`` on PROMETHEUS_LISTEN_ADDRESS serves:

* ``PROMETHEUS_ENDPOINT`` (e.g. ``/metrics``): the default Prometheus registry;
* ``/healthz``: liveness, 200 while the process serves HTTP;
* ``/readyz``: readiness, 200 only while every check passes, else 503; the body names the
  checks, e.g. ``{"storage":true,"cache":true,"publisher":true,"consumer":false}``.

Every run of the checks sets ``customer_manager_ready{check}``; a scrape runs them itself
only when no probe did in the last ``READY_MAX_AGE`` seconds (Kubernetes probes every 5 s, so
there a scrape never waits for a check).

Threading contract: the server runs in its own daemon threads (one per request). The checks
are called from those threads, so they must be thread-safe and bounded in time (ask actors
with a timeout); a check that raises counts as failed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from customer_manager import metrics

log = logging.getLogger(__name__)

Check = Callable[[], bool]
READY_MAX_AGE = 10.0


def parse_listen(address: str) -> tuple[str, int]:
    """``:2112`` -> all interfaces, port 2112; ``host:port`` as given; empty -> ``:80``.
    ValueError (saying what is wrong) for anything else."""
    host, colon, port = (address or ":80").rpartition(":")
    if not colon or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(
            f"PROMETHEUS_LISTEN_ADDRESS {address[:64]!r} is not [host]:port with a port 0-65535"
        )
    return host.strip("[]") or "0.0.0.0", int(port)


def run_checks(checks: Mapping[str, Check]) -> dict[str, bool]:
    """Run every check; an exception means "not ready"."""
    results = {}
    for name, check in checks.items():
        try:
            results[name] = bool(check())
        except Exception as exc:
            log.debug("readiness check %s failed: %r", name, exc)
            results[name] = False
    return results


class HealthServer:
    """The HTTP endpoint (module docstring). ``start()`` binds and serves in a thread."""

    def __init__(self, listen: str, metrics_path: str, checks: Mapping[str, Check]) -> None:
        self.address = parse_listen(listen)
        self.metrics_path = metrics_path or "/metrics"
        self.checks = dict(checks)
        self._checked_at = float("-inf")
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._server = ThreadingHTTPServer(self.address, self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health-http", daemon=True
        )
        self._thread.start()
        log.info("metrics and health on %s:%d", self.address[0], self.port)
        return self

    def check(self) -> dict[str, bool]:
        """Run the checks and publish their results as ``customer_manager_ready``."""
        results = run_checks(self.checks)
        for name, ok in results.items():
            metrics.ready.labels(name).set(1 if ok else 0)
        self._checked_at = time.monotonic()
        return results

    def check_if_stale(self) -> None:
        """``check()`` unless the checks ran in the last ``READY_MAX_AGE`` seconds."""
        if time.monotonic() - self._checked_at > READY_MAX_AGE:
            self.check()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == server.metrics_path:
                    server.check_if_stale()
                    metrics.settle()
                    self._send(200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY))
                elif path == "/healthz":
                    self._send(200, "text/plain; charset=utf-8", b"ok\n")
                elif path == "/readyz":
                    results = server.check()
                    body = json.dumps(results, separators=(",", ":")).encode()
                    self._send(200 if all(results.values()) else 503, "application/json", body)
                else:
                    self._send(404, "text/plain; charset=utf-8", b"not found\n")

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("http " + format, *args)

        return Handler


def probe(listen: str, timeout: float = 2.0) -> bool:
    """GET ``/healthz`` of the endpoint at ``listen`` (an all-interfaces address is probed
    on 127.0.0.1): the container HEALTHCHECK."""
    import urllib.request

    host, port = parse_listen(listen)
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=timeout) as reply:
            return int(reply.status) == 200
    except OSError:
        return False


if __name__ == "__main__":  # python -m customer_manager.health
    import os
    import sys

    sys.exit(0 if probe(os.environ.get("PROMETHEUS_LISTEN_ADDRESS", ":2112")) else 1)
