"""Cache backends (docs/storage.md#redis-cache): RedisCache (production) and LocalCache
(embedded default).

Both are thread-safe (redis-py's connection pool; a lock for the dict), so one instance is
shared by every CacheActor. A cache never raises from get/set/delete: every backend error is
swallowed, logged at most briefly (never with the password) and counted, and a read then
behaves as a miss. ``ping`` raises, for startup and readiness checks.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from customer_manager import metrics
from customer_manager.errors import Unavailable
from customer_manager.tricks import redis_direct

log = logging.getLogger(__name__)

TTL_SECONDS = 86400
DOWN_SECONDS = 1.0  # after a Redis failure, skip Redis this long instead of waiting again
_GET_INDIRECT = (
    "local target = redis.call('GET', KEYS[1]) "
    "if target then return redis.call('GET', ARGV[1] .. target) end "
    "return false"
)
_RELEASE = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
)
MAX_MISSED = 10_000  # missed writes remembered; beyond that, recovery drops every entry
# SET unless the cached record is newer: its ``tm_update`` (the sentinel or null counts as
# the first version, "") compared with ARGV[2], the version of the record being written
# (records.version); a fill (ARGV[4] = "1") also keeps a record of the same version (it may
# be a Go instance's, which still carries the plain token). A value that is not a JSON
# object is overwritten. A ``current``-profile time (``2026-08-22T10:15:30.12Z``, UTC) is
# first brought to the internal form (``2026-08-22 10:15:30.120000``), which sorts.
_SET_NEWER = (
    "local cur = redis.call('GET', KEYS[1]) "
    "if cur then "
    "local ok, old = pcall(cjson.decode, cur) "
    "if ok and type(old) == 'table' then "
    "local v = old['tm_update'] "
    "if type(v) ~= 'string' or v >= '9999' then v = '' "
    "elseif string.sub(v, 11, 11) == 'T' and string.sub(v, -1) == 'Z' then "
    "v = string.sub(v, 1, 10) .. ' ' .. string.sub(v, 12, -2) "
    "if #v == 19 then v = v .. '.' end "
    "v = v .. string.rep('0', 26 - #v) end "
    "if v > ARGV[2] or (v == ARGV[2] and ARGV[4] == '1') then return 0 end "
    "end end "
    "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3]) "
    "return 1"
)
_SHA1 = {
    script: hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()
    for script in (_GET_INDIRECT, _RELEASE, _SET_NEWER)
}
# The entries dropped after an outage: the records (a token's key id never changes).
RECORD_PATTERNS = ("customer:*", "customer_accesskey:*")


class Lookup(NamedTuple):
    """A read of ``get_many``: the value at ``key``, or with a ``prefix`` the value at
    ``prefix + <the value at key>`` (``get_indirect``)."""

    key: str
    prefix: str = ""


class Write(NamedTuple):
    """A write of ``set_many``: the arguments of one ``set``."""

    key: str
    value: bytes
    ttl: int
    version: str | None = None
    fill: bool = False


class Cache(Protocol):
    """Bytes by key with a TTL."""

    def get(self, key: str) -> bytes | None: ...
    def get_indirect(self, key: str, prefix: str) -> bytes | None:
        """The value at ``prefix + <the value at key>``, or None (one round trip)."""
        ...

    def get_many(self, lookups: Sequence[Lookup]) -> list[bytes | None]:
        """``get`` (or ``get_indirect`` for a lookup with a prefix) of each, in one round
        trip."""
        ...

    def set(
        self, key: str, value: bytes, ttl: int, *, version: str | None = None, fill: bool = False
    ) -> None:
        """Store ``value``. With ``version`` (a record's, see ``records.version``) keep an
        existing record whose version is newer, so writes landing out of commit order never
        leave the older one. ``fill``: a read filling the cache, which may be skipped."""
        ...

    def set_many(self, writes: Sequence[Write]) -> None:
        """``set`` of each, in one round trip; each ends as it would alone (but for an error
        reply: the rest of the batch is stored already)."""
        ...

    def delete(self, key: str) -> None: ...
    def claim(self, key: str, value: bytes, ttl: int, *, only_if_absent: bool = False) -> bool:
        """SET (NX when ``only_if_absent``) that reports: True if stored. Raises
        ``Unavailable`` when the backend fails (unlike ``set``: the lifecycle's tokens and
        locks, docs/lifecycle.md#redis-keys, must not pass silently)."""
        ...

    def read(self, key: str) -> bytes | None:
        """GET that raises ``Unavailable`` when the backend fails."""
        ...

    def release(self, key: str, value: bytes) -> None:
        """Delete ``key`` only while it still holds ``value`` (a lock's owner); errors are
        swallowed (the lock expires)."""
        ...

    def ping(self) -> None: ...
    def close(self) -> None: ...


class LocalCache:
    """An in-process dict with per-key expiry (for the embedded default and tests;
    docs/storage.md#in-process-cache)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, tuple[float, bytes, str | None]] = {}
        self._max = max_entries

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            if item[0] <= time.monotonic():
                del self._data[key]
                return None
            return item[1]

    def get_indirect(self, key: str, prefix: str) -> bytes | None:
        target = self.get(key)
        return None if target is None else self.get(prefix + target.decode(errors="replace"))

    def get_many(self, lookups: Sequence[Lookup]) -> list[bytes | None]:
        return [self.get_indirect(*x) if x.prefix else self.get(x.key) for x in lookups]

    def set(
        self, key: str, value: bytes, ttl: int, *, version: str | None = None, fill: bool = False
    ) -> None:
        moment = time.monotonic()
        with self._lock:
            current = self._data.get(key)
            if _keeps(current, version, fill, moment):
                return
            if len(self._data) >= self._max and key not in self._data:
                self._evict(moment)
            self._data[key] = (moment + ttl, value, version)

    def set_many(self, writes: Sequence[Write]) -> None:
        for w in writes:
            self.set(w.key, w.value, w.ttl, version=w.version, fill=w.fill)

    def _evict(self, moment: float) -> None:
        expired = [k for k, (until, _, _) in self._data.items() if until <= moment]
        for key in expired or list(self._data)[: max(1, self._max // 10)]:
            del self._data[key]

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def claim(self, key: str, value: bytes, ttl: int, *, only_if_absent: bool = False) -> bool:
        with self._lock:
            if only_if_absent and self._live(key):
                return False
        self.set(key, value, ttl)
        return True

    def read(self, key: str) -> bytes | None:
        return self.get(key)

    def release(self, key: str, value: bytes) -> None:
        with self._lock:
            if self._live(key) and self._data[key][1] == value:
                del self._data[key]

    def _live(self, key: str) -> bool:
        item = self._data.get(key)
        return item is not None and item[0] > time.monotonic()

    def ping(self) -> None:
        return None

    def close(self) -> None:
        with self._lock:
            self._data.clear()


def _newer_args(w: Write) -> tuple[Any, ...]:
    """The keys and arguments of the SET-if-newer script for ``w``."""
    return (1, w.key, w.value, w.version, w.ttl, "1" if w.fill else "0")


def _keeps(
    current: tuple[float, bytes, str | None] | None, version: str | None, fill: bool, at: float
) -> bool:
    """True if the live entry ``current`` holds a record newer than ``version`` (or, for a
    fill, as new)."""
    if current is None or version is None or current[0] <= at or current[2] is None:
        return False
    return current[2] > version or (fill and current[2] == version)


class RedisCache:
    """Redis via redis-py. Keys and values as the Go service writes them
    (docs/storage.md#keys-and-values).

    Fails fast: no client retries, and after a failure Redis is skipped for DOWN_SECONDS,
    so an outage costs a request nothing but cache misses. A write (set or delete) that
    could not reach Redis leaves a possibly stale entry behind, and so may the writes of
    every other replica during the outage: so after any failure, every record entry is
    dropped before the cache is used again (a cold cache, never a stale one). A daemon also
    drops them when it starts (``flush_at_start``): a replica killed during an outage
    cannot drop what it missed itself.

    Each thread (in practice each CacheActor) gets its own single-connection client: no pool
    checkout and health peek per command (55 instead of 70 µs of CPU per GET here); the hot
    commands go straight to its connection (``customer_manager/tricks/redis_direct.py``)."""

    def __init__(
        self,
        address: str,
        password: str = "",
        database: int = 0,
        timeout: float = 1.0,
        *,
        flush_at_start: bool = False,
    ) -> None:
        host, _, port = address.rpartition(":") if ":" in address else (address, "", "6379")
        self._options: dict[str, Any] = {
            "host": host.strip("[]") or "127.0.0.1",
            "port": int(port or 6379),
            "password": password or None,
            "db": database,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0),
            "single_connection_client": True,
            # the version CLIENT SETINFO sends, given so that redis-py does not look it up with
            # importlib.metadata (tricks/redis_lazy.py: the daemon need not load that)
            "driver_info": redis.DriverInfo(lib_version=redis.__version__),
        }
        self._local = threading.local()
        self._clients: list[redis.Redis] = []
        self.address = address
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._flush_pending = flush_at_start
        if flush_at_start:
            self._usable()  # now, before serving (if Redis is down: once it is back)

    def get(self, key: str) -> bytes | None:
        if not self._usable():
            return None
        try:
            value = self._command("GET", key)
        except redis.RedisError as exc:
            self._failed("get", exc)
            return None
        return value if isinstance(value, bytes) else None

    def get_indirect(self, key: str, prefix: str) -> bytes | None:
        """Both GETs in one round trip, as a server-side script (standalone Redis)."""
        if not self._usable():
            return None
        try:
            value = self._script(_GET_INDIRECT, 1, key, prefix)
        except redis.RedisError as exc:
            self._failed("get", exc)
            return None
        return value if isinstance(value, bytes) else None

    def get_many(self, lookups: Sequence[Lookup]) -> list[bytes | None]:
        """The GETs and scripts of ``lookups`` sent together, read in order (trick
        ``redis-direct-command``); a lookup whose script Redis lacks runs alone after."""
        if not self._usable():
            return [None] * len(lookups)
        batch = [
            ("EVALSHA", _SHA1[_GET_INDIRECT], 1, x.key, x.prefix) if x.prefix else ("GET", x.key)
            for x in lookups
        ]
        try:
            replies = redis_direct.commands(self._client, batch)
        except redis.RedisError as exc:
            self._failed("get", exc)
            return [None] * len(lookups)
        found: list[bytes | None] = []
        failed: redis.RedisError | None = None
        for lookup, reply in zip(lookups, replies, strict=True):
            if isinstance(reply, redis.exceptions.NoScriptError):
                found.append(self.get_indirect(*lookup))
            elif isinstance(reply, redis.RedisError):
                failed = reply
                found.append(None)
            else:
                found.append(reply if isinstance(reply, bytes) else None)
        if failed is not None:
            self._failed("get", failed)  # once for the batch
        return found

    def set(
        self, key: str, value: bytes, ttl: int, *, version: str | None = None, fill: bool = False
    ) -> None:
        if fill and not self._usable():
            return  # a read filling the cache: nothing is lost by skipping it
        try:
            if not self._usable():
                raise redis.ConnectionError("redis marked down")
            if version is None:
                self._command("SET", key, value, "EX", ttl)
            else:
                self._script(_SET_NEWER, *_newer_args(Write(key, value, ttl, version, fill)))
        except redis.RedisError as exc:
            self._failed("set", exc)

    def set_many(self, writes: Sequence[Write]) -> None:
        """The SETs and SET-if-newer scripts of ``writes`` sent together, their replies read
        in order (as ``get_many``). Each write ends as it would alone (except that after an
        error reply the rest of the batch is stored already): one answered NOSCRIPT
        runs again alone (``set``, which loads the script), an error reply counts as a
        failed ``set``, and after a lost connection (counted once, for the first write) the
        rest go as ``set`` would then: Redis is marked down, so fills are skipped and the
        others counted."""
        if not self._usable():
            self._each_alone(writes)
            return
        batch = [
            ("SET", w.key, w.value, "EX", w.ttl)
            if w.version is None
            else ("EVALSHA", _SHA1[_SET_NEWER], *_newer_args(w))
            for w in writes
        ]
        try:
            replies = redis_direct.commands(self._client, batch)
        except redis.RedisError as exc:
            self._failed("set", exc)  # the first write's failure: Redis is marked down now
            self._each_alone(writes[1:])
            return
        for w, reply in zip(writes, replies, strict=True):
            if isinstance(reply, redis.exceptions.NoScriptError):
                self._each_alone([w])  # as get_many: alone, which loads the script
            elif isinstance(reply, redis.RedisError):
                self._failed("set", reply)

    def _each_alone(self, writes: Sequence[Write]) -> None:
        for w in writes:
            self.set(w.key, w.value, w.ttl, version=w.version, fill=w.fill)

    def delete(self, key: str) -> None:
        try:
            if not self._usable():
                raise redis.ConnectionError("redis marked down")
            self._command("DEL", key)
        except redis.RedisError as exc:
            self._failed("delete", exc)

    def claim(self, key: str, value: bytes, ttl: int, *, only_if_absent: bool = False) -> bool:
        stored = self._strict("SET", key, value, "EX", ttl, *(["NX"] if only_if_absent else []))
        return stored is not None

    def read(self, key: str) -> bytes | None:
        value = self._strict("GET", key)
        return value if isinstance(value, bytes) else None

    def release(self, key: str, value: bytes) -> None:
        try:
            self._script(_RELEASE, 1, key, value)
        except redis.RedisError as exc:
            self._failed("delete", exc)

    def _strict(self, *args: Any) -> Any:
        try:
            if not self._usable():
                raise redis.ConnectionError("redis marked down")
            return self._command(*args)
        except redis.RedisError as exc:
            self._failed(str(args[0]).lower(), exc)
            raise Unavailable(f"redis at {self.address} is unavailable") from None

    def ping(self) -> None:
        """Raise ConnectionError if Redis does not answer (message without secrets)."""
        try:
            self._client.ping()
        except redis.RedisError as exc:
            raise ConnectionError(f"redis at {self.address}: {type(exc).__name__}") from None

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()

    def _command(self, *args: Any) -> Any:
        """One command on this thread's connection (trick ``redis-direct-command``: without
        redis-py's per-command layers). An error reply raises ResponseError."""
        return redis_direct.command(self._client, *args)

    def _script(self, script: str, *args: Any) -> Any:
        """Run a script by its SHA1 (EVALSHA: Redis neither receives nor hashes the body, 2.4
        against 7.7 µs of its CPU per call here); a Redis that does not have it yet (started,
        restarted or flushed since) gets it with EVAL, which also keeps it."""
        try:
            return self._command("EVALSHA", _SHA1[script], *args)
        except redis.exceptions.NoScriptError:
            return self._command("EVAL", script, *args)

    @property
    def _client(self) -> redis.Redis:
        """This thread's client, created on first use."""
        client: redis.Redis | None = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = redis.Redis(**self._options)
            with self._lock:
                self._clients.append(client)
        return client

    def _usable(self) -> bool:
        """False while marked down; on the way back (or at start, when asked to),
        first drop every record entry."""
        with self._lock:
            if time.monotonic() < self._down_until:
                return False
            if not self._flush_pending:
                return True
            self._flush_pending = False
        try:
            self._drop_records()
        except redis.RedisError as exc:
            with self._lock:
                self._flush_pending = True
            self._failed("recover", exc)
            return False
        return True

    def _drop_records(self) -> None:
        client, dropped = self._client, 0
        for pattern in RECORD_PATTERNS:
            batch: list[Any] = []
            for found in client.scan_iter(match=pattern, count=1000):
                batch.append(found)
                if len(batch) >= 1000:
                    dropped += client.delete(*batch)
                    batch = []
            dropped += client.delete(*batch) if batch else 0
        log.warning(
            "redis at %s: dropped %d record entries (possibly stale)", self.address, dropped
        )

    def _failed(self, operation: str, exc: Exception) -> None:
        with self._lock:
            self._down_until = time.monotonic() + DOWN_SECONDS
            self._flush_pending = True
        metrics.cache_errors_total.labels(operation).inc()
        log.warning("redis %s failed at %s: %s", operation, self.address, type(exc).__name__)
