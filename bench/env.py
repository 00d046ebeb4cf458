"""The bench's private world: a RabbitMQ vhost, a fresh MySQL database, Redis DB 14.

``BenchEnv`` creates all three (vhost via ``rabbitmqctl``), applies the schema with the
migrate command, and removes everything again on exit, also after errors and Ctrl-C.
Only 127.0.0.1 is ever touched by default.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import mysql.connector
import redis

BIN = Path(sys.executable).parent
_DSN = re.compile(
    r"^(?P<user>[^:@]*)(?::(?P<password>[^@]*))?@tcp\((?P<host>[^:)]+)(?::(?P<port>\d+))?\)/"
)


@dataclasses.dataclass
class EnvOptions:
    mysql_dsn: str = "root:@tcp(127.0.0.1:3306)/"
    redis_address: str = "127.0.0.1:6379"
    redis_db: int = 14
    amqp_base: str = "amqp://guest:guest@127.0.0.1:5672"
    vhost: str = ""  # empty: create a temporary vhost; otherwise use (and keep) this one
    migrate_cmd: list[str] = dataclasses.field(
        default_factory=lambda: [str(BIN / "customer-control"), "db", "migrate"]
    )


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


class BenchEnv:
    """Context manager; ``run_id`` names the database and the vhost."""

    def __init__(self, opts: EnvOptions, run_id: str) -> None:
        self.opts, self.run_id = opts, run_id
        match = _DSN.match(opts.mysql_dsn)
        if not match:
            raise ValueError(
                f"--mysql-dsn must look like user:pass@tcp(host:port)/, not {opts.mysql_dsn!r}"
            )
        self.mysql = {
            "user": match["user"],
            "password": match["password"] or "",
            "host": match["host"],
            "port": int(match["port"] or 3306),
        }
        self.database = f"cm_bench_{run_id}"
        self.dsn = opts.mysql_dsn.split(")/", 1)[0] + ")/" + self.database
        self.vhost = opts.vhost or f"cm-bench-{run_id}"
        self.own_vhost = not opts.vhost
        host, _, port = opts.redis_address.partition(":")
        self.redis = redis.Redis(host=host, port=int(port or 6379), db=opts.redis_db)
        self._made_db = self._made_vhost = False

    @property
    def amqp_url(self) -> str:
        return f"{self.opts.amqp_base}/{urllib.parse.quote(self.vhost, safe='')}"

    def daemon_env(self, metrics_port: int) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DATABASE_DSN=self.dsn,
            RABBITMQ_ADDRESS=self.amqp_url,
            REDIS_ADDRESS=self.opts.redis_address,
            REDIS_DATABASE=str(self.opts.redis_db),
            PROMETHEUS_LISTEN_ADDRESS=f"127.0.0.1:{metrics_port}",
            PROMETHEUS_ENDPOINT="/metrics",
        )
        return env

    def _sql(self, statement: str) -> None:
        conn = mysql.connector.connect(**self.mysql)
        try:
            conn.cursor().execute(statement)
        finally:
            conn.close()

    def __enter__(self) -> BenchEnv:
        try:
            if self.own_vhost:
                if not shutil.which("rabbitmqctl"):
                    raise RuntimeError(
                        "rabbitmqctl not found: pass --vhost NAME of an existing vhost"
                    )
                _rabbitmqctl("add_vhost", self.vhost)
                self._made_vhost = True
                _rabbitmqctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")
            self._sql(f"CREATE DATABASE `{self.database}`")
            self._made_db = True
            self.redis.flushdb()
            migrated = subprocess.run(
                self.opts.migrate_cmd,
                env={
                    **os.environ,
                    "DATABASE_DSN": self.dsn,
                    "REDIS_ADDRESS": self.opts.redis_address,
                    "REDIS_DATABASE": str(self.opts.redis_db),
                },
                capture_output=True,
                text=True,
                timeout=120,
            )
            if migrated.returncode != 0:
                raise RuntimeError(f"bench: db migrate failed: {migrated.stderr.strip()}")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Best effort: every step runs even if an earlier one fails."""
        if self._made_db:
            try:
                self._sql(f"DROP DATABASE IF EXISTS `{self.database}`")
                self._made_db = False
            except Exception as exc:
                print(f"bench: could not drop {self.database}: {exc}", file=sys.stderr)
        try:
            self.redis.flushdb()
            self.redis.close()
        except Exception as exc:
            print(f"bench: could not flush Redis DB {self.opts.redis_db}: {exc}", file=sys.stderr)
        if self._made_vhost:
            try:
                _rabbitmqctl("delete_vhost", self.vhost)
                self._made_vhost = False
            except Exception as exc:
                print(f"bench: could not delete vhost {self.vhost}: {exc}", file=sys.stderr)


def server_versions(env: BenchEnv) -> dict[str, str]:
    """MariaDB/MySQL and Redis versions, for the machine section of the report."""
    versions: dict[str, str] = {}
    try:
        conn = mysql.connector.connect(**env.mysql)
        cursor = conn.cursor()
        cursor.execute("SELECT VERSION()")
        row: Any = cursor.fetchone()
        versions["mysql"] = str(row[0]) if row else "?"
        conn.close()
    except Exception as exc:
        versions["mysql"] = f"? ({exc})"
    try:
        info = env.redis.info("server")
        versions["redis"] = str(info.get("redis_version", "?"))
    except Exception as exc:
        versions["redis"] = f"? ({exc})"
    return versions
