"""Hostile-input tests; the bundled Pi app (assets/app) is importable, as in tests/app."""

from __future__ import annotations

import sys

from tests.conftest import ROOT

APP_DIR = ROOT / "assets" / "app"
if str(APP_DIR) not in sys.path:
    sys.path.insert(0, str(APP_DIR))
