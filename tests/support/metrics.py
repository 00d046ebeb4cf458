"""Prometheus samples of this process, read through the public registry API."""

from __future__ import annotations

from prometheus_client import REGISTRY

from customer_manager import metrics


def sample(name: str, **labels: str) -> float | None:
    """The value of sample ``name`` with exactly ``labels``, None if it was never exported
    (the deferred updates applied first, as a scrape does)."""
    metrics.settle()
    value: float | None = REGISTRY.get_sample_value(name, labels)
    return value


def count(name: str, **labels: str) -> float:
    """A counter's sample, 0 while no child with ``labels`` exists yet."""
    return sample(name, **labels) or 0.0


def total(name: str) -> float:
    """The sum of every sample called ``name`` (a counter's ``_total`` over all labels)."""
    metrics.settle()
    return sum(s.value for m in REGISTRY.collect() for s in m.samples if s.name == name)
