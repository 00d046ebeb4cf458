"""A MySQL connection lost at COMMIT (issue 18 #2): the change is stored but the service
cannot know. The reply is 503 (never 500), the connection is dropped, and no cache entry of
the records written outlives the truth: the deleted customer is served as deleted and its
access key no longer authenticates, before and after a retried DELETE.

``CommitCutter`` forwards the COMMIT to MySQL, holds back its OK and cuts the connection.
Run with the C extension (``make test`` loads it) and with the pure-Python protocol."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import msgspec
import mysql.connector
import pytest

from customer_manager.actors.service.router import call
from customer_manager.bootstrap import System, bootstrap
from customer_manager.config import Settings, parse_dsn
from customer_manager.messages.records import SENTINEL
from customer_manager.messages.wire import Request, Response
from customer_manager.storage.cache_backend import LocalCache
from customer_manager.storage.mysql import MySQLStorage
from tests.support.faults import dsn_via, unique_email
from tests.support.proxy import CommitCutter

pytestmark = pytest.mark.integration


class Service:
    def __init__(self, system: System, cache: LocalCache) -> None:
        self.system, self.cache = system, cache

    def send(self, method: str, uri: str, data: Any = None) -> Response:
        raw = msgspec.json.encode(data) if data is not None else b""
        request = Request(uri=uri, method=method, publisher="test", data=msgspec.Raw(raw))
        return call(self.system.router, request, 20)

    def json(self, method: str, uri: str, data: Any = None) -> Any:
        reply = self.send(method, uri, data)
        assert reply.status_code == 200, bytes(reply.data)
        return msgspec.json.decode(reply.data)


@pytest.fixture(params=["cext", "pure"])
def through_cutter(
    request: pytest.FixtureRequest, fresh_migrated_dsn: str
) -> Iterator[tuple[Service, CommitCutter, str]]:
    pure = request.param == "pure"
    if not pure and not mysql.connector.HAVE_CEXT:
        pytest.skip("the C extension is not loaded (run through customer_manager._launch)")
    target = parse_dsn(fresh_migrated_dsn)
    cutter = CommitCutter((target.host, target.port))
    cutter.start()
    dsn = dsn_via(fresh_migrated_dsn, cutter.port)
    cache = LocalCache()
    system = bootstrap(
        # no last-use write after the auth below: it would take the COMMIT the cutter cuts
        Settings(
            database_dsn=dsn, agent_check="off", storage_workers=1, accesskey_last_used_interval=0
        ),
        storage_factory=lambda: MySQLStorage(parse_dsn(dsn), pure=pure),
        cache=cache,
    )
    yield Service(system, cache), cutter, fresh_migrated_dsn
    system.stop(timeout=10)
    cutter.close()


def test_customer_delete_losing_its_commit_is_503_and_no_cache_entry_outlives_it(
    through_cutter: tuple[Service, CommitCutter, str],
) -> None:
    service, cutter, direct_dsn = through_cutter
    customer = service.json("POST", "/v1/customers", {"email": unique_email("commit")})
    key = service.json("POST", "/v1/accesskeys", {"customer_id": customer["id"]})
    auth = {"token": key["token"], "deleted": False}
    assert [k["id"] for k in service.json("GET", "/v1/accesskeys?", auth)] == [key["id"]]
    assert service.cache.get(f"customer:{customer['id']}") is not None  # cached, live

    cutter.arm()
    reply = service.send("DELETE", f"/v1/customers/{customer['id']}")
    assert cutter.commit_cut.wait(5), "the COMMIT never passed the proxy"
    assert reply.status_code == 503, bytes(reply.data)
    assert msgspec.json.decode(reply.data)["status"] == "UNAVAILABLE"

    truth = MySQLStorage(parse_dsn(direct_dsn))
    try:
        stored = truth.customer_get(_id(customer))
        assert stored.tm_delete != SENTINEL  # the COMMIT was applied
        assert truth.accesskey_get(_id(key)).tm_delete != SENTINEL
    finally:
        truth.close()
    assert service.cache.get(f"customer:{customer['id']}") is None
    assert service.cache.get(f"customer_accesskey:{key['id']}") is None
    assert service.json("GET", f"/v1/customers/{customer['id']}")["tm_delete"] != SENTINEL
    assert service.json("GET", "/v1/accesskeys?", auth) == []  # the token no longer works

    retried = service.json("DELETE", f"/v1/customers/{customer['id']}")
    assert retried["tm_delete"] == stored.tm_delete
    assert service.json("GET", f"/v1/customers/{customer['id']}")["tm_delete"] != SENTINEL


def test_update_losing_its_commit_is_503_and_the_next_read_sees_the_update(
    through_cutter: tuple[Service, CommitCutter, str],
) -> None:
    service, cutter, _ = through_cutter
    email = unique_email("commit")
    customer = service.json("POST", "/v1/customers", {"email": email, "name": "before"})
    cutter.arm()
    uri = f"/v1/customers/{customer['id']}"
    reply = service.send("PUT", uri, {"email": email, "name": "after"})
    assert cutter.commit_cut.wait(5) and reply.status_code == 503, bytes(reply.data)
    assert service.json("GET", uri)["name"] == "after"


def _id(record: dict[str, Any]) -> uuid.UUID:
    return uuid.UUID(record["id"])
