"""Small AMQP helpers shared by the load generator, the echo server and the harness.

Every helper opens its own ``pika.BlockingConnection`` and uses it only in the calling
thread (pika connections are not thread-safe).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pika

from customer_manager.tricks import pika_io

DIRECT_REPLY = "amq.rabbitmq.reply-to"
REQUEST_QUEUE = "bin-manager.customer-manager.request"
OK_PREFIX = b'{"status_code":200'


def connect(url: str, name: str) -> pika.BlockingConnection:
    params = pika.URLParameters(url)
    params.client_properties = {"connection_name": name}
    return pika.BlockingConnection(params)


def envelope(method: str, uri: str, data: Any = None) -> bytes:
    """A Request envelope as VoIPbin callers send it (docs/api.md#request-envelope); ``data``
    omitted if None."""
    body: dict[str, Any] = {
        "uri": uri,
        "method": method,
        "publisher": "bench",
        "data_type": "application/json",
    }
    if data is not None:
        body["data"] = data
    return json.dumps(body, separators=(",", ":")).encode()


def status_of(body: bytes) -> int:
    """The reply's ``status_code`` (cheap path for the common 200)."""
    if body.startswith(OK_PREFIX):
        return 200
    try:
        return int(json.loads(body).get("status_code", 0))
    except (ValueError, AttributeError):
        return 0


class RpcClient:
    """Pipelined request/reply over direct reply-to; one connection, caller's thread only."""

    def __init__(self, url: str, queue: str = REQUEST_QUEUE, name: str = "cm-bench-rpc") -> None:
        self.queue = queue
        self.conn = connect(url, name)
        self.channel = self.conn.channel()
        self.replies: dict[str, bytes] = {}
        self.channel.basic_consume(DIRECT_REPLY, self._on_reply, auto_ack=True)

    def _on_reply(self, _ch: Any, _m: Any, props: pika.BasicProperties, body: bytes) -> None:
        self.replies[str(props.correlation_id)] = body

    def send(self, body: bytes) -> str:
        cid = uuid.uuid4().hex
        props = pika.BasicProperties(reply_to=DIRECT_REPLY, correlation_id=cid)
        self.channel.basic_publish("", self.queue, body, props)
        return cid

    def wait(self, cids: list[str], timeout: float) -> dict[str, bytes]:
        """Replies for ``cids``; raises TimeoutError if any is missing after ``timeout``."""
        deadline = time.monotonic() + timeout
        while any(c not in self.replies for c in cids):
            left = deadline - time.monotonic()
            if left <= 0:
                missing = sum(c not in self.replies for c in cids)
                raise TimeoutError(f"{missing} of {len(cids)} replies missing after {timeout}s")
            self.conn.process_data_events(time_limit=min(left, 0.05))
        return {c: self.replies.pop(c) for c in cids}

    def call_many(self, bodies: list[bytes], timeout: float = 30.0) -> list[dict[str, Any]]:
        """Send all ``bodies`` at once and return the decoded replies in order."""
        cids = [self.send(b) for b in bodies]
        got = self.wait(cids, timeout)
        return [json.loads(got[c]) for c in cids]

    def server_version(self) -> str:
        props = pika_io.server_properties(self.conn)
        version = props.get("version", b"?")
        return version.decode() if isinstance(version, bytes) else str(version)

    def close(self) -> None:
        if self.conn.is_open:
            self.conn.close()
