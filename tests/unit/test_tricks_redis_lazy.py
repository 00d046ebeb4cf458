"""The redis-lazy-imports trick (customer_manager/tricks/redis_lazy.py): the daemon's imports
leave ``redis.asyncio``'s package code and ``importlib.metadata`` unrun, and whoever uses them
still gets them whole. Each check runs in a fresh process, started as the entry points start."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest

from customer_manager.tricks import mysql_cext, redis_lazy


def _run(code: str) -> str:
    prelude = "import sys\nfrom customer_manager import launch\nlaunch.preload_mysql()\n"
    done = subprocess.run(
        [sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_daemon_imports_leave_both_unrun() -> None:
    code = (
        "import customer_manager.main\n"
        "from customer_manager import tricks\n"
        "state = tricks.install()\n"
        "unrun = [n for n in ('redis.asyncio', 'importlib.metadata')\n"
        "         if '__getattr__' in vars(sys.modules[n])]\n"
        "loaded = [m for m in ('redis.asyncio.client', 'redis.asyncio.cluster', 'zipfile', 'csv')\n"
        "          if m in sys.modules]\n"
        "print(state['redis-lazy-imports'], unrun, loaded)\n"
    )
    assert _run(code) == "True ['redis.asyncio', 'importlib.metadata'] []"


def test_a_sync_client_talks_to_redis_without_loading_them() -> None:
    code = (
        "from customer_manager.storage.cache_backend import RedisCache\n"
        "cache = RedisCache('127.0.0.1:6379', database=15)\n"
        "cache.ping()\n"
        "print('__getattr__' in vars(sys.modules['importlib.metadata']))\n"
    )
    assert _run(code) == "True"


def test_their_users_get_them_whole() -> None:
    code = (
        "import redis, importlib.metadata\n"
        "from redis.asyncio import Redis\n"
        "from importlib.metadata import version\n"
        "import redis.asyncio.client as client\n"
        "print(Redis is client.Redis, redis.asyncio.from_url.__module__,\n"
        "      version('redis') == importlib.metadata.version('redis') == redis.__version__,\n"
        "      '__getattr__' in vars(redis.asyncio), hasattr(redis.asyncio, 'nothing'))\n"
    )
    assert _run(code) == "True redis.asyncio.utils True False False"


def test_threads_asking_at_once_all_get_the_module() -> None:
    code = (
        "import threading, redis\n"
        "got = []\n"
        "start = threading.Barrier(8)\n"
        "def ask():\n"
        "    start.wait()\n"
        "    got.append(redis.asyncio.Redis)\n"
        "threads = [threading.Thread(target=ask) for _ in range(8)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        "print(len(got), len(set(got)))\n"
    )
    assert _run(code) == "8 1"


def test_nothing_is_deferred_once_redis_is_imported() -> None:
    code = (
        "import redis\n"
        "from customer_manager.tricks import redis_lazy\n"
        "print(redis_lazy.defer(), 'redis.asyncio.client' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", "import sys\n" + code], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.split() == ["[]", "True"], done.stderr


@pytest.mark.parametrize(
    "distribution", ["mysql-connector-python", "pika", "pykka", "redis", "prometheus_client"]
)
def test_installed_version_reads_what_importlib_metadata_reads(distribution: str) -> None:
    assert mysql_cext.installed_version(distribution) == metadata.version(distribution)


def test_installed_version_of_a_missing_distribution() -> None:
    assert mysql_cext.installed_version("no-such-distribution-here") == "not installed"


def test_the_range_is_redis_direct_commands() -> None:
    """Both redis tricks were measured on the same redis-py."""
    from customer_manager import tricks

    direct = next(t for t in tricks.TRICKS if t.name == "redis-direct-command")
    assert direct.measured == redis_lazy.MEASURED
