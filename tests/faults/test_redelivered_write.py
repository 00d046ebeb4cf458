"""A write redelivered after its commit gets the reply of its first run (issue 18 #3).

The service's broker connection goes through a ``TcpProxy``; a storage wrapper cuts it right
after the create has committed, so the delivery is never acked. The broker redelivers the
request when the service is back, and the second run must answer 200 with the record the
first run created (the reply the first run earned), not 409 EMAIL_ALREADY_EXISTS for its own
email.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from customer_manager.actors.amqp.consumer import ConsumerActor
from customer_manager.bootstrap import bootstrap
from customer_manager.config import Settings, parse_dsn
from customer_manager.messages.ops import HandleMany
from customer_manager.messages.query import Filters, ListQuery
from customer_manager.messages.records import now
from customer_manager.storage.cache_backend import LocalCache
from customer_manager.storage.mysql import MySQLStorage
from tests.support.amqp import Client, envelope
from tests.support.faults import unique_email
from tests.support.proxy import TcpProxy

pytestmark = pytest.mark.integration


class CutAfterCommit:
    """A Storage that, once armed, pauses ``proxy`` (the service's broker link) as soon as a
    customer insert has committed, and resumes it ``down`` seconds later."""

    def __init__(self, inner: MySQLStorage, proxy: TcpProxy, down: float = 1.0) -> None:
        self.inner, self.proxy, self.down = inner, proxy, down
        self.armed = threading.Event()
        self.calls = 0
        self.inserts: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def customer_insert(self, *args: Any, **options: Any) -> Any:
        self.calls += 1
        result = self.inner.customer_insert(*args, **options)
        self.inserts.append(result)
        if self.armed.is_set():
            self.armed.clear()
            self.proxy.pause()
            threading.Timer(self.down, self.proxy.resume).start()
        return result


@pytest.fixture
def broker_proxy(amqp_url: str) -> Iterator[TcpProxy]:
    proxy = TcpProxy(("127.0.0.1", 5672))
    proxy.start()
    yield proxy
    proxy.close()


def test_a_create_redelivered_after_its_commit_answers_its_first_reply(
    client: Client, fresh_migrated_dsn: str, broker_proxy: TcpProxy
) -> None:
    storage = CutAfterCommit(MySQLStorage(parse_dsn(fresh_migrated_dsn)), broker_proxy)
    settings = Settings(
        rabbitmq_address=f"amqp://guest:guest@127.0.0.1:{broker_proxy.port}/%2F",
        database_dsn=fresh_migrated_dsn,
        agent_check="off",
        storage_workers=1,
    )
    system = bootstrap(settings, storage_factory=lambda: storage, cache=LocalCache())
    router = system.router
    consumer = ConsumerActor.start(settings, lambda items: router.tell(HandleMany(items=items)))
    try:
        email = unique_email("redelivered")
        storage.armed.set()
        corr = client.send(envelope("POST", "/v1/customers", {"email": email}))
        # the first run's reply goes out once the service is reconnected (direct reply-to
        # works from any channel), but its ack is lost with the old channel: redelivered
        first_reply = client.wait([corr], 20).get(corr)
        client.replies.pop(corr, None)
        reply = client.wait([corr], 20).get(corr)
    finally:
        consumer.proxy().drain(5).get(timeout=10)
        consumer.stop()
        system.stop(timeout=10)
    assert storage.calls == 2, "the request was not redelivered after the cut"
    assert first_reply is not None and first_reply["status_code"] == 200, first_reply
    assert reply is not None, "no reply to the redelivered create"
    assert reply == first_reply  # 200 with the same record, not 409 EMAIL_ALREADY_EXISTS
    first = storage.inserts[0]
    assert reply["data"]["id"] == str(first.id)
    query = ListQuery(page_size=10, before=now(), filters=Filters(email=email))
    assert [c.id for c in storage.inner.customer_list(query)] == [first.id]
    storage.inner.close()
