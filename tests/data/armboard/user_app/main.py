"""A user app for tests/integration/test_app_on_arm.py: a FastAPI app with a compiled dependency.

``markupsafe`` quietly falls back to pure Python when its C extension does not load, so the
extension module ``_speedups`` is imported by name and checked to be what ``escape`` runs: on the
board it must be the armv7l/aarch64 build from the wheel, running on the emulated CPU.
"""

import os
import platform

import markupsafe
from fastapi import FastAPI
from markupsafe import _speedups

app = FastAPI()


@app.get("/compiled")
def compiled() -> dict:
    return {
        "machine": platform.machine(),
        "escaped": str(markupsafe.escape("<a & 'b'>")),
        "compiled": markupsafe._escape_inner is _speedups._escape_inner,  # type: ignore[attr-defined]
        "extension": _speedups.__file__,
        "uid": os.getuid(),
        "gid": os.getgid(),
    }
