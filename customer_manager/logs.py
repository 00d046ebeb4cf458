"""Logging: JSON lines on stderr (Google Cloud Logging keys), secrets masked, written in
batches.

Threading contract: ``BatchingStreamHandler`` is called from any thread (logging's handler
lock guards it); its timer thread only calls ``flush``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from collections.abc import Iterable
from typing import IO, Any

import msgspec

from customer_manager.config import Settings, parse_dsn

_TOKEN = re.compile(r"vb_[A-Za-z0-9_\-]{8,}")
_STD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_JSON = msgspec.json.Encoder(enc_hook=str)


class JsonFormatter(logging.Formatter):
    """One JSON object per line (Google Cloud Logging keys), secrets replaced by ``***``:
    the given ``secrets`` (DSN and Redis passwords) and anything shaped like a token."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]
        self._second: tuple[int, str] = (-1, "")  # the last second formatted (per-line cost)

    def format(self, record: logging.LogRecord) -> str:
        second, text = self._second
        if int(record.created) != second:
            second = int(record.created)
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, text)
        fields = vars(record)
        entry: dict[str, Any] = {
            "time": f"{text}.{int(record.msecs):03d}Z",
            "severity": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        extra = fields.keys() - _STD_ATTRS
        if extra:
            entry.update((k, fields[k]) for k in sorted(extra))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return self.mask(_JSON.encode(entry).decode())

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
            text = text.replace(json.dumps(secret)[1:-1], "***")
        return _TOKEN.sub("vb_***", text) if "vb_" in text else text


def configure_logging(settings: Settings, level: int = logging.INFO) -> None:
    """JSON lines on stderr for the whole process; pika's chatter only when CRITICAL."""
    secrets = [settings.redis_password]
    if settings.database_dsn:
        secrets.append(parse_dsn(settings.database_dsn).password)
    handler = BatchingStreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(secrets))
    root = logging.getLogger()
    for old in root.handlers:
        if isinstance(old, BatchingStreamHandler):
            old.close()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # One line per RPC is on the hot path: skip what the JSON lines never show (the logging
    # HOWTO's "Optimization" section: caller lookup, thread, process and multiprocessing names).
    logging._srcfile = None
    logging.logProcesses = logging.logMultiprocessing = logging.logThreads = False
    # pika logs each failed connection attempt as several ERRORs with tracebacks; the AMQP
    # link (actors/amqp/link.py) logs one WARNING per attempt with the reason instead.
    logging.getLogger("pika").setLevel(logging.CRITICAL)


class BatchingStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that writes lines in batches: one write(2) per batch instead of one
    per line (the access log writes a line per request). A batch is written when a WARNING or
    worse arrives, when it holds ``max_bytes``, or ``max_delay`` seconds after its first line
    (a timer thread); ``flush`` (called by ``logging.shutdown`` at exit) writes it at once."""

    def __init__(
        self, stream: IO[str], *, max_delay: float = 0.2, max_bytes: int = 1 << 16
    ) -> None:
        super().__init__(stream)
        self.max_delay, self.max_bytes = max_delay, max_bytes
        self._lines: list[str] = []
        self._size = 0
        self._first = 0.0
        self._closed = False
        self._timer = threading.Thread(target=self._tick, name="log-flush", daemon=True)
        self._timer.start()

    def emit(self, record: logging.LogRecord) -> None:  # called with the handler lock held
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        if not self._lines:
            self._first = time.monotonic()
        self._lines.append(line)
        self._size += len(line) + 1
        if record.levelno >= logging.WARNING or self._size >= self.max_bytes:
            self._write()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write()

    def close(self) -> None:
        self._closed = True
        self.flush()
        super().close()

    def _write(self) -> None:
        if not self._lines:
            return
        text = "\n".join(self._lines) + "\n"
        self._lines.clear()
        self._size = 0
        try:
            self.stream.write(text)
            self.stream.flush()
        except Exception:  # as logging does: a failed log write never breaks the caller
            if logging.raiseExceptions and sys.__stderr__ is not None:
                sys.__stderr__.write("customer-manager: writing the log failed\n")

    def _tick(self) -> None:
        while not self._closed:
            time.sleep(self.max_delay / 2)
            if self._lines and time.monotonic() - self._first >= self.max_delay:
                self.flush()
