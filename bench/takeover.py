"""Time the Go takeover on a Go-sized database: ``customer-control db migrate`` (expand,
revocation of deleted tenants' keys) and ``db migrate --contract``.

    python bench/takeover.py [--customers 20000] [--keys-per-customer 2] [--deleted 0.1]

Builds a scratch database ``cm_bench_takeover_<hex>`` on the local MySQL with the Go schema
and Go-written rows (bulk inserts), uses Redis DB 14 as the daemons' cache, and drops the
database at the end. Run it under ``flock /tmp/cm-servers.lock`` on a shared machine.
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mysql.connector

from tests.support.go_like import SENTINEL, GoService, go_token

STAMP = "2024-04-18 03:22:17.9951234"  # as Go writes it
CTL = [str(Path(sys.executable).parent / "customer-control")]


def fill(go: GoService, customers: int, keys: int, deleted: float) -> None:
    rows, key_rows = [], []
    for i in range(customers):
        cid = uuid.uuid4()
        gone = i < customers * deleted
        rows.append((cid.bytes, f"c{i}@example.com", STAMP, STAMP if gone else SENTINEL))
        for _ in range(keys):
            key_rows.append((uuid.uuid4().bytes, cid.bytes, go_token(), STAMP, SENTINEL))
    go.conn.cursor().executemany(
        "INSERT INTO customer_customers (id, email, billing_account_id, webhook_method,"
        " tm_create, tm_update, tm_delete) VALUES (%s, %s, REPEAT(CHAR(0), 16), 'POST',"
        " %s, '9999-01-01', %s)",
        rows,
    )
    go.conn.cursor().executemany(
        "INSERT INTO customer_accesskeys (id, customer_id, name, token, tm_expire, tm_create,"
        " tm_update, tm_delete) VALUES (%s, %s, 'go', %s, '9999-01-01', %s, '9999-01-01', %s)",
        key_rows,
    )


def timed(dsn: str, *args: str) -> float:
    env = {"DATABASE_DSN": dsn, "REDIS_ADDRESS": "127.0.0.1:6379", "REDIS_DATABASE": "14"}
    started = time.monotonic()
    done = subprocess.run([*CTL, *args], env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    print(f"  {' '.join(args)}: {elapsed:.1f} s; {done.stdout.strip() or done.stderr.strip()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--keys-per-customer", type=int, default=2)
    parser.add_argument("--deleted", type=float, default=0.1)
    args = parser.parse_args()
    name = f"cm_bench_takeover_{secrets.token_hex(3)}"
    admin = mysql.connector.connect(host="127.0.0.1", port=3306, user="root", password="")
    admin.cursor().execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    dsn = f"root:@tcp(127.0.0.1:3306)/{name}"
    try:
        go = GoService(dsn, "127.0.0.1:6379", 14)
        go.create_schema()
        fill(go, args.customers, args.keys_per_customer, args.deleted)
        keys = args.customers * args.keys_per_customer
        print(f"{args.customers} customers ({args.deleted:.0%} deleted), {keys} Go keys")
        timed(dsn, "db", "migrate")
        timed(dsn, "db", "migrate")
        timed(dsn, "db", "migrate", "--contract", "--go-stopped")
        go.close()
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()


if __name__ == "__main__":
    main()
