"""A one-shot local actor system for ``customer-control``
(docs/configuration.md#customer-control).

The CLI does not talk to storage itself: it starts the same router, pools, storage, cache and
publisher as the daemon (no consumer), sends one Request and stops everything again.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import click
import msgspec

from customer_manager.config import Settings
from customer_manager.errors import ServiceError, Unavailable
from customer_manager.messages import gojson
from customer_manager.messages.ops import Op, OpName
from customer_manager.messages.routes import path_id
from customer_manager.messages.wire import JSON, Request, Response
from customer_manager.storage import open_storage
from customer_manager.storage.base import SCHEMA_VERSION

log = logging.getLogger(__name__)


def _where(settings: Settings) -> str:
    if settings.database_dsn:
        from customer_manager.config import parse_dsn

        return f"MySQL {parse_dsn(settings.database_dsn).safe()}"
    return f"SQLite {settings.sqlite_path}"


def schema_command(settings: Settings, *, migrate: bool) -> str:
    """Apply migrations (or just read the version) and describe the result."""
    try:
        storage = open_storage(settings)
        try:
            version = storage.migrate() if migrate else storage.schema_version()
        finally:
            storage.close()
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    return f"schema version {version} (this program needs {SCHEMA_VERSION}) on {_where(settings)}"


def ensure_schema(settings: Settings, wait: float = 0.0) -> None:
    """The embedded SQLite store migrates itself; MySQL must have been migrated already.
    ``wait``: seconds to keep trying while MySQL is unreachable (a daemon starting during a
    network partition waits for it instead of exiting at once; a SIGTERM meanwhile ends it,
    main._on_signal)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            version = _schema_version(settings)
            break
        except Unavailable as exc:
            if time.monotonic() >= deadline:
                raise click.ClickException(exc.message) from None
            log.warning("%s; trying again", exc.message)
            time.sleep(1.0)
        except ServiceError as exc:
            raise click.ClickException(exc.message) from None
    if version < SCHEMA_VERSION:
        raise click.ClickException(
            f"the database schema is at version {version}, this program needs "
            f"{SCHEMA_VERSION}: run `customer-control db migrate` first"
        )


def _schema_version(settings: Settings) -> int:
    """The MySQL schema version (SQLite: migrated now, so the current one)."""
    storage = open_storage(settings)
    try:
        if not settings.database_dsn:
            return storage.migrate()
        return storage.schema_version()
    finally:
        storage.close()


def _publisher_factory(settings: Settings) -> Any:
    if not settings.rabbitmq_address:
        return None
    from customer_manager.actors.amqp.publisher import AmqpPublisher

    return lambda storage_pool: AmqpPublisher.start(settings, storage_pool)


def _error_message(response: Response) -> str:
    try:
        body = msgspec.json.decode(response.data)
        return f"{body['message']} ({body['reason']}, {response.status_code})"
    except (msgspec.DecodeError, KeyError, TypeError):
        return f"request failed with status {response.status_code}"


Send = Callable[[Request], bytes]


def make_request(method: str, uri: str, data: Any = None) -> Request:
    """A Request as ``customer-control`` sends it (``data`` as Go JSON when given)."""
    raw = msgspec.Raw(gojson.encode(data)) if data is not None else msgspec.Raw(b"")
    return Request(uri=uri, method=method, publisher="customer-control", data_type=JSON, data=raw)


@contextlib.contextmanager
def local_system(
    settings: Settings, *, op: OpName | None = None, failure: str = ""
) -> Iterator[Send]:
    """A local actor system for a few requests: yields ``send(request)``, which returns the
    reply's JSON data or raises a ClickException (exit 1) with a message a person can act
    on, after ``failure``. On leaving, the events and webhooks written are published (with a
    broker). With ``op``, requests go straight to that customer operation (one without a
    route)."""
    from customer_manager.actors.service.router import call
    from customer_manager.bootstrap import bootstrap

    ensure_schema(settings)
    log.info("using %s", _where(settings))
    system = bootstrap(settings, publisher_factory=_publisher_factory(settings))

    def send(request: Request) -> bytes:
        timeout = settings.rpc_timeout + 15
        if op is None:
            response = call(system.router, request, timeout=timeout)
        else:
            direct = Op(name=op, request=request, id=path_id(request.uri))
            response = _direct(system.workers[0], direct, timeout)
        if response.status_code != 200:
            raise click.ClickException(failure + _error_message(response))
        return bytes(response.data)

    try:
        yield send
        if settings.rabbitmq_address:
            relayed = system.publisher.proxy().relay_now().get(timeout=30)
            log.info("published %d event(s) and webhook(s)", relayed)
    finally:
        system.stop()


def run_request(
    settings: Settings, request: Request, *, op: OpName | None = None, failure: str = ""
) -> bytes:
    """Send one ``request`` through a local actor system (``local_system``)."""
    with local_system(settings, op=op, failure=failure) as send:
        return send(request)


def _direct(customers: Any, op: Op, timeout: float) -> Response:
    """Run ``op`` on the customer pool and wait for its reply (errors as replies)."""
    from customer_manager.actors.kit.flow import Flow, wait
    from customer_manager.errors import error_response

    try:
        reply: Response = wait(Flow(customers, op, timeout), timeout + 1, "customer pool")
    except ServiceError as exc:
        return error_response(exc)
    return reply
