"""The chaos soak in CI: 60 seconds, a fixed seed, every checker must find nothing
(soak_run). By hand, longer: ``python -m tests.soak --seed N --seconds 600``."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.soak.soak_run import report, run

pytestmark = pytest.mark.integration

SEED = 1818
SECONDS = 60
REDIS_DB = 12  # the soak's own index (the other tests use 15)


@pytest.mark.timeout(SECONDS + 240)
def test_chaos_soak_history_matches_the_database(
    amqp_url: str,
    mysql_dsn: str,
    redis_address: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if shutil.which("rabbitmqctl") is None:
        missing = pytest.fail if os.environ.get("CI") == "true" else pytest.skip
        missing("rabbitmqctl is needed to create the soak's vhost")
    result = run(SEED, SECONDS, clients=6, redis_db=REDIS_DB, logs=tmp_path)
    text = report(result, tmp_path / "history.jsonl")
    with capsys.disabled():
        sys.stdout.write(f"\n{text}\n")
    assert not result.failed, text
