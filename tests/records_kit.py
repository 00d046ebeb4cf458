"""A customer record with every field filled, for tests that put rows straight into a store
(importable from every test directory: tests/ is on sys.path through its conftest)."""

from __future__ import annotations

import uuid
from typing import Any

from customer_manager.messages.records import (
    NIL,
    SENTINEL,
    Customer,
    Metadata,
    new_webhook_secret,
    now,
)


def customer_record(email: str = "alice@example.com", **fields: Any) -> Customer:
    """An active, verified customer created now; ``fields`` override."""
    base: dict[str, Any] = {
        "id": uuid.uuid4(),
        "email": email,
        "webhook_secret": new_webhook_secret(),
        "billing_account_id": NIL,
        "email_verified": True,
        "status": "active",
        "identity_verification_status": "none",
        "metadata": Metadata(),
        "tm_deletion_scheduled": SENTINEL,
        "tm_create": now(),
        "tm_update": SENTINEL,
        "tm_delete": SENTINEL,
    }
    return Customer(**{**base, **fields})
