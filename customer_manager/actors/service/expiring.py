"""Keys about to expire (docs/api.md#access-key-expiring): the ordered, paginated list and
the notice sweep that publishes ``accesskey_expiring`` once per key.

The sweep pages through the window by ``(tm_expire, id)`` and marks each key with a CAS, in
the transaction that stores its event: a second run, or another replica running at the same
time, finds the key marked and publishes nothing.
"""

from __future__ import annotations

import logging
import uuid

import msgspec

from customer_manager.actors.kit.flow import Flow
from customer_manager.actors.service.deps import Deps, body, handlers
from customer_manager.actors.service.outbox import key_outbox
from customer_manager.messages.bodies import NotifyExpiringBody
from customer_manager.messages.expiring import ExpiringQuery, parse_expiring, within_seconds
from customer_manager.messages.ops import Op
from customer_manager.messages.records import Accesskey, Customer, after, now
from customer_manager.messages.wire import Response, ok
from customer_manager.storage.base import Storage

log = logging.getLogger(__name__)

NOTIFY_PAGE = 500  # keys read per page by the notice sweep


def expiring(deps: Deps, op: Op) -> Flow[Response]:
    """``GET /v1/accesskeys/expiring?within=&page_size=&page_token=``: a JSON array."""
    query = parse_expiring(op.request.uri, bytes(op.request.data), now())
    return deps.storage.run(Storage.accesskey_expiring, query).then(ok)


def notify_expiring(deps: Deps, op: Op) -> Flow[Response]:
    """``POST /v1/accesskeys/notify_expiring``: ``{"notified":n}``."""
    fields = body(bytes(op.request.data) or b"{}", NotifyExpiringBody)
    moment = now()
    window = ExpiringQuery(
        start=moment,
        end=after(within_seconds(fields.within), moment),
        unnotified=True,
        page_size=NOTIFY_PAGE,
    )

    def page(query: ExpiringQuery, count: int) -> Flow[Response]:
        found = deps.storage.run(Storage.accesskey_expiring, query)
        return found.then(lambda rows: each(query, rows, 0, count))

    def each(query: ExpiringQuery, rows: list[Accesskey], index: int, count: int) -> Flow[Response]:
        if index == len(rows):
            if len(rows) < query.page_size:
                return Flow.of(ok({"notified": count}))
            last = rows[-1]
            cursor = msgspec.structs.replace(query, after_expire=last.tm_expire, after_id=last.id)
            return page(cursor, count)
        key = rows[index]
        return (
            deps.owner(key)
            .then(lambda customer: _notify(deps, key, customer))
            .recover(Exception, lambda exc: _skipped(key.id, exc))
            .then(lambda done: each(query, rows, index + 1, count + done))
        )

    return page(window, 0)


def _notify(deps: Deps, key: Accesskey, customer: Customer | None) -> Flow[int]:
    outbox = key_outbox("accesskey_expiring", customer)
    marked = deps.write(Storage.accesskey_notify_expiry, key.id, now(), outbox)
    return marked.then(lambda row: 0 if row is None else deps.saved(row).then(lambda _: 1))


def _skipped(key_id: uuid.UUID, exc: Exception) -> int:
    log.warning("notify_expiring skipped access key %s: %s", key_id, type(exc).__name__)
    return 0


HANDLERS = handlers(expiring, notify_expiring)
