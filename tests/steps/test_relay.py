"""relay: items from a helper thread arrive in order; its exception reaches the consumer."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from steps.relay import relay


def test_items_arrive_in_order_from_another_thread() -> None:
    seen_in: list[str] = []

    def work(emit: Callable[[int], None]) -> None:
        seen_in.append(threading.current_thread().name)
        for n in range(5):
            emit(n)

    assert list(relay(work, "helper")) == [0, 1, 2, 3, 4]
    assert seen_in == ["helper"]


def test_the_helpers_exception_is_raised_after_its_items() -> None:
    def work(emit: Callable[[str], None]) -> None:
        emit("first")
        raise OSError(28, "No space left on device")

    got: list[str] = []
    with pytest.raises(OSError, match="No space left"):
        for item in relay(work, "helper"):
            got.append(item)
    assert got == ["first"]
