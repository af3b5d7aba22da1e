"""Startup: the first frame within 1 s of starting Python, without the heavy domain imports.

Measured in a fresh interpreter (nothing cached in ``sys.modules``): import ``wizard.app``, build
the app the way the CLI does, run it headless, and stop the clock when the Welcome screen is
composed and painted. httpx, zeroconf, psutil, sh and the domain's heavy modules must not have
been imported by then — they load later, in workers, when a screen needs them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

from tests.conftest import ROOT

SCRIPT = textwrap.dedent(
    """
    import time
    t0 = time.perf_counter()
    import asyncio, json, sys
    from wizard.app import make_app
    imported = time.perf_counter() - t0

    app = make_app()
    HEAVY = ("httpx", "zeroconf", "psutil", "sh",
             "steps.fetch.download", "steps.remaster", "steps.fetch.mirror", "steps.status",
             "steps.proc")
    at_import = sorted(m for m in HEAVY if m in sys.modules)

    async def auto_pilot(pilot):
        while not (app.current == "welcome" and app.screen.query("#nav")):
            await asyncio.sleep(0.002)
        painted = asyncio.get_running_loop().create_future()
        app.screen.call_after_refresh(lambda: painted.set_result(time.perf_counter() - t0))
        first_frame = await painted
        # the Welcome screen's host check imports steps.proc (and sh) in its worker: allowed
        heavy = sorted(m for m in HEAVY if m in sys.modules and m not in ("sh", "steps.proc"))
        app.exit(json.dumps({"import": imported, "first_frame": first_frame,
                             "at_import": at_import, "heavy": heavy}))

    print(app.run(headless=True, size=(80, 24), auto_pilot=auto_pilot))
    """
)


def _measure() -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_first_frame_in_under_a_second_without_heavy_imports() -> None:
    # Best of three: the suite runs in parallel on two cores, and one run can be descheduled.
    runs = [_measure() for _ in range(3)]
    best = min(runs, key=lambda r: float(r["first_frame"]))
    print(
        f"startup: import {float(best['import']) * 1000:.0f} ms, "
        f"first frame {float(best['first_frame']) * 1000:.0f} ms"
    )
    assert float(best["first_frame"]) < 1.0, runs
    for run in runs:
        assert run["at_import"] == [], run
        assert run["heavy"] == [], run
