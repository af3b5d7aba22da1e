"""``StepRunner.stream``: an endless producer's items reach the screen in order, in batches."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from textual import on
from textual.app import App, ComposeResult

from steps.errors import UsageError
from tests.wizard.conftest import wait_for
from wizard.messages import Streamed, StreamEnded
from wizard.widgets.step_runner import StepRunner


class Host(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.items: list[Any] = []
        self.by_stream: dict[int, list[Any]] = {}
        self.batches = 0
        self.ended: list[StreamEnded] = []

    def compose(self) -> ComposeResult:
        yield StepRunner(clock=lambda: 0.0, visible=False)

    @on(Streamed)
    def _items(self, message: Streamed) -> None:
        self.batches += 1
        self.items.extend(message.items)
        self.by_stream.setdefault(message.stream, []).extend(message.items)

    @on(StreamEnded)
    def _ended(self, message: StreamEnded) -> None:
        self.ended.append(message)


async def test_items_arrive_in_order_in_few_batches_then_the_end() -> None:
    def produce(cancel: threading.Event) -> Iterator[int]:
        yield from range(50_000)
        raise UsageError("the source went away")

    app = Host()
    async with app.run_test() as pilot:
        sid = app.query_one(StepRunner).stream("numbers", produce)
        await wait_for(pilot, lambda: app.ended, 120)
    assert app.items == list(range(50_000))
    assert app.batches < 5_000  # batches, never a message per item
    (end,) = app.ended
    assert (end.key, end.stream, end.cancelled) == ("numbers", sid, False)
    assert end.error is not None and end.error.message == "the source went away"


async def test_a_new_stream_cancels_the_previous_one() -> None:
    closed = threading.Event()

    def forever(cancel: threading.Event) -> Iterator[int]:
        try:
            n = 0
            while True:
                n += 1
                yield n
                cancel.wait(0.001)
        finally:
            closed.set()  # the generator is closed in its thread when cancelled

    app = Host()
    async with app.run_test() as pilot:
        runner = app.query_one(StepRunner)
        first = runner.stream("live", forever)
        await wait_for(pilot, lambda: len(app.items) > 10)
        second = runner.stream("live", lambda cancel: iter(["done"]))
        await wait_for(pilot, lambda: {e.stream for e in app.ended} == {first, second}, 60)
    assert closed.is_set()
    ends = {e.stream: e for e in app.ended}
    assert ends[first].cancelled and not ends[second].cancelled
    assert app.by_stream[second] == ["done"]  # a screen tells the runs apart by their id
