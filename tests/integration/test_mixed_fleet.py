"""A Go replica and our daemon on one database and one request queue during the expand
phase (issue 13): a key created on either side logs in on both; each reads the other's
cache entries."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest
import redis

from customer_manager.actors.service.router import call
from customer_manager.config import Settings, parse_dsn
from customer_manager.main import Daemon
from customer_manager.messages.wire import Response
from customer_manager.oneshot import make_request
from customer_manager.storage.mysql import MySQLStorage
from tests.support.amqp import Client
from tests.support.go_like import SENTINEL, GoReplica, GoService, go_decode
from tests.support.servers import REDIS_DB
from tests.support.service import start_daemon

pytestmark = pytest.mark.integration


@pytest.fixture
def go(fresh_mysql_dsn: str, redis_db: redis.Redis, redis_address: str) -> Iterator[GoService]:
    service = GoService(fresh_mysql_dsn, redis_address, REDIS_DB)
    service.create_schema()
    yield service
    service.close()


@pytest.fixture
def replica(amqp_url: str, go: GoService, client: Client) -> Iterator[GoReplica]:
    """A Go replica consuming the request queue (after ``client`` purged it)."""
    thread = GoReplica(amqp_url, go)
    thread.start()
    assert thread.ready.wait(10)
    yield thread
    thread.stop()


def ours(daemon: Daemon, method: str, uri: str, data: Any = None) -> Any:
    """A request answered by our daemon's own router (not via the shared queue)."""
    response: Response = call(daemon.system.router, make_request(method, uri, data), 10)
    assert response.status_code == 200, response.data
    return msgspec.json.decode(response.data)


def test_keys_from_either_side_log_in_on_both(
    go: GoService,
    replica: GoReplica,
    client: Client,
    service_settings: Callable[..., Settings],
    daemons: list[Daemon],
) -> None:
    alice = go.insert_customer("alice@example.com")
    MySQLStorage(parse_dsn(go.dsn)).migrate()  # expand only: Go keeps writing plain tokens
    settings = service_settings(database_dsn=go.dsn, expand_plain_tokens=True, agent_check="off")
    daemon = start_daemon(settings)
    daemons.append(daemon)

    go_id, go_token = go.insert_key(alice)
    made = ours(daemon, "POST", "/v1/accesskeys", {"customer_id": str(alice), "name": "py"})
    our_id, our_token = uuid.UUID(made["id"]), made["token"]

    answered_by_us = 0
    for key_id, token in ((go_id, go_token), (our_id, our_token)):
        assert [k["id"] for k in go.keys_by_token(token)] == [str(key_id)]  # Go's SQL
        filters = {"token": token, "deleted": False}
        found = ours(daemon, "GET", "/v1/accesskeys?page_size=10", filters)
        assert [k["id"] for k in found] == [str(key_id)]
        for _ in range(4):  # on the shared queue: whichever replica gets it answers
            reply = client.call("GET", "/v1/accesskeys?page_size=10", filters)
            assert reply["status_code"] == 200
            assert [k["id"] for k in reply["data"]] == [str(key_id)]
            answered_by_us += "token_prefix" in reply["data"][0]
    assert replica.answered >= 1 and answered_by_us >= 1  # both sides served logins

    # Go reads our cache entry by its decoding rules ...
    entry = go_decode(go.redis.get(f"customer_accesskey:{our_id}"), ["id", "tm_delete"])
    assert entry == {"id": str(our_id), "tm_delete": SENTINEL}
    # ... and we read Go's (it holds the plain token): served from the cache, token dropped.
    go.sql("UPDATE customer_accesskeys SET name = 'changed in db' WHERE id = %s", (go_id.bytes,))
    shown = ours(daemon, "GET", f"/v1/accesskeys/{go_id}")
    assert shown["name"] == "go key" and "token" not in shown
    assert shown["token_prefix"] == go_token[:11]
    assert json.loads(go.redis.get(f"customer_accesskey:{go_id}") or b"{}")["token"] == go_token
