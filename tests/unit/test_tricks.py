"""The fence around the library tricks (customer_manager/tricks): pinned to the versions they
were measured on, installed only by an explicit ``install()`` that refuses other versions, and
pykka's inbox hook behaving as the waking inbox needs."""

from __future__ import annotations

import configparser
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest

from customer_manager import tricks
from customer_manager.actors.kit.members import PoolMember
from customer_manager.actors.service.router import RouterActor
from customer_manager.tricks import mysql_cext, pika_io, pykka_inbox, redis_direct

ROOT = Path(__file__).resolve().parents[2]


def requirements() -> dict[str, str]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    lines = config["options"]["install_requires"].split("\n")
    found = {}
    for line in filter(None, (line.strip() for line in lines)):
        name = line.split(">")[0].split("<")[0].split("=")[0]
        found[name] = line
    return found


@pytest.mark.parametrize(
    "trick", [*tricks.TRICKS, tricks.MYSQL_C_EXTENSION, tricks.REDIS_LAZY_IMPORTS], ids=str
)
def test_the_library_is_pinned_to_the_measured_versions(trick: tricks.Trick) -> None:
    low, high = trick.measured
    assert requirements()[trick.distribution] == f"{trick.distribution}>={low},<{high}"
    assert mysql_cext.in_range(mysql_cext.installed_version(trick.distribution), trick.measured)


def test_version_ranges() -> None:
    assert mysql_cext.version_tuple("26.10.0") == (26, 10, 0)
    assert mysql_cext.version_tuple("1.5.0rc1") == (1, 5)
    assert mysql_cext.in_range("1.4.4", ("1.4.4", "1.5"))
    assert not mysql_cext.in_range("1.4.3", ("1.4.4", "1.5"))
    assert not mysql_cext.in_range("1.5.0", ("1.4.4", "1.5"))
    assert mysql_cext.in_range("8.1.9", ("8.1", "8.2"))


@pytest.fixture
def reinstall() -> Iterator[None]:
    yield
    tricks.install()


def test_install_refuses_a_version_it_was_not_measured_on(
    reinstall: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = tricks.installed_version
    monkeypatch.setattr(tricks, "installed_version", lambda d: "1.5.0" if d == "pika" else real(d))
    with caplog.at_level(logging.INFO, logger="customer_manager.tricks"):
        state = tricks.install()
    assert state["pika-joined-send+channel-core"] is False
    assert state["pykka-waking-inbox"] and state["redis-direct-command"]
    assert not pika_io.joined_send_on() and pykka_inbox.enabled() and redis_direct.enabled()
    assert "trick pika-joined-send+channel-core skipped: pika 1.5.0" in caplog.text
    assert "MySQL driver: " in caplog.text


def test_install_turns_every_trick_on(reinstall: None) -> None:
    for trick in tricks.TRICKS:
        tricks.switches(trick)[1]()
    state = tricks.install()
    assert all(state[t.name] for t in tricks.TRICKS)
    assert pika_io.joined_send_on() and pykka_inbox.enabled() and redis_direct.enabled()


QUIET = object()


class Probe(pykka_inbox.WakingInboxActor):
    def __init__(self, wake: Any = None) -> None:
        super().__init__()
        if wake is not None:
            self.set_waker(wake, quiet=QUIET)

    def on_receive(self, message: Any) -> Any:
        return message


def test_pykka_creates_the_inbox_through_the_hook_and_wakes_on_messages() -> None:
    """pykka calls ``_create_actor_inbox`` in ``Actor.__init__`` and puts every tell and ask
    into it as an envelope whose ``message`` is the message."""
    pykka_inbox.enable()
    woken = threading.Semaphore(0)
    ref = Probe.start(woken.release)
    assert isinstance(ref.actor_inbox, pykka_inbox.WakingInbox)
    try:
        ref.tell(QUIET)
        assert not woken.acquire(timeout=0.2)
        assert ref.ask("hello", timeout=5) == "hello"
        assert woken.acquire(timeout=0)
        ref.tell("again")
        assert woken.acquire(timeout=5)
    finally:
        ref.stop(timeout=5)


class Plain(pykka_inbox.SimpleInboxActor):
    def on_receive(self, message: Any) -> Any:
        if message == "slow":
            time.sleep(0.2)
        return message


def test_the_request_path_actors_take_the_c_inbox_and_pykka_drains_it_at_stop() -> None:
    """The router and pool members get a ``queue.SimpleQueue`` (pykka only puts, gets and
    asks ``empty`` of it); an ask still queued when the actor stops fails as with pykka's."""
    assert issubclass(RouterActor, pykka_inbox.SimpleInboxActor)
    assert issubclass(PoolMember, pykka_inbox.SimpleInboxActor)
    pykka_inbox.enable()
    ref = Plain.start()
    assert type(ref.actor_inbox) is queue.SimpleQueue
    assert ref.ask("hello", timeout=5) == "hello"
    slow = ref.ask("slow", block=False)
    ref.stop(block=False)  # queued after "slow"
    late = ref.ask("late", block=False)
    assert slow.get(timeout=5) == "slow"
    with pytest.raises(pykka.ActorDeadError):
        late.get(timeout=5)


@pytest.mark.parametrize("actor", [Probe, Plain])
def test_without_the_trick_the_inbox_is_pykkas_own(actor: type[pykka.ThreadingActor]) -> None:
    pykka_inbox.disable()
    try:
        ref = actor.start()
        assert type(ref.actor_inbox) is queue.Queue
        ref.stop(timeout=5)
    finally:
        pykka_inbox.enable()


_IMPORT_ONLY = """
import os, sys
before = dict(os.environ)
import customer_manager.main, customer_manager.cli, customer_manager.bootstrap
from customer_manager.tricks import pika_io, pykka_inbox, redis_direct
assert dict(os.environ) == before, "importing changed os.environ"
assert not pika_io.joined_send_on(), "importing patched pika"
assert not pykka_inbox.enabled() and not redis_direct.enabled(), "importing turned tricks on"
"""


def test_importing_the_package_installs_nothing() -> None:
    done = subprocess.run([sys.executable, "-c", _IMPORT_ONLY], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_entry_points_can_still_load_the_c_extension_first() -> None:
    """``customer_manager.launch`` loads nothing that loads OpenSSL before its preload."""
    code = "import sys, customer_manager.launch; print(*(m in sys.modules for m in LIBSSL))"
    done = subprocess.run(
        [sys.executable, "-c", f"LIBSSL = ('_ssl', '_hashlib'); {code}"],
        capture_output=True,
        text=True,
    )
    assert done.stdout.split() == ["False", "False"], done.stderr


def test_the_preload_drops_the_cached_pages_of_the_extension_and_its_openssl_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Seventh session: the page cache pip leaves behind made these files 3.3 MiB of RSS."""
    dropped: list[str] = []

    def fadvise(fd: int, offset: int, length: int, advice: int) -> None:
        assert (offset, length, advice) == (0, 0, os.POSIX_FADV_DONTNEED)
        dropped.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))

    monkeypatch.setattr(os, "posix_fadvise", fadvise)
    mysql_cext._drop_cached_pages()
    assert dropped[0].startswith("_mysql_connector.")
    assert sorted(dropped[1:]) == ["libcrypto.so.3", "libssl.so.3"]
