"""Contract for the cache backends: LocalCache and RedisCache behave alike
(docs/storage.md#redis-cache). RedisCache runs with the ``redis-direct-command`` trick (as
installed) and without it."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator

import pytest
import redis

from customer_manager.messages.records import SENTINEL
from customer_manager.storage.cache_backend import Cache, LocalCache, Lookup, RedisCache, Write
from customer_manager.tricks import redis_direct
from tests.support.metrics import count

# Not 15: daemons of the integration tests drop every record entry of DB 15 when they start.
CACHE_DB = 13


@pytest.fixture(params=["local", "redis", "redis-public"])
def cache(request: pytest.FixtureRequest) -> Iterator[Cache]:
    if request.param == "local":
        yield LocalCache()
        return
    if request.param == "redis-public":
        request.getfixturevalue("tricks_off")
    address = request.getfixturevalue("redis_address")
    backend = RedisCache(address, database=CACHE_DB)
    yield backend
    backend.close()


@pytest.fixture
def key() -> str:
    return f"customer:test-{secrets.token_hex(6)}"


def test_set_get_delete(cache: Cache, key: str) -> None:
    assert cache.get(key) is None
    cache.set(key, b'{"id":"x"}', 60)
    assert cache.get(key) == b'{"id":"x"}'
    cache.set(key, b"new", 60)
    assert cache.get(key) == b"new"
    cache.delete(key)
    assert cache.get(key) is None
    cache.ping()


def _record(tm_update: str) -> bytes:
    return json.dumps({"id": "x", "tm_update": tm_update}).encode()


def test_a_versioned_set_never_replaces_a_newer_record(cache: Cache, key: str) -> None:
    """Two writers' SETs landing in the reverse order of their commits (issue 18 #1)."""
    older, newer = "2026-01-01 00:00:00.000001", "2026-01-01 00:00:00.000002"
    cache.set(key, _record(newer), 60, version=newer)
    cache.set(key, _record(older), 60, version=older)
    assert cache.get(key) == _record(newer)
    cache.set(key, _record(SENTINEL), 60, version="")  # never updated: the first version
    assert cache.get(key) == _record(newer)
    cache.set(key, b'{"tm_update":"%s","by":"fill"}' % newer.encode(), 60, version=newer, fill=True)
    assert cache.get(key) == _record(newer)  # a fill keeps a record of the same version
    cache.set(key, _record(newer), 60, version=newer)  # a write of it: rewritten
    latest = "2026-01-01 00:00:01.000000"
    cache.set(key, _record(latest), 60, version=latest)
    assert cache.get(key) == _record(latest)
    cache.delete(key)
    cache.set(key, _record(older), 60, version=older, fill=True)
    assert cache.get(key) == _record(older)
    cache.set(key, b"not json", 60)
    cache.set(key, _record(older), 60, version=older)
    assert cache.get(key) == _record(older)
    cache.delete(key)


def test_redis_entry_has_the_go_ttl(redis_address: str, key: str) -> None:
    backend = RedisCache(redis_address, database=CACHE_DB)
    backend.set(key, b"v", 86400)
    host, port = redis_address.split(":")
    raw = redis.Redis(host=host, port=int(port), db=CACHE_DB)
    assert 86390 <= raw.ttl(key) <= 86400
    raw.delete(key)
    raw.close()
    backend.close()


def test_unreachable_redis_is_a_miss_not_an_error() -> None:
    backend = RedisCache("127.0.0.1:1", password="hunter2", timeout=0.2)
    backend.set("customer:x", b"v", 60)
    assert backend.get("customer:x") is None
    backend.delete("customer:x")
    with pytest.raises(ConnectionError) as err:
        backend.ping()
    assert "hunter2" not in str(err.value)


def test_local_cache_expires_and_evicts() -> None:
    local = LocalCache(max_entries=10)
    local.set("gone", b"v", 0)
    assert local.get("gone") is None
    for i in range(25):
        local.set(f"k{i}", b"v", 60)
    assert local.get("k24") == b"v"
    assert sum(local.get(f"k{i}") is not None for i in range(25)) <= 10


def _outage(backend: RedisCache, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Break this thread's connection; return what ends the outage."""
    connection = backend._client.connection
    real_send = connection.send_packed_command

    def broken(*args: object, **kwargs: object) -> None:
        raise redis.ConnectionError("simulated outage")

    monkeypatch.setattr(connection, "send_packed_command", broken)

    def end() -> None:
        monkeypatch.setattr(connection, "send_packed_command", real_send)
        monkeypatch.setattr("customer_manager.storage.cache_backend.DOWN_SECONDS", 0.0)
        backend._down_until = 0.0

    return end


def test_after_an_outage_no_record_entry_is_served_stale(
    redis_address: str, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its own missed write, and another replica's (which it cannot know): every record
    entry is dropped when Redis answers again; token entries stay (they never go stale)."""
    backend, other = RedisCache(redis_address, database=CACHE_DB), f"customer_accesskey:{key}"
    token = f"customer_accesskey_token:{key}"
    for name in (key, other, token):
        backend.set(name, b"old", 60)
    end = _outage(backend, monkeypatch)
    backend.set(key, b"new", 60)  # the write of an update during the outage is lost
    assert backend.get(key) is None  # marked down: a miss, the caller reads the database
    end()
    assert backend.get(key) is None and backend.get(other) is None  # dropped first
    assert backend.get(token) == b"old"
    backend.delete(token)
    backend.close()


def test_a_daemon_drops_record_entries_when_it_starts(redis_address: str, key: str) -> None:
    """A replica killed during an outage never dropped what it missed: its successor does,
    before it serves (entries written after that, by anyone, stay)."""
    writer = RedisCache(redis_address, database=CACHE_DB)
    writer.set(key, b"left by a killed replica", 60)
    successor = RedisCache(redis_address, database=CACHE_DB, flush_at_start=True)
    assert writer.get(key) is None
    writer.set(key, b"written after the start", 60)
    assert successor.get(key) == b"written after the start"
    successor.delete(key)
    writer.close()
    successor.close()


def test_get_indirect_follows_the_reference(cache: Cache, key: str) -> None:
    target = f"customer_accesskey:{key}"
    assert cache.get_indirect(key, "customer_accesskey:") is None  # no reference
    cache.set(key, key.encode(), 60)
    assert cache.get_indirect(key, "customer_accesskey:") is None  # dangling reference
    cache.set(target, b'{"id":"k"}', 60)
    assert cache.get_indirect(key, "customer_accesskey:") == b'{"id":"k"}'
    cache.delete(key)
    cache.delete(target)


def test_get_many_reads_each_lookup_in_order(cache: Cache, key: str) -> None:
    """Reads sent together (``Cache.get_many``): plain and indirect lookups, present, absent,
    dangling, answer as ``get`` and ``get_indirect`` would, in order."""
    target, prefix = f"customer_accesskey:{key}", "customer_accesskey:"
    cache.set(key, key.encode(), 60)
    cache.set(target, b'{"id":"k"}', 60)
    lookups = [
        Lookup(key),
        Lookup(f"{key}-absent"),
        Lookup(key, prefix),
        Lookup(f"{key}-absent", prefix),
        Lookup(target),
        Lookup(target, prefix),  # the value at target names nothing
    ]
    expected = [key.encode(), None, b'{"id":"k"}', None, b'{"id":"k"}', None]
    assert cache.get_many(lookups) == expected
    assert cache.get_many(lookups) == [
        cache.get_indirect(x.key, x.prefix) if x.prefix else cache.get(x.key) for x in lookups
    ]
    cache.delete(key)
    cache.delete(target)


def test_get_many_on_an_unreachable_redis_is_all_misses() -> None:
    backend = RedisCache("127.0.0.1:1", timeout=0.2)
    assert backend.get_many([Lookup("customer:x"), Lookup("t", "customer_accesskey:")]) == [
        None,
        None,
    ]


def test_set_many_stores_what_each_set_would(cache: Cache, key: str) -> None:
    """Writes sent together (``Cache.set_many``): a plain SET, a versioned write that
    replaces an older record, one that keeps out of a newer record, a fill that keeps a
    record of the same version and one that fills an empty key."""
    older, newer = "2026-01-01 00:00:00.000001", "2026-01-01 00:00:00.000002"
    plain, old, new, same, empty = (f"{key}-{n}" for n in ("plain", "old", "new", "same", "empty"))
    cache.set(old, _record(older), 60, version=older)
    cache.set(new, _record(newer), 60, version=newer)
    cache.set(same, _record(newer), 60, version=newer)
    cache.set_many(
        [
            Write(plain, b"token", 60),
            Write(old, _record(newer), 60, newer),
            Write(new, _record(older), 60, older),
            Write(same, b'{"tm_update":"%s","by":"fill"}' % newer.encode(), 60, newer, True),
            Write(empty, _record(older), 60, older, True),
            Write(old, _record(SENTINEL), 60, ""),  # the first version, after a newer one
        ]
    )
    assert [cache.get(k) for k in (plain, old, new, same, empty)] == [
        b"token",
        _record(newer),
        _record(newer),
        _record(newer),
        _record(older),
    ]
    cache.set_many([])
    for k in (plain, old, new, same, empty):
        cache.delete(k)


def _set_errors() -> float:
    return count("customer_manager_cache_errors_total", operation="set")


def test_set_many_on_an_unreachable_redis_counts_as_each_set_would() -> None:
    """The lost connection counts for the first write; Redis is then marked down, so the
    rest go as alone: a fill is skipped, every other write counted."""
    writes = [Write("customer:x", b"v", 60, "1"), Write("customer:y", b"v", 60, "1", True)]
    writes += [Write("customer:z", b"v", 60)]
    before = _set_errors()
    alone = RedisCache("127.0.0.1:1", timeout=0.2)
    for w in writes:
        alone.set(w.key, w.value, w.ttl, version=w.version, fill=w.fill)
    each = _set_errors() - before
    RedisCache("127.0.0.1:1", timeout=0.2).set_many(writes)
    assert _set_errors() - before - each == each == 2


def test_set_many_counts_an_error_reply_and_stores_the_rest(redis_address: str, key: str) -> None:
    """A write Redis answers with an error (its script meets a list) is counted as a failed
    ``set``; the writes sent with it are stored."""
    backend = RedisCache(redis_address, database=CACHE_DB)
    host, port = redis_address.rsplit(":", 1)
    raw = redis.Redis(host=host, port=int(port), db=CACHE_DB)
    listed, stored = f"{key}-list", f"{key}-ok"
    raw.rpush(listed, "x")
    try:
        before = _set_errors()
        backend.set_many([Write(listed, b"v", 60, "1"), Write(stored, _record("1"), 60, "1")])
        assert _set_errors() - before == 1
        assert raw.get(stored) == _record("1")
    finally:
        raw.delete(listed, stored)
        raw.close()
        backend.close()


@pytest.mark.parametrize("tricks", ["on", "off"])
def test_scripts_run_on_a_redis_that_lost_them(
    redis_address: str, key: str, tricks: str, request: pytest.FixtureRequest
) -> None:
    """The scripts go by SHA1 (EVALSHA); a Redis that does not hold them (restarted, or
    SCRIPT FLUSH) answers NOSCRIPT and gets the script itself, for every script."""
    if tricks == "off":
        request.getfixturevalue("tricks_off")
    backend = RedisCache(redis_address, database=CACHE_DB)
    host, port = redis_address.rsplit(":", 1)
    raw = redis.Redis(host=host, port=int(port), db=CACHE_DB)
    target = f"customer_accesskey:{key}"
    try:
        for _ in range(2):  # the second round finds them loaded by the first
            raw.script_flush()
            backend.set(key, key.encode(), 60)
            backend.set(target, b'{"tm_update":"2"}', 60, version="2")
            assert backend.get_indirect(key, "customer_accesskey:") == b'{"tm_update":"2"}'
            raw.script_flush()  # read together: the lookup Redis answers NOSCRIPT runs alone
            together = [Lookup(key), Lookup(key, "customer_accesskey:")]
            assert backend.get_many(together) == [key.encode(), b'{"tm_update":"2"}']
            backend.set(target, b'{"tm_update":"1"}', 60, version="1")  # older: kept out
            assert raw.get(target) == b'{"tm_update":"2"}'
            raw.script_flush()  # written together: each write answered NOSCRIPT runs alone
            newest = [Write(target, b'{"tm_update":"3"}', 60, "3")]
            backend.set_many([*newest, Write(key, b"k", 60), Write(target, b"{}", 60, "1")])
            assert raw.get(target) == b'{"tm_update":"3"}' and raw.get(key) == b"k"
            backend.set(key, key.encode(), 60)
            backend.set(target, b'{"tm_update":"2"}', 60)
            backend.release(key, key.encode())
            assert raw.get(key) is None
        info = raw.info("commandstats")
        assert info["cmdstat_evalsha"]["calls"] > 0
    finally:
        raw.delete(key, target)
        raw.close()
        backend.close()


def test_direct_commands_get_the_raw_replies(redis_address: str, key: str) -> None:
    """What the ``redis-direct-command`` trick relies on: a single-connection client has its
    ``connection``, which packs, sends and reads a command; the raw replies of the commands
    the cache sends; an error reply raises ResponseError; a dead socket raises ConnectionError
    and the next command reconnects."""
    redis_direct.enable()
    host, port = redis_address.rsplit(":", 1)
    client = redis.Redis(host=host, port=int(port), db=15, single_connection_client=True)
    try:
        assert redis_direct.command(client, "SET", key, b"v", "EX", 60, "NX") == b"OK"
        assert redis_direct.command(client, "SET", key, b"w", "EX", 60, "NX") is None
        assert redis_direct.command(client, "GET", key) == b"v"
        script = "return redis.call('GET', KEYS[1])"
        assert redis_direct.command(client, "EVAL", script, 1, key) == b"v"
        assert redis_direct.command(client, "DEL", key) == 1
        assert redis_direct.command(client, "GET", key) is None
        with pytest.raises(redis.ResponseError):
            redis_direct.command(client, "INCR", key, "not-an-argument")
        client.connection._sock.close()  # type: ignore[union-attr]
        with pytest.raises(redis.ConnectionError):
            redis_direct.command(client, "GET", key)
        assert redis_direct.command(client, "GET", key) is None
    finally:
        client.close()
