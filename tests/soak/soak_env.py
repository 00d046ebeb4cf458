"""The soak's own servers' namespaces, so it never touches what other tests use: a RabbitMQ
vhost (created and deleted with ``rabbitmqctl``), a MySQL database (created, migrated,
dropped) and a Redis database index (flushed). Every connection goes to 127.0.0.1."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import mysql.connector
import redis

from customer_manager.config import Settings
from customer_manager.storage import open_storage

HOST = "127.0.0.1"
MYSQL_PORT, REDIS_PORT, AMQP_PORT = 3306, 6379, 5672


@dataclass(frozen=True)
class Namespace:
    vhost: str
    database: str
    redis_db: int

    def amqp_url(self, port: int = AMQP_PORT) -> str:
        return f"amqp://guest:guest@{HOST}:{port}/{self.vhost}"

    def dsn(self, port: int = MYSQL_PORT) -> str:
        return f"root:@tcp({HOST}:{port})/{self.database}"

    def redis(self) -> redis.Redis:
        return redis.Redis(host=HOST, port=REDIS_PORT, db=self.redis_db)


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def _mysql(statement: str) -> None:
    conn = mysql.connector.connect(host=HOST, port=MYSQL_PORT, user="root", password="")
    try:
        conn.cursor().execute(statement)
    finally:
        conn.close()


@contextmanager
def namespace(redis_db: int) -> Iterator[Namespace]:
    """A fresh vhost, database and flushed Redis index; removed (vhost, database) after."""
    tag = secrets.token_hex(4)
    ns = Namespace(vhost=f"cm-soak-{tag}", database=f"cm_soak_{tag}", redis_db=redis_db)
    _rabbitmqctl("add_vhost", ns.vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", ns.vhost, "guest", ".*", ".*", ".*")
        _mysql(f"CREATE DATABASE {ns.database} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
        try:
            storage = open_storage(Settings(database_dsn=ns.dsn()))
            storage.migrate()
            storage.close()
            client = ns.redis()
            client.flushdb()
            client.close()
            yield ns
        finally:
            _mysql(f"DROP DATABASE IF EXISTS {ns.database}")
    finally:
        _rabbitmqctl("delete_vhost", ns.vhost)
