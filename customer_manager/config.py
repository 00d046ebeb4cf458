"""Settings (frozen) and the go-sql-driver DSN parser (docs/configuration.md#settings).

Only ``main.py`` and ``cli.py`` read the environment; everything else receives a Settings.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import parse_qsl, unquote

import msgspec

from customer_manager.messages import codec

DEFAULT_SQLITE_PATH = "customer-manager.sqlite3"
DEFAULT_RABBITMQ = "amqp://guest:guest@localhost:5672"
DEFAULT_EMAIL_VERIFY_BASE_URL = "https://api.voipbin.net"
DEFAULT_LAST_USED_INTERVAL = 60
MAX_LAST_USED_INTERVAL = 86400


# Unacked requests per replica. Measured (bench/RESULTS.md): at 32 the consumer hands the
# router bigger batches and the daemon spends less CPU per request than at 16.
DEFAULT_PREFETCH = 32


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything the system is built from. Empty ``database_dsn`` means SQLite at
    ``sqlite_path``; empty ``redis_address`` means the in-process cache; empty
    ``rabbitmq_address`` means no broker (events stay in the outbox)."""

    database_dsn: str = ""
    sqlite_path: str = DEFAULT_SQLITE_PATH
    redis_address: str = ""
    redis_password: str = ""
    redis_database: int = 0
    rabbitmq_address: str = ""
    prometheus_endpoint: str = "/metrics"
    prometheus_listen_address: str = ":2112"
    agent_check: Literal["required", "off"] = "required"
    billing_account_check: bool = False
    rpc_timeout: float = 3.0
    # handlers never block: 8 workers per pool gave the same throughput, 0.3 MiB more RSS
    customer_workers: int = 2
    accesskey_workers: int = 2
    storage_workers: int = 4
    cache_workers: int = 2
    prefetch: int = DEFAULT_PREFETCH
    instance_id: str = ""
    expand_plain_tokens: bool = False  # takeover expand phase: new keys keep a plain token
    email_verify_base_url: str = DEFAULT_EMAIL_VERIFY_BASE_URL
    # seconds between two tm_last_used writes of one key (0: not tracked)
    accesskey_last_used_interval: int = DEFAULT_LAST_USED_INTERVAL
    # docs/configuration.md#cpu-placement: every thread on one CPU that follows the load
    cpu_placement: Literal["one", "any"] = "one"
    # docs/profiles.md: the wire of the seed-era Go service, or of today's VoIPbin
    wire_profile: Literal["seed", "current"] = "seed"


def check_base_url(url: str) -> str:
    """docs/lifecycle.md#settings: EMAIL_VERIFY_BASE_URL must be an absolute http(s) URL (used
    verbatim)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"EMAIL_VERIFY_BASE_URL must be an absolute http(s) URL, not {url[:100]!r}"
        )
    return url


class MySQLParams(msgspec.Struct, frozen=True, kw_only=True):
    """Connection parameters for mysql-connector-python, from a go-sql-driver DSN."""

    user: str = "root"
    password: str = ""
    host: str = "127.0.0.1"
    port: int = 3306
    unix_socket: str = ""
    database: str = ""
    params: dict[str, str] = {}

    def safe(self) -> str:
        """A description for logs and error messages: never the password."""
        where = self.unix_socket or f"{self.host}:{self.port}"
        return f"{self.user}@{where}/{self.database}"


_DSN = re.compile(
    r"^(?:(?P<user>[^:@]*)(?::(?P<password>.*))?@)?"
    r"(?:(?P<net>[a-z0-9]+)(?:\((?P<addr>[^)]*)\))?)?"
    r"/(?P<db>[^?]*)(?:\?(?P<params>.*))?$"
)


def parse_dsn(dsn: str) -> MySQLParams:
    """Parse ``user:pass@tcp(host:port)/dbname?k=v`` (go-sql-driver/mysql format)."""
    match = _DSN.match(dsn)
    if match is None:
        raise ValueError("DATABASE_DSN is not a go-sql-driver DSN (user:pass@tcp(host:port)/db)")
    net, addr = match["net"] or "tcp", match["addr"] or ""
    if net not in {"tcp", "tcp4", "tcp6", "unix"}:
        raise ValueError(f"DATABASE_DSN names an unknown network {net[:16]!r} (use tcp(host:port))")
    host, port, sock = "127.0.0.1", 3306, ""
    if net == "unix":
        sock = addr or "/tmp/mysql.sock"
    elif addr:
        host, _, port_text = addr.rpartition(":") if ":" in addr else (addr, "", "3306")
        host = host.strip("[]") or "127.0.0.1"
        if not (port_text or "3306").isdigit() or not 0 < int(port_text or 3306) <= 65535:
            raise ValueError(f"DATABASE_DSN has an invalid port {port_text[:16]!r}")
        port = int(port_text or 3306)
    return MySQLParams(
        user=match["user"] or "root",
        password=match["password"] or "",
        host=host,
        port=port,
        unix_socket=sock,
        database=unquote(match["db"]),
        params=dict(parse_qsl(match["params"] or "")),
    )


SQLITE_SCHEME = "sqlite:"


def embedded_store(dsn: str, sqlite_path: str) -> tuple[str, str]:
    """``(database_dsn, sqlite_path)`` with a ``sqlite:PATH`` DSN turned into the embedded
    store's path (an explicit choice of the SQLite store, as the daemon requires)."""
    if dsn.startswith(SQLITE_SCHEME):
        return "", dsn[len(SQLITE_SCHEME) :] or DEFAULT_SQLITE_PATH
    return dsn, sqlite_path


def check(settings: Settings) -> None:
    """Raise ValueError (one line naming the setting) for a setting that cannot work."""
    if settings.database_dsn:
        parse_dsn(settings.database_dsn)
    check_base_url(settings.email_verify_base_url)
    if not 0 <= settings.accesskey_last_used_interval <= MAX_LAST_USED_INTERVAL:
        raise ValueError(
            f"ACCESSKEY_LAST_USED_INTERVAL must be 0 (off) to {MAX_LAST_USED_INTERVAL} seconds,"
            f" not {settings.accesskey_last_used_interval}"
        )
    codec.check(settings.wire_profile)
    if settings.wire_profile == "current" and settings.expand_plain_tokens:
        raise ValueError("EXPAND_PLAIN_TOKENS is for seed-profile takeovers; WIRE_PROFILE=current")
    _host, colon, port = settings.redis_address.rpartition(":")
    if colon and (not port.isdigit() or not 0 < int(port) <= 65535):
        raise ValueError(f"REDIS_ADDRESS {settings.redis_address[:64]!r} is not host:port")


def mask_url(url: str) -> str:
    """An AMQP/Redis URL with its password replaced by ``***`` (docs/configuration.md#logs)."""
    return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)
