"""The newest-Go stand-in on a real MySQL and Redis (tests/support/go_current.py): the schema is the
newest upstream one, the writer writes as Go does (docs/profiles.md#mysql), its cache entries pass
the Go reader, and its ``cleanup_unverified`` selects what Go's does. Nothing of ours runs here."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.support.go_current import (
    ACCESSKEY_INSERT,
    CUSTOMER_INSERT,
    UPSTREAM_ACCESSKEY_COLUMNS,
    UPSTREAM_CUSTOMER_COLUMNS,
    UPSTREAM_INDEXES,
    GoCurrent,
    decode_cache_accesskey,
    decode_cache_customer,
    go_now,
    sha256_hex,
)

pytestmark = pytest.mark.integration


def columns(go: GoCurrent, table: str) -> list[str]:
    rows = go.sql(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE()"
        " AND table_name = %s ORDER BY ordinal_position",
        (table,),
    )
    return [str(r[0]) for r in rows]


def test_schema_is_the_newest_upstream_one(go_current: GoCurrent) -> None:
    assert columns(go_current, "customer_customers") == UPSTREAM_CUSTOMER_COLUMNS
    assert columns(go_current, "customer_accesskeys") == UPSTREAM_ACCESSKEY_COLUMNS
    assert sorted(CUSTOMER_INSERT) == sorted(UPSTREAM_CUSTOMER_COLUMNS)
    assert sorted(ACCESSKEY_INSERT) == sorted(UPSTREAM_ACCESSKEY_COLUMNS)
    for table, expected in UPSTREAM_INDEXES.items():
        rows = go_current.sql(
            "SELECT index_name, non_unique FROM information_schema.statistics"
            " WHERE table_schema = DATABASE() AND table_name = %s",
            (table,),
        )
        assert {str(r[0]) for r in rows} == expected
        assert all(int(r[1]) == 1 for r in rows if r[0] != "PRIMARY")  # token_hash: not unique


def test_writer_writes_as_the_newest_go(go_current: GoCurrent) -> None:
    alice = go_current.insert_customer("alice@example.com")
    [raw] = go_current.sql(
        "SELECT email_verified, status, identity_verification_status, metadata, tm_update,"
        " tm_delete, tm_deletion_scheduled, webhook_secret FROM customer_customers"
        " WHERE id = %s",
        (alice.bytes,),
    )
    verified, status, identity, metadata, *times, secret = raw
    assert (verified, status, identity) == (1, "active", "none")
    assert json.loads(metadata) == {"rtp_debug": False}
    assert times == [None, None, None] and len(str(secret)) == 32

    key_id, token = go_current.insert_accesskey(alice)
    [(stored_hash, prefix)] = go_current.sql(
        "SELECT token_hash, token_prefix FROM customer_accesskeys WHERE id = %s", (key_id.bytes,)
    )
    assert stored_hash == sha256_hex(token) and prefix == token[:11]

    # Go's cache entries pass the strict reader (the same reader our output must pass)
    entry = go_current.redis.get(f"customer:{alice}")
    assert entry is not None and decode_cache_customer(entry) == go_current.customer(alice)
    key_entry = go_current.redis.get(f"customer_accesskey:{key_id}")
    assert key_entry is not None and b"token_hash" not in key_entry
    cached_key = decode_cache_accesskey(key_entry)
    assert cached_key.token_prefix == token[:11] and cached_key.tm_update is None
    assert 0 < int(go_current.redis.ttl(f"customer:{alice}")) <= 86400

    # the auth lookup as a newest Go replica answers it; deleted keys drop out
    assert [k.id for k in go_current.accesskeys_by_token_hash(sha256_hex(token))] == [key_id]
    go_current.delete_accesskey(key_id)
    assert go_current.accesskeys_by_token_hash(sha256_hex(token)) == []
    gone_key = go_current.accesskey(key_id)
    assert gone_key is not None and gone_key.tm_delete is not None

    go_current.delete_customer(alice)
    gone = go_current.customer(alice)
    assert gone is not None and gone.deleted and gone.status == "deleted"
    assert decode_cache_customer(go_current.redis.get(f"customer:{alice}") or b"").deleted


def test_cleanup_unverified_selects_as_go(go_current: GoCurrent) -> None:
    now = go_now()
    old_signup = go_current.insert_customer(
        "old@example.com", signup=True, created=now - timedelta(hours=2)
    )
    new_signup = go_current.insert_customer("new@example.com", signup=True)
    verified = go_current.insert_customer("ok@example.com", created=now - timedelta(hours=2))
    assert go_current.cleanup_unverified(now) == [old_signup]
    expired = go_current.customer(old_signup)
    assert expired is not None and expired.status == "expired" and expired.deleted
    later = go_current.cleanup_unverified(now + timedelta(hours=2))
    assert later == [new_signup]  # the verified one never goes
    kept = go_current.customer(verified)
    assert kept is not None and kept.status == "active" and not kept.deleted


def test_malformed_metadata_fails_the_go_read(go_current: GoCurrent) -> None:
    from tests.support.go_current import GoRowError

    alice = go_current.insert_customer("alice@example.com")
    go_current.sql(
        "UPDATE customer_customers SET metadata = %s WHERE id = %s",
        ('{"rtp_debug":1}', alice.bytes),
    )
    with pytest.raises(GoRowError):
        go_current.customer(alice)
    go_current.sql("UPDATE customer_customers SET metadata = NULL WHERE id = %s", (alice.bytes,))
    read = go_current.customer(alice)
    assert read is not None and read.metadata == {"rtp_debug": False}
