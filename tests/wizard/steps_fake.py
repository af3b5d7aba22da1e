"""Steps for the wizard tests that behave like the real ones where the UI can tell.

``FakeRemaster`` writes a boot tree with a manifest and puts a ``BuildResult`` (what the Deploy
and Summary screens read); ``BlockingStep`` stays inside ``run`` until the run's cancel flag is
set and records that it saw it; ``BusyStep`` keeps its thread busy (pure-Python work) while
flooding the UI with progress and log events, for the responsiveness measurement.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from steps.answers import build_digest, resolve_path
from steps.artifacts import BuildResult
from steps.base import StepContext
from steps.errors import Cancelled, FirecoreError
from steps.events import Event, LogLine, Progress, Result

#: A step left running this long was forgotten by its test (only a hang-stopper: minutes).
HUNG_AFTER = 240.0


@dataclass
class FakeRemaster:
    """Writes ``build.output`` (two files + manifest.json) and puts a BuildResult."""

    name: str = "remaster"
    title: str = "Remaster"
    error: FirecoreError | None = None
    runs: int = 0

    def run(self, ctx: StepContext) -> Iterator[Event]:
        self.runs += 1
        yield LogLine(self.name, "mcopy -s -n -i piCore.img@@4194304 ::/ boot", "cmd")
        yield Progress(self.name, "pack", 5_000_000, 10_000_000)
        if self.error is not None:
            raise self.error
        out = resolve_path(ctx.answers.build.output)
        out.mkdir(parents=True, exist_ok=True)
        files = {"config.txt": b"[all]\ninitramfs rootfs.gz,overlay.gz followkernel\n"}
        files["overlay.gz"] = b"overlay of " + ctx.answers.app.hostname.encode()
        for name, data in files.items():
            (out / name).write_bytes(data)
        manifest = {
            "build_id": "3f2a9c1d",
            "answers_digest": build_digest(ctx.answers),
            "files": {
                n: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)}
                for n, d in files.items()
            },
        }
        (out / "manifest.json").write_text(json.dumps(manifest))
        yield Progress(self.name, "pack", 10_000_000, 10_000_000)
        size = sum(len(d) for d in files.values())
        ctx.results.put(BuildResult(out, out / "manifest.json", "3f2a9c1d", len(files), size, True))
        yield Result(self.name, f"boot tree {out} (build 3f2a9c1d)", {"build_id": "3f2a9c1d"})


@dataclass
class BlockingStep:
    """Yields its events, then waits for the cancel flag (and records that it saw it)."""

    name: str
    title: str = "Blocking"
    events: list[Event] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)
    saw_cancel: threading.Event = field(default_factory=threading.Event)

    def run(self, ctx: StepContext) -> Iterator[Event]:
        yield from self.events
        self.started.set()
        if not ctx.cancel.wait(HUNG_AFTER):
            raise AssertionError("nobody cancelled the step")
        self.saw_cancel.set()
        raise Cancelled()


@dataclass
class BusyStep:
    """Pure-Python work in the worker thread while posting a flood of events, until cancelled."""

    name: str = "remaster"
    title: str = "Remaster"
    events_sent: int = 0
    started: threading.Event = field(default_factory=threading.Event)

    def run(self, ctx: StepContext) -> Iterator[Event]:
        self.started.set()
        total = 1_000_000_000
        done = 0
        deadline = time.monotonic() + HUNG_AFTER
        while time.monotonic() < deadline:
            ctx.check_cancel()
            acc = 0
            for i in range(20_000):  # holds the GIL like the Python parts of a remaster
                acc = (acc * 31 + i) % 1_000_003
            done += 65_536
            self.events_sent += 2
            yield Progress(self.name, "pack", done, total)
            yield LogLine(self.name, f"packed block {done // 65_536} ({acc})", "stdout")
        raise AssertionError("the busy step was never cancelled")
