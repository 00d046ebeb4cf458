"""Every use of a private API of pika, pykka, redis-py or mysql-connector, in one place.

Each trick is a module here whose docstring gives its measured gain (bench/RESULTS.md) and the
library versions it was measured on, which setup.cfg pins. Nothing is turned on at import:
the daemon's and the CLI's main (and the test suite's conftest) call ``install()`` at start,
which turns on each trick whose library is installed in its measured range and logs and skips
the others (their callers then take the library's public path). The MySQL C extension is
loaded earlier still, by the entry points (``launch.py``), because it must precede ``ssl``,
and two modules that redis imports and the daemon never uses are deferred there, before
``import redis``; ``install()`` logs both and which MySQL driver is in use.

=====================  ===========================  ===========================================
trick                  private API                  measured gain
=====================  ===========================  ===========================================
pika-joined-send       transport ``_produce``       1 send per batch, not per frame (item 1)
pika-channel-core      ``BlockingChannel._impl``    create 396 → 478 req/s (item 5), item 1
pika-poll-hook         the poller's ``poll``        consumer → router hop (sixth session)
pika-fast-wake         ``_ready_events``, interrupt reply → consumer wake-up −25…35 %
pykka-waking-inbox     ``_create_actor_inbox``      ask to a pump actor 88 → 0.2 ms (Tricks);
                                                    C inbox: GET 149 → 128 µs CPU in-process
redis-direct-command   connection pack/send/read    GET ~55 → ~30 µs of CPU (item 12)
mysql-c-extension      ``_mysql_connector`` first   create 1.74 → 1.0 ms of CPU (item 11)
mysql-direct-write     connection ``_cmysql``       storage CPU per create −0.08…0.10 ms (17)
redis-lazy-imports     redis-py's module layout    daemon RSS −2.1 MiB (seventh session)
=====================  ===========================  ===========================================

Removed because the measured gain was within noise: setting the pure-Python MySQL socket's
timeout once through the connection's ``_socket`` (RESULTS "Tricks"). The ``queue.SimpleQueue``
inbox of pool members and the router, removed so once (RESULTS item 8: within the bench's
noise), is back in ``pykka_inbox`` with a paired in-process figure (RESULTS, fifth session).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from customer_manager.tricks import mysql_cext, redis_lazy
from customer_manager.tricks.mysql_cext import in_range, installed_version

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trick:
    name: str
    distribution: str
    measured: tuple[str, str]  # [from, below), as pinned in setup.cfg
    module: str  # customer_manager.tricks.<module>, which has enable() and disable()


TRICKS = (
    Trick("pika-joined-send+channel-core", "pika", ("1.4.4", "1.5"), "pika_io"),
    Trick("pika-poll-hook+fast-wake", "pika", ("1.4.4", "1.5"), "pika_pump"),
    Trick("pykka-waking-inbox", "pykka", ("4.5", "4.6"), "pykka_inbox"),
    Trick("redis-direct-command", "redis", ("8.1", "8.2"), "redis_direct"),
    Trick("mysql-direct-write", mysql_cext.DISTRIBUTION, mysql_cext.MEASURED, "mysql_direct"),
)
MYSQL_C_EXTENSION = Trick(
    "mysql-c-extension", mysql_cext.DISTRIBUTION, mysql_cext.MEASURED, "mysql_cext"
)
REDIS_LAZY_IMPORTS = Trick(
    "redis-lazy-imports", redis_lazy.DISTRIBUTION, redis_lazy.MEASURED, "redis_lazy"
)


def switches(trick: Trick) -> tuple[Callable[[], None], Callable[[], None]]:
    """The trick's ``enable`` and ``disable``."""
    import importlib

    module = importlib.import_module(f"{__name__}.{trick.module}")
    return module.enable, module.disable


def install() -> dict[str, bool]:
    """Turn on every trick whose library is in its measured range; log the rest and the
    MySQL driver. Idempotent. Returns which tricks are on."""
    state: dict[str, bool] = {}
    for trick in TRICKS:
        version = installed_version(trick.distribution)
        enable, disable = switches(trick)
        state[trick.name] = in_range(version, trick.measured)
        if state[trick.name]:
            enable()
        else:
            disable()
            low, high = trick.measured
            log.warning(
                "trick %s skipped: %s %s is not the measured >=%s,<%s",
                trick.name,
                trick.distribution,
                version,
                low,
                high,
            )
    state[MYSQL_C_EXTENSION.name] = mysql_cext.loaded()
    state[REDIS_LAZY_IMPORTS.name] = bool(redis_lazy.deferred())
    if mysql_cext.loaded():
        chosen = mysql_cext.use_system_cas()  # the extension's OpenSSL has no CA path of ours
        if chosen:
            log.debug("OpenSSL CA paths for the C extension's OpenSSL: %s", chosen)
    log.info(
        "tricks on: %s; MySQL driver: %s",
        ", ".join(name for name, on in state.items() if on) or "none",
        mysql_cext.driver(),
        extra={"tricks": state, "mysql_driver": mysql_cext.driver()},
    )
    return state
