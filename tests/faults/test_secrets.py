"""Scenario 8 (docs/configuration.md#logs): a full flow with a MySQL user that has a
password, a Redis that requires one, and an access-key token. No daemon log line, no event on
the fanout exchange and no value cached in Redis contains either password or the token (only
its prefix)."""

from __future__ import annotations

import secrets
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import mysql.connector
import pytest
import redis

from customer_manager.config import parse_dsn
from tests.support.amqp import Client, EventTap, consumer_count
from tests.support.faults import Replica, http_get, replica_env, unique_email
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def mysql_user(migrated_dsn: str) -> Iterator[tuple[str, str]]:
    """A MySQL user with a password, granted the test database; dropped afterwards."""
    user, password = f"cm_secret_{secrets.token_hex(3)}", f"Db-{secrets.token_hex(8)}-pw!"
    database = parse_dsn(migrated_dsn).database
    root = mysql.connector.connect(host="127.0.0.1", port=3306, user="root", password="")
    cursor = root.cursor()
    hosts = ("%", "localhost", "127.0.0.1")
    try:
        for host in hosts:
            cursor.execute("CREATE USER %s@%s IDENTIFIED BY %s", (user, host, password))
            cursor.execute(f"GRANT ALL ON `{database}`.* TO %s@%s", (user, host))
        yield f"{user}:{password}@tcp(127.0.0.1:3306)/{database}", password
    finally:
        for host in hosts:
            cursor.execute("DROP USER IF EXISTS %s@%s", (user, host))
        root.close()


@pytest.fixture
def redis_with_password(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A second redis-server on a free port with ``--requirepass``, stopped afterwards."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    password = f"Rd-{secrets.token_hex(8)}"
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    args += ["--appendonly", "no", "--dir", str(tmp_path), "--requirepass", password]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(host="127.0.0.1", port=port, password=password)
    try:

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_until(up, 10, "the password-protected redis-server did not start")
        yield f"127.0.0.1:{port}", password
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)


def test_no_secret_in_logs_events_or_cache(
    client: Client,
    events: EventTap,
    mysql_user: tuple[str, str],
    redis_with_password: tuple[str, str],
    amqp_url: str,
    tmp_path: Path,
    report: Callable[..., None],
) -> None:
    dsn, db_password = mysql_user
    redis_address, redis_password = redis_with_password
    env = replica_env(
        amqp_url, dsn, redis_address, 0, REDIS_PASSWORD=redis_password, AGENT_CHECK="off"
    )
    daemon = Replica(env, tmp_path / "daemon.log")
    try:
        wait_until(lambda: consumer_count(amqp_url) == 1, 20, "the daemon never consumed")
        cid = client.call("POST", "/v1/customers", {"email": unique_email("secret")})["data"]["id"]
        assert client.call("GET", f"/v1/customers/{cid}")["status_code"] == 200
        created = client.call("POST", "/v1/accesskeys", {"customer_id": cid, "name": "k"})
        token, kid = created["data"]["token"], created["data"]["id"]
        prefix = token[:11]
        by_token = client.call("GET", "/v1/accesskeys?page_size=10", {"token": token})
        assert [k["id"] for k in by_token["data"]] == [kid]
        assert client.call("GET", f"/v1/accesskeys/{kid}")["status_code"] == 200
        assert client.call("PUT", f"/v1/accesskeys/{kid}", {"name": "k2"})["status_code"] == 200
        assert client.call("GET", f"/v1/no-such/{token}")["status_code"] == 404  # token in uri
        assert client.call("DELETE", f"/v1/customers/{cid}")["status_code"] == 200
        http_get(daemon.health_port(), "/metrics")
        received = events.wait_for(5, 15)
        cache = redis.Redis(
            host="127.0.0.1", port=int(redis_address.split(":")[1]), password=redis_password
        )
        cached = {k: cache.get(k) or b"" for k in cache.scan_iter("*")}
        cache.close()
        assert daemon.terminate() == 0
    finally:
        daemon.stop()
    log_text = daemon.log_path.read_text()
    event_text = "\n".join(map(str, received))
    cache_text = "\n".join(f"{k!r} {v!r}" for k, v in cached.items())
    leaks = {
        where: [s for s in (db_password, redis_password, token) if s in text]
        for where, text in (("logs", log_text), ("events", event_text), ("cache", cache_text))
    }
    report(
        log_lines=len(log_text.splitlines()),
        events=len(received),
        cached_keys=len(cached),
        leaks=sum(map(len, leaks.values())),
    )
    assert leaks == {"logs": [], "events": [], "cache": []}
    # the scans saw the places where a leak would be: the user, the key and its prefix
    assert parse_dsn(dsn).user in log_text and "correlation_id" in log_text
    assert any(e["type"] == "accesskey_created" for e in received)
    assert prefix in event_text and prefix in cache_text
