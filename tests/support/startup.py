"""The wizard's first frame, measured in a fresh interpreter (nothing cached in ``sys.modules``).

``first_frame()`` starts Python, imports ``wizard.app``, builds the app the way the CLI does, runs
it headless and stops the clock when the Welcome screen is composed and painted. It also reports
which heavy modules were loaded by then. The startup test asserts only that (behaviour);
``bench/startup.py`` compares the time with ``python -c "import textual"`` (a figure).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

from tests.conftest import ROOT

#: Imported later, in workers, when a screen needs them — never before the first frame.
HEAVY = (
    "httpx",
    "zeroconf",
    "psutil",
    "sh",
    "steps.fetch.download",
    "steps.remaster",
    "steps.fetch.mirror",
    "steps.status",
    "steps.proc",
)
#: The Welcome screen's host check imports these in its worker: allowed after the first frame.
WORKER_IMPORTS = ("sh", "steps.proc")

SCRIPT = textwrap.dedent(
    """
    import time
    t0 = time.perf_counter()
    import asyncio, json, sys
    from wizard.app import make_app
    imported = time.perf_counter() - t0

    HEAVY, ALLOWED = json.loads(sys.argv[1])
    app = make_app()
    at_import = sorted(m for m in HEAVY if m in sys.modules)

    async def auto_pilot(pilot):
        while not (app.current == "welcome" and app.screen.query("#nav")):
            await asyncio.sleep(0.002)
        painted = asyncio.get_running_loop().create_future()
        app.screen.call_after_refresh(lambda: painted.set_result(time.perf_counter() - t0))
        first_frame = await painted
        heavy = sorted(m for m in HEAVY if m in sys.modules and m not in ALLOWED)
        app.exit(json.dumps({"import": imported, "first_frame": first_frame,
                             "at_import": at_import, "heavy": heavy}))

    print(app.run(headless=True, size=(80, 24), auto_pilot=auto_pilot))
    """
)


def first_frame() -> dict[str, Any]:
    """One fresh start: seconds to import and to the first frame, heavy modules loaded by then."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps([HEAVY, WORKER_IMPORTS])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the wizard did not start:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
