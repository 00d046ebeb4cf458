"""The daemon's log handler: JSON lines written in batches, never lost at a flush."""

from __future__ import annotations

import io
import json
import logging

from customer_manager.logs import BatchingStreamHandler, JsonFormatter
from tests.support.waiting import wait_until


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def _logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"test-logs-{id(handler)}")
    logger.propagate = False
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    return logger


def test_info_lines_are_written_in_one_batch_and_a_warning_flushes_at_once() -> None:
    stream = CountingStream()
    handler = BatchingStreamHandler(stream, max_delay=60)
    handler.setFormatter(JsonFormatter())
    log = _logger(handler)
    for i in range(50):
        log.info("rpc %d", i, extra={"status": 200})
    assert stream.writes == 0
    log.warning("something odd")
    assert stream.writes == 1
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["message"] for line in lines[:3]] == ["rpc 0", "rpc 1", "rpc 2"]
    assert lines[0]["status"] == 200 and lines[-1]["severity"] == "WARNING"
    assert len(lines) == 51
    handler.close()


def test_a_batch_is_written_after_max_delay_and_at_close() -> None:
    stream = CountingStream()
    handler = BatchingStreamHandler(stream, max_delay=0.1)
    log = _logger(handler)
    log.info("first")
    wait_until(stream.getvalue, 5, "the batch written after max_delay", every=0.02)
    assert stream.getvalue() == "first\n"
    log.info("last")
    handler.close()  # logging.shutdown closes handlers at exit
    assert stream.getvalue() == "first\nlast\n"


def test_size_limit_writes_a_full_batch() -> None:
    stream = CountingStream()
    handler = BatchingStreamHandler(stream, max_delay=60, max_bytes=1000)
    log = _logger(handler)
    for _ in range(30):
        log.info("x" * 99)
    assert stream.writes == 3  # every 10 lines of 100 bytes
    handler.close()
