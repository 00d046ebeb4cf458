"""Cache backends (SPEC A §8): RedisCache (production) and LocalCache (embedded default).

Both are thread-safe (redis-py's connection pool; a lock for the dict), so one instance is
shared by every CacheActor. A cache never raises from get/set/delete: every backend error is
swallowed, logged at most briefly (never with the password) and counted, and a read then
behaves as a miss. ``ping`` raises, for startup and readiness checks.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

import redis

from customer_manager import metrics

log = logging.getLogger(__name__)

TTL_SECONDS = 86400


class Cache(Protocol):
    """Bytes by key with a TTL."""

    def get(self, key: str) -> bytes | None: ...
    def set(self, key: str, value: bytes, ttl: int, *, only_if_absent: bool = False) -> None:
        """Store ``value``; with ``only_if_absent`` keep an existing value (SET NX)."""
        ...

    def delete(self, key: str) -> None: ...
    def ping(self) -> None: ...
    def close(self) -> None: ...


class LocalCache:
    """An in-process dict with per-key expiry (for the embedded default, B.4, and tests)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, tuple[float, bytes]] = {}
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

    def set(self, key: str, value: bytes, ttl: int, *, only_if_absent: bool = False) -> None:
        moment = time.monotonic()
        with self._lock:
            current = self._data.get(key)
            if only_if_absent and current is not None and current[0] > moment:
                return
            if len(self._data) >= self._max and key not in self._data:
                self._evict(moment)
            self._data[key] = (moment + ttl, value)

    def _evict(self, moment: float) -> None:
        expired = [k for k, (until, _) in self._data.items() if until <= moment]
        for key in expired or list(self._data)[: max(1, self._max // 10)]:
            del self._data[key]

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def ping(self) -> None:
        return None

    def close(self) -> None:
        with self._lock:
            self._data.clear()


class RedisCache:
    """Redis via redis-py. Keys and values as the Go service writes them (SPEC A §8)."""

    def __init__(
        self, address: str, password: str = "", database: int = 0, timeout: float = 1.0
    ) -> None:
        host, _, port = address.rpartition(":") if ":" in address else (address, "", "6379")
        self._client = redis.Redis(
            host=host.strip("[]") or "127.0.0.1",
            port=int(port or 6379),
            password=password or None,
            db=database,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        self.address = address

    def get(self, key: str) -> bytes | None:
        try:
            value = self._client.get(key)
        except redis.RedisError as exc:
            self._failed("get", exc)
            return None
        return value if isinstance(value, bytes) else None

    def set(self, key: str, value: bytes, ttl: int, *, only_if_absent: bool = False) -> None:
        try:
            self._client.set(key, value, ex=ttl, nx=only_if_absent)
        except redis.RedisError as exc:
            self._failed("set", exc)

    def delete(self, key: str) -> None:
        try:
            self._client.delete(key)
        except redis.RedisError as exc:
            self._failed("delete", exc)

    def ping(self) -> None:
        """Raise ConnectionError if Redis does not answer (message without secrets)."""
        try:
            self._client.ping()
        except redis.RedisError as exc:
            raise ConnectionError(f"redis at {self.address}: {type(exc).__name__}") from None

    def close(self) -> None:
        self._client.close()

    def _failed(self, operation: str, exc: Exception) -> None:
        metrics.cache_errors_total.labels(operation).inc()
        log.warning("redis %s failed at %s: %s", operation, self.address, type(exc).__name__)
