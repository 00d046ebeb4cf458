"""The on/off state of a trick whose callers check it (``tricks.install()`` turns it on)."""

from __future__ import annotations


class Switch:
    def __init__(self) -> None:
        self.on = False

    def enable(self) -> None:
        self.on = True

    def disable(self) -> None:
        self.on = False
