"""A stand-in for the Go customer-manager for takeover tests (the "Go:" notes of
docs/storage.md and docs/api.md).

It writes and reads MySQL and Redis as the Go service does: the Go schema (no secondary
index but the token's, no unique email), binary(16) ids, timestamps as Go formats them
(``Time.String()`` without the zone), plain 16-char tokens, ``SELECT ... WHERE token = ?``
for the api-manager login, cache entries in Go JSON (every field omitempty but ids and
``token``) and Go's decoding rules when reading one (unknown keys ignored, missing keys
empty, a wrong type is an error and the read falls back to the database). ``GoReplica``
answers the login request on the shared request queue, as a Go replica does.
"""

from __future__ import annotations

import json
import secrets
import string
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pika
import redis

from customer_manager.messages.queues import REQUEST_QUEUE
from tests.support.servers import mysql_connect

GO_SCHEMA = (
    "CREATE TABLE customer_customers (id binary(16) PRIMARY KEY, name varchar(255),"
    " detail text, email varchar(255), phone_number varchar(255), address varchar(1024),"
    " webhook_method varchar(255), webhook_uri varchar(1023), billing_account_id binary(16),"
    " tm_create datetime(6), tm_update datetime(6), tm_delete datetime(6))",
    "CREATE TABLE customer_accesskeys (id binary(16) PRIMARY KEY, customer_id binary(16),"
    " name varchar(255), detail text, token varchar(1023), tm_expire datetime(6),"
    " tm_create datetime(6), tm_update datetime(6), tm_delete datetime(6),"
    " INDEX idx_customer_accesskeys_customer_id(customer_id),"
    " INDEX idx_customer_accesskeys_token(token))",
)
SENTINEL = "9999-01-01 00:00:00.000000"
CUSTOMER_FIELDS = [
    "id",
    "name",
    "detail",
    "email",
    "phone_number",
    "address",
    "webhook_method",
    "webhook_uri",
    "billing_account_id",
    "tm_create",
    "tm_update",
    "tm_delete",
]
KEY_FIELDS = [
    "id",
    "customer_id",
    "name",
    "detail",
    "token",
    "tm_expire",
    "tm_create",
    "tm_update",
    "tm_delete",
]
ALWAYS = {"id", "billing_account_id", "customer_id", "token"}  # no omitempty
UUIDS = {"id", "billing_account_id", "customer_id"}
ALPHABET = string.ascii_letters + string.digits


def go_time(moment: datetime) -> str:
    """``Time.String()`` with the zone cut off: up to 9 digits, trailing zeros dropped."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f").rstrip("0")
    return text.rstrip(".")


def go_token() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(16))


def go_decode(raw: bytes | None, fields: list[str]) -> dict[str, Any] | None:
    """``json.Unmarshal`` into the Go struct: None where Go gets an error."""
    try:
        obj = json.loads(raw) if raw is not None else None
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    out: dict[str, Any] = {}
    for name in fields:
        value = obj.get(name, "" if name not in UUIDS else str(uuid.UUID(int=0)))
        if not isinstance(value, str):
            return None
        if name in UUIDS:
            try:
                value = str(uuid.UUID(value))
            except ValueError:
                return None
        out[name] = value
    return out


def go_json(row: dict[str, Any], fields: list[str]) -> bytes:
    """The Go JSON of a record: field order, omitempty except ``ALWAYS``."""
    shown = {f: row[f] for f in fields if f in ALWAYS or row[f]}
    return json.dumps(shown, separators=(",", ":")).encode()


class GoStore:
    """A Go service's connections to its MySQL database and Redis DB, and a locked SQL call
    (the stand-ins of the seed-era and of today's Go service share it)."""

    def __init__(self, dsn: str, redis_address: str, redis_db: int) -> None:
        self.dsn, self.redis_address, self.redis_db = dsn, redis_address, redis_db
        self.conn = mysql_connect(dsn)
        self.conn.autocommit = True
        host, port = redis_address.split(":")
        self.redis = redis.Redis(host=host, port=int(port), db=redis_db)
        self.lock = threading.Lock()

    def close(self) -> None:
        self.conn.close()
        self.redis.close()

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            cursor = self.conn.cursor()
            cursor.execute(statement, params)
            rows = list(cursor.fetchall()) if cursor.description else []
            cursor.close()
            return rows


class GoService(GoStore):
    """Go's storage and cache behaviour on one MySQL database and one Redis DB."""

    def create_schema(self) -> None:
        for ddl in GO_SCHEMA:
            self.sql(ddl)

    # -- writes (sorted columns, UUIDs as bytes, Go timestamps) -------------------------

    def insert_customer(self, email: str, *, deleted: bool = False, **extra: str) -> uuid.UUID:
        row_id, moment = uuid.uuid4(), datetime.now(UTC)
        values = {
            "address": "",
            "billing_account_id": bytes(16),
            "detail": "",
            "email": email,
            "id": row_id.bytes,
            "name": extra.get("name", email.split("@")[0]),
            "phone_number": "",
            "tm_create": go_time(moment - timedelta(days=400)),
            "tm_delete": go_time(moment) if deleted else SENTINEL,
            "tm_update": go_time(moment) if deleted else SENTINEL,
            "webhook_method": extra.get("webhook_method", "POST"),
            "webhook_uri": extra.get("webhook_uri", ""),
        }
        self._insert("customer_customers", values)
        self.refresh("customer", row_id)
        return row_id

    def insert_key(self, customer_id: uuid.UUID, *, deleted: bool = False) -> tuple[uuid.UUID, str]:
        """Accesskey create as Go does it: plain token, a year of validity."""
        row_id, token, moment = uuid.uuid4(), go_token(), datetime.now(UTC)
        values = {
            "customer_id": customer_id.bytes,
            "detail": "",
            "id": row_id.bytes,
            "name": "go key",
            "tm_create": go_time(moment),
            "tm_delete": go_time(moment) if deleted else SENTINEL,
            "tm_expire": go_time(moment + timedelta(days=365)),
            "tm_update": SENTINEL,
            "token": token,
        }
        self._insert("customer_accesskeys", values)
        self.refresh("customer_accesskey", row_id)
        return row_id, token

    def delete_customer(self, customer_id: uuid.UUID) -> None:
        """Go's soft delete; Go never revokes the keys."""
        stamp = go_time(datetime.now(UTC))
        self.sql(
            "UPDATE customer_customers SET tm_delete=%s, tm_update=%s WHERE id = %s",
            (stamp, stamp, customer_id.bytes),
        )
        self.refresh("customer", customer_id)

    def _insert(self, table: str, values: dict[str, Any]) -> None:
        names = sorted(values)
        marks = ", ".join(["%s"] * len(names))
        sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})"
        self.sql(sql, tuple(values[n] for n in names))

    # -- reads --------------------------------------------------------------------------------

    def _table(self, kind: str) -> tuple[str, list[str]]:
        if kind == "customer":
            return "customer_customers", CUSTOMER_FIELDS
        return "customer_accesskeys", KEY_FIELDS

    def row(self, kind: str, row_id: uuid.UUID) -> dict[str, Any] | None:
        table, fields = self._table(kind)
        found = self.sql(f"SELECT {', '.join(fields)} FROM {table} WHERE id = %s", (row_id.bytes,))
        return _record(found[0], fields) if found else None

    def refresh(self, kind: str, row_id: uuid.UUID) -> None:
        """The write path: re-read the row, SET the cache for 24 h."""
        record = self.row(kind, row_id)
        assert record is not None
        self.redis.set(f"{kind}:{row_id}", go_json(record, self._table(kind)[1]), ex=86400)

    def get(self, kind: str, row_id: uuid.UUID) -> dict[str, Any] | None:
        """The read path: the cache entry decoded by Go's rules, else the row."""
        cached = go_decode(self.redis.get(f"{kind}:{row_id}"), self._table(kind)[1])
        return cached if cached is not None else self.row(kind, row_id)

    def keys_by_token(self, token: str) -> list[dict[str, Any]]:
        """The api-manager login as Go answers it (filter ``token``, not deleted)."""
        found = self.sql(
            f"SELECT {', '.join(KEY_FIELDS)} FROM customer_accesskeys WHERE tm_create < %s"
            " AND token = %s AND tm_delete >= %s ORDER BY tm_create DESC LIMIT 100",
            (go_time(datetime.now(UTC)), token, SENTINEL),
        )
        return [_record(r, KEY_FIELDS) for r in found]


def _record(row: tuple[Any, ...], fields: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in zip(fields, row, strict=True):
        if name in UUIDS:
            out[name] = str(uuid.UUID(bytes=bytes(value)) if value else uuid.UUID(int=0))
        elif isinstance(value, datetime):
            out[name] = value.strftime("%Y-%m-%d %H:%M:%S.%f")
        else:
            out[name] = "" if value is None else str(value)
    return out


class GoReplica(threading.Thread):
    """A Go replica on the shared request queue, answering the login request
    (``GET /v1/accesskeys`` with a ``token`` filter) from ``GoService`` (prefetch 1)."""

    def __init__(self, url: str, go: GoService) -> None:
        super().__init__(daemon=True, name="go-replica")
        self.url, self.go = url, go
        self.answered = 0
        self._stop_flag = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        conn = pika.BlockingConnection(pika.URLParameters(self.url))
        channel = conn.channel()
        channel.queue_declare(REQUEST_QUEUE, durable=True)
        channel.basic_qos(prefetch_count=1)
        channel.basic_consume(REQUEST_QUEUE, self._on_message)
        self.ready.set()
        while not self._stop_flag.is_set():
            conn.process_data_events(time_limit=0.05)
        conn.close()

    def stop(self) -> None:
        self._stop_flag.set()
        self.join(10)

    def _on_message(self, ch: Any, method: Any, props: pika.BasicProperties, body: bytes) -> None:
        request = json.loads(body)
        ch.basic_ack(method.delivery_tag)  # Go acks first
        token = (request.get("data") or {}).get("token")
        if request.get("method") == "GET" and token is not None:
            reply = {"status_code": 200, "data_type": "application/json"}
            reply["data"] = self.go.keys_by_token(token)
        else:
            reply = {"status_code": 400, "data_type": ""}
        self.answered += 1
        out = pika.BasicProperties(correlation_id=props.correlation_id)
        ch.basic_publish("", props.reply_to, json.dumps(reply).encode(), out)
