"""The baseline: a bare pika echo server on its own queue, in its own process.

It consumes like the daemon (manual ack after the reply is published, the same prefetch)
and answers every request with one fixed, customer-sized body: no decoding, no storage.
Every scenario is reported as a ratio to this server's throughput at the same in-flight count.

``FakeAgentManager`` is the same server on agent-manager's request queue, answering every
request with an empty agent list at once: the peer of the ``create_agent`` scenario (the
daemon with ``--agent_check required`` asks it about every new email).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
from typing import Any

import pika

from bench.amqp import connect

ECHO_QUEUE = "cm-bench.echo"
FIXED_BODY = (
    b'{"status_code":200,"data_type":"application/json","data":{"id":"2cfbb148-7dc7-11ec-85df-'
    b'47cf2c8492f0","name":"bench","email":"echo@bench.example.com","billing_account_id":"00000000'
    b'-0000-0000-0000-000000000000","tm_create":"2024-04-18 03:22:17.995000","tm_update":"9999-01'
    b'-01 00:00:00.000000","tm_delete":"9999-01-01 00:00:00.000000"}}'
)
AGENT_QUEUE = "bin-manager.agent-manager.request"
NO_AGENTS = b'{"status_code":200,"data_type":"application/json","data":[]}'


def serve(
    url: str,
    prefetch: int,
    ready: multiprocessing.synchronize.Event,
    stop: multiprocessing.synchronize.Event,
    queue: str = ECHO_QUEUE,
    body: bytes = FIXED_BODY,
) -> None:
    """Consume ``queue`` (exclusive, so it vanishes with the connection) until ``stop``,
    answering ``body`` to every request."""
    conn = connect(url, f"cm-bench-{queue}")
    channel = conn.channel()
    channel.queue_declare(queue, exclusive=True, auto_delete=True)
    channel.basic_qos(prefetch_count=prefetch)

    def on_request(ch: Any, method: Any, props: pika.BasicProperties, _body: bytes) -> None:
        if props.reply_to:
            reply = pika.BasicProperties(
                content_type="text/plain", correlation_id=props.correlation_id
            )
            ch.basic_publish("", props.reply_to, body, reply)
        ch.basic_ack(method.delivery_tag)

    channel.basic_consume(queue, on_request)
    ready.set()
    try:
        while not stop.is_set():
            conn.process_data_events(time_limit=0.1)
    finally:
        conn.close()


class EchoServer:
    """Context manager: the echo server process, started and stopped (also on errors)."""

    def __init__(
        self, url: str, prefetch: int, queue: str = ECHO_QUEUE, body: bytes = FIXED_BODY
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.ready, self.stop = ctx.Event(), ctx.Event()
        self.proc = ctx.Process(
            target=serve,
            args=(url, prefetch, self.ready, self.stop, queue, body),
            name=f"cm-bench-{queue}",
        )

    def __enter__(self) -> EchoServer:
        self.proc.start()
        if not self.ready.wait(30):
            self.close()
            raise RuntimeError("the echo server did not start")
        return self

    @property
    def pid(self) -> int:
        return int(self.proc.pid or 0)

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.stop.set()
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)


class FakeAgentManager(EchoServer):
    """agent-manager for the ``create_agent`` scenario: every username is free, at once."""

    def __init__(self, url: str, prefetch: int) -> None:
        super().__init__(url, prefetch, AGENT_QUEUE, NO_AGENTS)
