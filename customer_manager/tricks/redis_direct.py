"""redis-py's connection layer, used directly for the cache's hot commands.

A command through ``Redis.execute_command`` passes the retry wrapper, the argument encoders,
a health check and the response callbacks: ~25 µs of the ~55 µs of CPU of a GET here.
``command`` packs the command and sends it on a single-connection client's ``connection``, then
reads the raw reply: ~30 µs (bench/RESULTS.md item 12; redis-py 8.1.0, pinned ``>=8.1,<8.2``
in setup.cfg). The raw replies of the commands used (GET, SET, DEL, EVAL, EVALSHA) are what
the cache needs; the connection drops itself on a network error, and an error reply raises
``ResponseError`` (NOSCRIPT: ``NoScriptError``; ``tests/contract/test_cache.py`` pins them).
``commands`` sends several commands in one write and reads their replies in order, an error
reply as its ``ResponseError`` in the list (a pipeline without redis-py's pipeline object).
Off, ``command`` is ``execute_command`` and ``commands`` a non-transactional pipeline.
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


def commands(client: redis.Redis, batch: list[tuple[Any, ...]]) -> list[Any]:
    """Run ``batch`` on ``client`` in one round trip: one reply per command, in order; an error
    reply is returned as its ``ResponseError``, a connection failure raises."""
    if not switch.on:
        pipe = client.pipeline(transaction=False)
        for args in batch:
            pipe.execute_command(*args)  # type: ignore[no-untyped-call]
        return pipe.execute(raise_on_error=False)
    conn: Any = client.connection
    conn.send_packed_command(conn.pack_commands(batch), check_health=False)
    replies: list[Any] = []
    for _ in batch:
        try:
            replies.append(conn.read_response())
        except redis.ResponseError as exc:  # read whole: the next reply follows it
            replies.append(exc)
    return replies
