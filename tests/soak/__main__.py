"""``python -m tests.soak --seed N --seconds 600``: a soak by hand (see soak_run)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tests.soak.soak_run import report, run


@click.command()
@click.option("--seed", type=int, default=18, show_default=True)
@click.option("--seconds", type=float, default=600, show_default=True)
@click.option("--clients", type=int, default=6, show_default=True)
@click.option("--redis_db", type=int, default=11, show_default=True, help="not 15 (the tests')")
@click.option("--logs", type=click.Path(path_type=Path), default=Path("/tmp/cm-soak"))
def main(seed: int, seconds: float, clients: int, redis_db: int, logs: Path) -> None:
    """Run the chaos soak; exit 1 if any checker found something."""
    result = run(seed, seconds, clients, redis_db, logs / f"seed-{seed}")
    click.echo(report(result, logs / f"seed-{seed}" / "history.jsonl"))
    sys.exit(1 if result.failed else 0)


main()
