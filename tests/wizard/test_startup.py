"""Startup: the first frame is painted without the heavy domain imports.

httpx, zeroconf, psutil, sh and the domain's heavy modules must not be imported by then — they load
later, in workers, when a screen needs them. How long the first frame takes is a figure of
``make bench`` (``bench/startup.py``, against ``python -c "import textual"`` in the same run), not
an assertion: a loaded machine makes any wall-clock bound flaky.
"""

from __future__ import annotations

from tests.support.startup import first_frame


def test_the_first_frame_is_painted_without_heavy_imports() -> None:
    run = first_frame()
    assert run["first_frame"] > 0
    assert run["at_import"] == [], run
    assert run["heavy"] == [], run
