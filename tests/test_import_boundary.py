"""The domain and the headless path never import Textual (harlequin's rule, enforced twice)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import steps
from tests.conftest import ROOT


def _imported_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    return set(out.split())


def test_steps_and_headless_cli_do_not_import_textual() -> None:
    names = [m.name for m in pkgutil.walk_packages(steps.__path__, "steps.")]
    code = "\n".join(f"import {n}" for n in names)
    code += "\nimport wizard.cli, wizard.headless, wizard.headless_run, wizard.render"
    loaded = _imported_after(code)
    assert not {m for m in loaded if m == "textual" or m.startswith("textual.")}
    assert "wizard.app" not in loaded


def test_import_contracts_hold() -> None:
    lint = ROOT / ".venv" / "bin" / "lint-imports"
    exe = str(lint) if lint.exists() else "lint-imports"
    result = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
