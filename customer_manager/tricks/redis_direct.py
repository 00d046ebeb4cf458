"""redis-py's connection layer, used directly for the cache's hot commands.

A command through ``Redis.execute_command`` passes the retry wrapper, the argument encoders,
a health check and the response callbacks: ~25 µs of the ~55 µs of CPU of a GET here.
``command`` packs the command and sends it on a single-connection client's ``connection``, then
reads the raw reply: ~30 µs (bench/RESULTS.md item 12; redis-py 8.1.0, pinned ``>=8.1,<8.2``
in setup.cfg). The raw replies of the commands used (GET, SET, DEL, EVAL, EVALSHA) are what
the cache needs; the connection drops itself on a network error, and an error reply raises
``ResponseError`` (NOSCRIPT: ``NoScriptError``; ``tests/contract/test_cache.py`` pins them).
Off, ``command`` is ``execute_command``.
"""

from __future__ import annotations

from typing import Any

import redis

from customer_manager.tricks.switch import Switch

switch = Switch()
enable, disable = switch.enable, switch.disable


def enabled() -> bool:
    return switch.on


def command(client: redis.Redis, *args: Any) -> Any:
    """Run one command on ``client`` (created with ``single_connection_client=True``)."""
    if not switch.on:
        return client.execute_command(*args)  # type: ignore[no-untyped-call]
    conn: Any = client.connection  # a single-connection client: never None
    conn.send_packed_command(conn.pack_command(*args), check_health=False)
    return conn.read_response()
