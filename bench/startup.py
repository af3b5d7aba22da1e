"""Startup benchmark: the wizard's first frame against Textual's own start-up, same run.

Three figures, each the median of several fresh interpreters (page cache and .pyc warm), each
timed from the first statement the interpreter runs:

- ``python -c "import textual"`` — the floor any Textual app pays;
- a bare Textual app (one Label) painting its first frame, headless, 80×24;
- the wizard painting the Welcome screen (``tests.support.startup``: import ``wizard.app``, build
  the app as the CLI does, run headless, stop at the first refresh).

Target: the wizard's first frame ≤ 3× the bare app's — the 1 s budget the old startup test
asserted was about that on the dev machine (bare app ~0.3 s idle); what Textual itself costs is
not ours to cut, the answers model and ten screens' CSS are. Heavy modules loaded
before the first frame are a test failure (``tests/wizard/test_startup``), not a figure here.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import textwrap

from tests.support.startup import first_frame

RUNS = 7
TARGET = 3.0

BARE_APP = textwrap.dedent(
    """
    import time
    t0 = time.perf_counter()
    import asyncio
    from textual.app import App
    from textual.widgets import Label

    class Bare(App[str]):
        def compose(self):
            yield Label("hello")

    app = Bare()

    async def auto_pilot(pilot):
        await pilot.pause()
        painted = asyncio.get_running_loop().create_future()
        app.screen.call_after_refresh(lambda: painted.set_result(time.perf_counter() - t0))
        app.exit(str(await painted))

    print(app.run(headless=True, size=(80, 24), auto_pilot=auto_pilot))
    """
)


IMPORT_TEXTUAL = (
    "import time; t0 = time.perf_counter(); import textual; print(time.perf_counter() - t0)"
)


def _import_textual() -> float:
    """``python -c "import textual"``, timed inside the interpreter like the first frames."""
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_TEXTUAL], check=True, capture_output=True, text=True
    ).stdout
    return float(out.strip())


def _bare_first_frame() -> float:
    out = subprocess.run(
        [sys.executable, "-c", BARE_APP], check=True, capture_output=True, text=True
    ).stdout
    return float(out.strip().splitlines()[-1])


def main() -> int:
    """Print the figures; 1 if the wizard's first frame misses the target."""
    first_frame()  # warm the page cache and write .pyc files before measuring
    _bare_first_frame()
    imports, bare, ours = [], [], []
    for _ in range(RUNS):  # interleaved, so a burst of load hits all three alike
        imports.append(_import_textual())
        bare.append(_bare_first_frame())
        ours.append(float(first_frame()["first_frame"]))
    imp, base, wiz = (statistics.median(x) for x in (imports, bare, ours))
    print(f"startup (median of {RUNS} fresh interpreters)")
    print(f"  python -c 'import textual'        {imp * 1000:7.0f} ms")
    print(f"  bare Textual app, first frame     {base * 1000:7.0f} ms")
    print(
        f"  firecore-wizard, first frame      {wiz * 1000:7.0f} ms  "
        f"{wiz / base:.2f}× bare app (target ≤ {TARGET}), {wiz / imp:.2f}× import textual"
    )
    return 0 if wiz <= TARGET * base else 1


if __name__ == "__main__":
    raise SystemExit(main())
