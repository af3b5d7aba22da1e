"""Running a step's sub-generator to the end in a test: its events and its return value."""

from __future__ import annotations

from collections.abc import Generator
from typing import TypeVar

E = TypeVar("E")
R = TypeVar("R")


def drain(gen: Generator[E, None, R]) -> tuple[list[E], R]:
    """Every event ``gen`` yields, then the value it returns."""
    events: list[E] = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return events, stop.value
