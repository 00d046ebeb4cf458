"""The floor: the least work one Python process must do per request, for comparison.

A single-threaded pika server on its own queue (``cm-bench.floor``) that answers the bench's
requests doing only the I/O and encoding each operation needs: no actors, no validation,
no logging, no metrics, no error handling beyond a status code that shows up as non-200.

* ``get`` (``GET /v1/customers/<id>``): one Redis GET of ``customer:<id>``; the entry is
  the reply's data as it is (no decode).
* ``auth`` (``GET /v1/accesskeys`` with ``{token, deleted}``): sha256 of the token, the
  daemon's ``get_indirect`` Lua script (``customer_accesskey_token:<hash>`` → the key record,
  one round trip); data ``[record]``.
* ``create`` (``POST /v1/customers``): the record built and encoded once; one MySQL
  transaction (the daemon's customer INSERT, outbox INSERT and request-reply INSERT, COMMIT);
  one Redis ``SET customer:<id> EX`` (plain SET, not the daemon's version-checking script);
  the event published on the event exchange in confirm mode (never waited for before the
  reply); after the broker's confirms, one ``DELETE`` of the confirmed outbox rows per loop
  turn (the relay's ``outbox_done``, without its claim).
* ``--agent-check``: a create first asks agent-manager (``GET /v1/agents``, direct reply-to)
  and goes on when the answer comes; the thread serves other requests meanwhile.

Two modes:

* ``seq``: each request handled to the end before the next, its reply and ack published as
  ``bench/echo.py`` does (BlockingChannel: a flush each); the AMQP side is exactly echo's.
* ``batch``: everything one read delivered at once: one Redis pipeline for all its reads (or
  the creates' SETs), a transaction per create, replies and acks queued on the channel core
  and sent together with pika's joined sends (the daemon's ``pika_io`` tricks).
* ``group``: ``batch``, but the creates of one read share one transaction (one COMMIT, so
  one log flush, per batch: the group commit a single connection cannot get otherwise; a
  failure fails the whole batch, which a real service would have to isolate).
* ``rows``: ``group`` with one multi-row INSERT per table (``executemany``): four MySQL round
  trips per batch of creates instead of three per create and one per batch.

Run through ``python -m customer_manager.launch bench.floor`` so that the MySQL C extension
loads before ``ssl`` (``customer_manager/tricks/mysql_cext.py``); configured by the daemon's
environment variables (DATABASE_DSN, REDIS_ADDRESS, REDIS_DATABASE, RABBITMQ_ADDRESS).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import time
import uuid
from types import FrameType
from typing import Any

import msgspec
import mysql.connector
import pika
import pika.spec
import redis

from bench.amqp import DIRECT_REPLY, RpcClient, connect, envelope
from bench.scenarios import FLOOR_MODES
from customer_manager.actors.service.customers import new_customer
from customer_manager.actors.service.outbox import event_message
from customer_manager.config import parse_dsn
from customer_manager.messages import gojson, ops
from customer_manager.messages.bodies import CustomerFields
from customer_manager.messages.queues import AGENT_QUEUE, EVENT_EXCHANGE
from customer_manager.messages.records import Customer
from customer_manager.messages.wire import JSON, PUBLISHER, Request, Response, encode
from customer_manager.storage import sqlrows as q
from customer_manager.storage.cache_backend import _GET_INDIRECT, TTL_SECONDS
from customer_manager.storage.mysql import DRIVER_ERRORS, SESSION_SETUP
from customer_manager.tricks import pika_io

FLOOR_QUEUE = "cm-bench.floor"
CUSTOMER_URI = "/v1/customers/"
AGENTS_URI = "/v1/agents?page_token=&page_size=100"
TOKEN_PREFIX = "customer_accesskey_token:"
KEY_PREFIX = "customer_accesskey:"
TEXT = pika.BasicProperties(content_type="text/plain")
NOT_FOUND = encode(Response(status_code=404, data_type=JSON))
FAILED = encode(Response(status_code=500, data_type=JSON))


class _Token(msgspec.Struct):
    token: str = ""


_request = msgspec.json.Decoder(Request)
_fields = msgspec.json.Decoder(CustomerFields)
_token = msgspec.json.Decoder(_Token)
_response = msgspec.json.Decoder(Response)


def ok(data: bytes) -> bytes:
    return encode(Response(status_code=200, data_type=JSON, data=msgspec.Raw(data)))


class Job:
    """One request: its delivery, and its Redis command or its new customer."""

    __slots__ = ("command", "customer", "props", "request", "tag", "wrap")

    def __init__(self, tag: int, props: pika.BasicProperties, request: Request) -> None:
        self.tag, self.props, self.request = tag, props, request
        self.command: tuple[Any, ...] = ()
        self.wrap = False  # the reply's data is [value]
        self.customer: Customer | None = None


class Floor:
    def __init__(self, mode: str, prefetch: int, agent_check: bool) -> None:
        self.batch, self.group, self.rows = mode != "seq", mode in ("group", "rows"), mode == "rows"
        self.agent_check = agent_check
        if self.batch:
            pika_io.enable()
        self.stopping = False
        self.inbox: list[tuple[int, pika.BasicProperties, bytes]] = []
        self.cleared: list[Job] = []  # creates whose agent check answered
        self.asked: dict[str, Job] = {}  # agent check correlation id → create
        self.unconfirmed: dict[int, int] = {}  # event delivery tag → outbox row id
        self.confirmed: list[int] = []  # outbox row ids to delete
        self.next_tag = 1
        self.deleted = 0  # outbox rows deleted after their confirm (reported at exit)

        self.conn = connect(os.environ["RABBITMQ_ADDRESS"], "cm-bench-floor")
        self.channel = self.conn.channel()
        self.core: Any = self.channel._impl
        self.channel.queue_declare(FLOOR_QUEUE, auto_delete=True)
        self.channel.basic_qos(prefetch_count=prefetch)
        self.channel.basic_consume(FLOOR_QUEUE, self._on_request)
        if agent_check:
            self.channel.basic_consume(DIRECT_REPLY, self._on_agents, auto_ack=True)
        events = self.conn.channel()
        events.exchange_declare(EVENT_EXCHANGE, "fanout", durable=True)
        self.events: Any = events._impl
        selected: list[bool] = []
        self.events.confirm_delivery(self._on_confirm, lambda _frame: selected.append(True))
        while not selected:
            self.conn.process_data_events(time_limit=0.05)
        self._events_channel = events  # keeps the BlockingChannel wrapper alive

        host, _, port = os.environ["REDIS_ADDRESS"].rpartition(":")
        db = int(os.environ.get("REDIS_DATABASE", "0"))
        self.redis = redis.Redis(host=host, port=int(port), db=db, single_connection_client=True)
        self.rconn: Any = self.redis.connection

        p = parse_dsn(os.environ["DATABASE_DSN"])
        self.db: Any = mysql.connector.connect(
            user=p.user,
            password=p.password,
            database=p.database,
            host=p.host,
            port=p.port,
            autocommit=False,
            charset="utf8mb4",
            collation="utf8mb4_general_ci",
        )
        self.cursor: Any = self.db.cursor()
        for statement in SESSION_SETUP:
            self.cursor.execute(statement)

    # -- AMQP callbacks: only collect ------------------------------------------------------

    def _on_request(self, _ch: Any, method: Any, props: pika.BasicProperties, body: bytes) -> None:
        self.inbox.append((method.delivery_tag, props, body))

    def _on_agents(self, _ch: Any, _m: Any, props: pika.BasicProperties, body: bytes) -> None:
        job = self.asked.pop(str(props.correlation_id), None)
        if job is None:
            return
        reply = _response.decode(body)
        if reply.status_code == 200 and bytes(reply.data) == b"[]":
            self.cleared.append(job)
        else:
            self._reply(job, FAILED)

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        ack = isinstance(method, pika.spec.Basic.Ack)
        tags = [t for t in self.unconfirmed if t <= method.delivery_tag] if method.multiple else []
        for tag in tags or [method.delivery_tag]:
            row = self.unconfirmed.pop(tag, None)
            if ack and row is not None:
                self.confirmed.append(row)

    # -- the loop ---------------------------------------------------------------------------

    def serve(self) -> None:
        while not self.stopping:
            self.conn.process_data_events(time_limit=0.1)
            if self.inbox:
                delivered, self.inbox = self.inbox, []
                self._handle([Job(t, p, _request.decode(b)) for t, p, b in delivered])
            if self.cleared:
                cleared, self.cleared = self.cleared, []
                self._creates(cleared)
            if self.confirmed:
                self._outbox_done()
        print(
            f"floor: {self.next_tag - 1} events published, {self.deleted} outbox rows deleted"
            f" after their confirm, {len(self.unconfirmed)} unconfirmed",
            flush=True,
        )
        self.conn.close()
        self.db.close()
        self.redis.close()

    def _handle(self, jobs: list[Job]) -> None:
        reads: list[Job] = []
        creates: list[Job] = []
        for job in jobs:
            method, uri = job.request.method, job.request.uri
            if method == "GET" and uri.startswith(CUSTOMER_URI):
                job.command = ("GET", "customer:" + uri[len(CUSTOMER_URI) :])
                reads.append(job)
            elif method == "GET" and uri.startswith("/v1/accesskeys"):
                token = _token.decode(job.request.data).token
                digest = hashlib.sha256(token.encode()).hexdigest()
                job.command = ("EVAL", _GET_INDIRECT, 1, TOKEN_PREFIX + digest, KEY_PREFIX)
                job.wrap = True
                reads.append(job)
            elif method == "POST" and uri == "/v1/customers":
                creates.append(job)
            else:
                self._reply(job, NOT_FOUND)
        if reads:
            self._reads(reads)
        if creates and self.agent_check:
            for job in creates:
                self._ask_agents(job)
        elif creates:
            self._creates(creates)

    def _reads(self, jobs: list[Job]) -> None:
        if not self.batch:
            for job in jobs:  # reply before the next request's round trip
                self._answer(job, self._redis(*job.command))
            return
        values = self._redis_many([job.command for job in jobs])
        for job, value in zip(jobs, values, strict=True):
            self._answer(job, value)

    def _answer(self, job: Job, value: Any) -> None:
        if not isinstance(value, bytes):
            self._reply(job, NOT_FOUND)
        else:
            self._reply(job, ok(b"[" + value + b"]" if job.wrap else value))

    def _ask_agents(self, job: Job) -> None:
        email = _fields.decode(job.request.data).email
        filters = gojson.encode_sorted({"deleted": False, "username": email})
        request = Request(
            uri=AGENTS_URI,
            method="GET",
            publisher=PUBLISHER,
            data_type=JSON,
            data=msgspec.Raw(filters),
        )
        cid = uuid.uuid4().hex
        props = pika.BasicProperties(
            content_type="text/plain", reply_to=DIRECT_REPLY, correlation_id=cid
        )
        self.asked[cid] = job
        self.core.basic_publish("", AGENT_QUEUE, encode(request), props)

    def _creates(self, jobs: list[Job]) -> None:
        stored: list[tuple[Job, bytes, bytes, int]] = []
        if self.rows:
            try:
                stored = [
                    (job, *rows) for job, rows in zip(jobs, self._insert_rows(jobs), strict=True)
                ]
            except DRIVER_ERRORS:
                self.db.rollback()
                for job in jobs:
                    self._reply(job, FAILED)
                return
            jobs = []
        for job in jobs:
            try:
                rows = self._insert(job)
                if not self.group:
                    self.db.commit()
            except DRIVER_ERRORS:
                self.db.rollback()  # in group mode, the batch's earlier creates too
                failed = [job, *(done for done, *_ in stored)] if self.group else [job]
                stored = [] if self.group else stored
                for each in failed:
                    self._reply(each, FAILED)
                continue
            if self.batch:
                stored.append((job, *rows))
            else:  # seq: this request to its end, then the next
                self._finish(job, *rows)
        if self.group and stored:
            try:
                self.db.commit()
            except DRIVER_ERRORS:
                self.db.rollback()
                for done, *_ in stored:
                    self._reply(done, FAILED)
                return
        if stored:
            sets = [("SET", _key(job), data, "EX", TTL_SECONDS) for job, data, _, _ in stored]
            self._redis_many(sets)
            for job, data, event, row in stored:
                self._publish_event(event, row)
                self._reply(job, ok(data))

    def _record(self, job: Job) -> tuple[list[Any], bytes, bytes, str, str]:
        """A create's new customer: its INSERT parameters, its JSON, its event, the
        request's key and the moment."""
        customer = job.customer = new_customer(_fields.decode(job.request.data))
        event = event_message("customer_created", customer, headless=False).body
        key = ops.request_key(str(job.props.correlation_id or ""), job.request)
        params = q.customer_params(customer)
        return params, gojson.encode(customer), event, key, customer.tm_create

    def _insert(self, job: Job) -> tuple[bytes, bytes, int]:
        """The rows of one create (uncommitted); its JSON, its event and its outbox row id."""
        params, data, event, key, stamp = self._record(job)
        cursor = self.cursor
        cursor.execute(q.CUSTOMER_INSERT, params)
        cursor.execute(q.OUTBOX_INSERT, (EVENT_EXCHANGE, "", event, stamp))
        row = int(cursor.lastrowid)
        cursor.execute(q.REPLY_PUT, (key, data, stamp))
        return data, event, row

    def _insert_rows(self, jobs: list[Job]) -> list[tuple[bytes, bytes, int]]:
        """``_insert`` for all ``jobs`` with a multi-row INSERT per table, committed."""
        made = [self._record(job) for job in jobs]
        cursor = self.cursor
        cursor.executemany(q.CUSTOMER_INSERT, [params for params, *_ in made])
        cursor.executemany(q.OUTBOX_INSERT, [(EVENT_EXCHANGE, "", m[2], m[4]) for m in made])
        first = int(cursor.lastrowid)  # a multi-row INSERT's ids are consecutive (InnoDB)
        cursor.executemany(q.REPLY_PUT, [(m[3], m[1], m[4]) for m in made])
        self.db.commit()
        return [(m[1], m[2], first + i) for i, m in enumerate(made)]

    def _finish(self, job: Job, data: bytes, event: bytes, row: int) -> None:
        self._redis("SET", _key(job), data, "EX", TTL_SECONDS)
        self._publish_event(event, row)
        self._reply(job, ok(data))

    def _publish_event(self, event: bytes, row: int) -> None:
        self.events.basic_publish(EVENT_EXCHANGE, "", event, TEXT)
        self.unconfirmed[self.next_tag] = row
        self.next_tag += 1

    def _outbox_done(self) -> None:
        rows, self.confirmed = self.confirmed, []
        marks = ", ".join(["%s"] * len(rows))
        self.cursor.execute(q.OUTBOX_DONE.format(marks=marks), rows)
        self.db.commit()
        self.deleted += self.cursor.rowcount

    # -- I/O ----------------------------------------------------------------------------------

    def _reply(self, job: Job, body: bytes) -> None:
        props = pika.BasicProperties(
            content_type="text/plain", correlation_id=job.props.correlation_id
        )
        if self.batch:
            self.core.basic_publish("", job.props.reply_to, body, props)
            self.core.basic_ack(job.tag)
        else:
            self.channel.basic_publish("", job.props.reply_to, body, props)
            self.channel.basic_ack(job.tag)

    def _redis(self, *args: Any) -> Any:
        conn = self.rconn
        conn.send_packed_command(conn.pack_command(*args), check_health=False)
        return conn.read_response()

    def _redis_many(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        conn = self.rconn
        conn.send_packed_command(conn.pack_commands(commands), check_health=False)
        return [conn.read_response() for _ in commands]


def _key(job: Job) -> str:
    assert job.customer is not None
    return f"customer:{job.customer.id}"


def wait_ready(url: str, timeout: float = 30.0) -> float:
    """Seconds until the floor server answers a probe (any status)."""
    began = time.perf_counter()
    client = RpcClient(url, queue=FLOOR_QUEUE, name="cm-bench-floor-probe")
    try:
        client.channel.queue_declare(FLOOR_QUEUE, auto_delete=True)  # as the server does
        client.wait([client.send(envelope("GET", "/floor/ready"))], timeout)
    finally:
        client.close()
    return time.perf_counter() - began


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m customer_manager.launch bench.floor")
    p.add_argument("--mode", choices=FLOOR_MODES, default="seq")
    p.add_argument("--prefetch", type=int, default=32)
    p.add_argument("--agent-check", action="store_true", help="ask agent-manager per create")
    args = p.parse_args()
    floor = Floor(args.mode, args.prefetch, args.agent_check)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        floor.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    floor.serve()


if __name__ == "__main__":
    main()
