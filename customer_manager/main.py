"""The daemon ``customer-manager``: settings -> schema -> actors -> consume until SIGTERM.

Startup (docs/configuration.md#startup-and-shutdown): JSON logs on stderr with secrets
masked, the library tricks (``tricks.install()``, which logs the MySQL driver; the console
script ``customer_manager.launch:daemon`` loads the driver's C extension before this module),
the schema migrated (SQLite) or checked (MySQL; ``--migrate`` applies it), the actor system
from ``bootstrap``, the AMQP publisher and consumer, and the metrics/health HTTP endpoint.
SIGTERM, SIGINT or SIGHUP drains: stop consuming, answer what is in flight, stop
the actors, exit 0. A startup failure exits 1.

Threading contract: ``main`` runs in the process's main thread, which only waits for a signal;
all work happens in actors and the health server's threads.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

import click

from customer_manager import migration, placement, tricks
from customer_manager.actors.amqp.consumer import ConsumerActor
from customer_manager.actors.amqp.publisher import AmqpPublisher
from customer_manager.actors.storage import StorageFactory
from customer_manager.bootstrap import System, bootstrap, default_cache
from customer_manager.config import (
    DEFAULT_PREFETCH,
    DEFAULT_RABBITMQ,
    Settings,
    check,
    embedded_store,
    mask_url,
    parse_dsn,
)
from customer_manager.flags import settings_options
from customer_manager.health import HealthServer, parse_listen
from customer_manager.logs import configure_logging
from customer_manager.messages.ops import HandleMany
from customer_manager.oneshot import ensure_schema
from customer_manager.storage.base import Storage

log = logging.getLogger("customer_manager")

ASK_TIMEOUT = 5.0
STARTUP_WAIT = 60.0  # seconds to wait for an unreachable MySQL at start before exiting 1


def describe(settings: Settings) -> dict[str, Any]:
    """The settings as logged at startup: no password, no DSN in clear
    (docs/configuration.md#logs)."""
    shown = {f: getattr(settings, f) for f in settings.__struct_fields__}
    shown["database_dsn"] = parse_dsn(settings.database_dsn).safe() if settings.database_dsn else ""
    shown["redis_password"] = "***" if settings.redis_password else ""
    shown["rabbitmq_address"] = mask_url(settings.rabbitmq_address)
    return shown


class Daemon:
    """The running service: actor system, consumer, HTTP endpoint. Main thread only."""

    def __init__(
        self,
        settings: Settings,
        health: HealthServer | None = None,
        *,
        storage_factory: StorageFactory | None = None,
        publisher_options: dict[str, Any] | None = None,
    ) -> None:
        """``health``: the endpoint, bound already (``main`` binds it before anything else);
        by default one is made here, to be started by the caller. ``storage_factory`` and
        ``publisher_options`` (AmqpPublisher keywords, such as a short outbox lease) are for
        tests."""
        self.settings = settings
        options = publisher_options or {}
        self.system: System = bootstrap(
            settings,
            storage_factory=storage_factory,
            cache=default_cache(settings, flush_at_start=True),
            publisher_factory=lambda store: AmqpPublisher.start(settings, store, **options),
        )
        router = self.system.router
        self.consumer = ConsumerActor.start(
            settings, lambda handles: router.tell(HandleMany(items=handles))
        )
        self.health = health or HealthServer(
            settings.prometheus_listen_address, settings.prometheus_endpoint, {}
        )
        self.health.checks = {
            "storage": self._storage_ok,
            "cache": self._cache_ok,
            "publisher": lambda: self._ask(self.system.publisher, "ready"),
            "consumer": lambda: self._ask(self.consumer, "ready"),
        }
        try:
            self._cache_ok()
        except Exception as exc:  # the cache is optional for correctness: serve, but say so
            log.warning("Redis at %s is unreachable at start: %s", settings.redis_address, exc)

    def _storage_ok(self) -> bool:
        self.system.storage.call(Storage.ping)
        return True

    def _cache_ok(self) -> bool:
        self.system.backend.ping()
        return True

    @staticmethod
    def _ask(ref: Any, method: str) -> bool:
        return bool(getattr(ref.proxy(), method)().get(timeout=ASK_TIMEOUT))

    def drain_and_stop(self, timeout: float) -> bool:
        """Stop consuming, answer in-flight requests, then stop every actor."""
        drained = False
        try:
            drained = bool(self.consumer.proxy().drain(timeout).get(timeout=timeout + 5))
        except Exception:
            log.exception("draining the consumer failed")
        self.consumer.stop(block=True, timeout=10)
        self.system.stop()
        self.health.stop()
        return drained


SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_signalled = threading.Event()
_serving = threading.Event()


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    if not _serving.is_set():  # still starting (maybe blocked on a server): nothing to drain
        os.write(2, f"{signal.Signals(signum).name} during startup: exiting\n".encode())
        os._exit(0)
    log.info("received %s, draining", signal.Signals(signum).name)
    _signalled.set()


def _settings(opts: dict[str, Any]) -> Settings:
    """Settings from the options, every one checked before anything is connected."""
    if not opts["database_dsn"]:
        raise click.ClickException(
            "DATABASE_DSN is empty: set the MySQL DSN (user:pass@tcp(host:3306)/bin_manager),"
            " or sqlite:PATH to serve from an embedded SQLite file"
        )
    opts["database_dsn"], opts["sqlite_path"] = embedded_store(
        opts["database_dsn"], opts["sqlite_path"]
    )
    settings = Settings(**opts)
    try:
        check(settings)
        parse_listen(settings.prometheus_listen_address)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    return settings


def _bind(settings: Settings) -> HealthServer:
    """The metrics/health endpoint, bound before anything is connected; exit 1 if it can't."""
    health = HealthServer(
        settings.prometheus_listen_address, settings.prometheus_endpoint, {"started": lambda: False}
    )
    try:
        return health.start()
    except (OSError, OverflowError) as exc:
        raise click.ClickException(
            f"cannot serve metrics on {settings.prometheus_listen_address}: {exc}"
        ) from None


def _start(settings: Settings, health: HealthServer, migrate: bool) -> Daemon:
    if migrate:
        for line in migration.migrate(settings):
            log.info(line)
    ensure_schema(settings, wait=STARTUP_WAIT)
    daemon = Daemon(settings, health)
    _serving.set()
    return daemon


@click.command("customer-manager", context_settings={"help_option_names": ["-h", "--help"]})
@settings_options
@click.option(
    "--rabbitmq_address", envvar="RABBITMQ_ADDRESS", default=DEFAULT_RABBITMQ, show_envvar=True
)
@click.option(
    "--prometheus_endpoint", envvar="PROMETHEUS_ENDPOINT", default="/metrics", show_envvar=True
)
@click.option(
    "--prometheus_listen_address",
    envvar="PROMETHEUS_LISTEN_ADDRESS",
    default=":2112",
    show_envvar=True,
    help="host:port; ':2112' means every interface.",
)
@click.option(
    "--agent_check",
    envvar="AGENT_CHECK",
    type=click.Choice(["required", "off"]),
    default="required",
    show_default=True,
)
@click.option(
    "--cpu_placement",
    envvar="CPU_PLACEMENT",
    type=click.Choice(["one", "any"]),
    default="one",
    show_default=True,
    help="one: every thread on one CPU, moved when other work loads it; any: where the kernel"
    " puts them.",
)
@click.option(
    "--prefetch",
    envvar="PREFETCH",
    type=click.IntRange(1, 1000),
    default=DEFAULT_PREFETCH,
    show_default=True,
    help="Requests in flight (unacked) per replica.",
)
@click.option(
    "--migrate",
    is_flag=True,
    help="Apply pending MySQL migrations at start (as `customer-control db migrate`).",
)
@click.option("--drain_timeout", type=float, default=30.0, show_default=True)
def main(migrate: bool, drain_timeout: float, **opts: Any) -> None:
    """Serve bin-manager.customer-manager.request until SIGTERM."""
    settings = _settings(opts)
    configure_logging(settings)
    health = _bind(settings)
    log.info("customer-manager starting", extra={"settings": describe(settings)})
    tricks.install()  # the library tricks; logs the MySQL driver in use
    previous = {signum: signal.signal(signum, _on_signal) for signum in SIGNALS}
    try:
        daemon = _start(settings, health, migrate)
    except BaseException:
        health.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        raise
    if settings.cpu_placement == "one":  # once serving: a failed start leaves the process as it was
        placement.Placement().start()
    while not _signalled.wait(1.0):
        pass
    drained = daemon.drain_and_stop(drain_timeout)
    log.info("Customer-manager stopped safely.", extra={"drained": drained})


if __name__ == "__main__":
    main()
