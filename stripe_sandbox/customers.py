"""Deleted customers.

localstripe behaviour replaced (:func:`install`): ``Customer._api_delete``/``_api_retrieve``: a
deleted customer is still retrievable, as Stripe's ``{"id": ..., "object": "customer",
"deleted": true}`` stub (localstripe: 404).
"""

from __future__ import annotations

from typing import Any

from localstripe import resources as ls


def install() -> None:
    """Keep a deleted customer's stub retrievable (called once)."""
    # Stripe keeps answering GET /v1/customers/{id} after a delete, with a deleted stub.
    original_customer_delete = ls.Customer._api_delete.__func__
    original_customer_retrieve = ls.Customer._api_retrieve.__func__

    def customer_delete(cls: Any, id: str) -> Any:
        deleted = original_customer_delete(cls, id)
        ls.store[f"_deleted_customer:{id}"] = deleted
        return deleted

    def customer_retrieve(cls: Any, id: str) -> Any:
        tombstone = ls.store.get(f"_deleted_customer:{id}")
        return tombstone if tombstone is not None else original_customer_retrieve(cls, id)

    ls.Customer._api_delete = classmethod(customer_delete)
    ls.Customer._api_retrieve = classmethod(customer_retrieve)
