"""Run blocking work in a thread while a step's generator keeps yielding.

A step is a generator consumed by one thread (a front end's worker). Work that blocks for long
— gzip of the overlay, a virtual Pi that must live in another network namespace — runs in a
helper thread instead and hands its items back through a queue; the generator yields them as
they come and re-raises the helper's exception, so the step behaves as if it had done the work
itself.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

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
