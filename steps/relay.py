"""Run blocking work in a thread while a step's generator keeps yielding.

A step is a generator consumed by one thread (a front end's worker). Work that blocks for long
— gzip of the overlay, a virtual Pi that must live in another network namespace — runs in a
helper thread instead and hands its items back through a queue; the generator yields them as
they come and re-raises the helper's exception, so the step behaves as if it had done the work
itself.

``Background`` is the same idea for one result wanted later: work a step starts before its turn
(the network step's read-only checks, begun when the run begins) and collects when it gets there.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from steps.errors import Cancelled

T = TypeVar("T")

_DONE = object()


def relay(work: Callable[[Callable[[T], None]], None], name: str) -> Iterator[T]:
    """Run ``work(emit)`` in a daemon thread; yield everything it emits, in order.

    Raises:
        Whatever ``work`` raised, in the consuming thread, after the helper has finished.
    """
    items: queue.Queue[object] = queue.Queue()

    def target() -> None:
        try:
            work(items.put)
        except BaseException as exc:  # handed to the consuming thread
            items.put(exc)
        finally:
            items.put(_DONE)

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    while (item := items.get()) is not _DONE:
        if isinstance(item, BaseException):
            thread.join()
            raise item
        yield item  # type: ignore[misc]
    thread.join()


class Background(Generic[T]):
    """``work()`` running in a daemon thread from now on; ``result()`` waits for it."""

    def __init__(self, work: Callable[[], T], name: str) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), name=name, daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], T]) -> None:
        try:
            self._value = work()
        except BaseException as exc:  # handed to whoever collects the result
            self._error = exc

    def result(self, cancel: threading.Event | None = None) -> T:
        """What ``work`` returned, or what it raised, once it has finished.

        Raises:
            Cancelled: ``cancel`` was set while waiting (the work is left to finish on its own).
        """
        while self._thread.is_alive():
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            self._thread.join(0.05)
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]
