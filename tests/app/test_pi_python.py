"""The bundled app must run on the Pi's Python: 3.8 on piCore 12/13, 3.11 later."""

from __future__ import annotations

import ast
import glob
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.app.conftest import APP_DIR

SOURCES = sorted((APP_DIR / "firecore_app").glob("*.py"))
_BUILTIN_GENERICS = {"list", "dict", "tuple", "set", "frozenset", "type"}


def _annotations(tree: ast.AST) -> list[ast.expr]:
    out: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
            args += [a for a in (node.args.vararg, node.args.kwarg) if a is not None]
            out += [a.annotation for a in args if a.annotation is not None]
            if node.returns is not None:
                out.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            out.append(node.annotation)
    return out


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_source_is_python38_syntax_with_runtime_safe_annotations(path: Path) -> None:
    source = path.read_text()
    ast.parse(source, str(path), feature_version=(3, 8))
    tree = ast.parse(source)
    assert "from __future__ import annotations" not in source  # FastAPI evaluates annotations
    for ann in _annotations(tree):
        for node in ast.walk(ann):
            assert not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr)), (
                f"{path.name}:{ann.lineno}: `X | Y` annotations fail on Python 3.8"
            )
            assert not (
                isinstance(node, ast.Subscript)
                and isinstance(node.value, ast.Name)
                and node.value.id in _BUILTIN_GENERICS
            ), f"{path.name}:{ann.lineno}: {node.value.id}[...] fails on Python 3.8"


def _python38() -> str | None:
    candidates = sorted(glob.glob("/root/.pyenv/versions/3.8*/bin/python3.8"))
    if candidates:
        return candidates[-1]
    found = shutil.which("python3.8")
    if found and "/shims/" not in found:  # a pyenv shim may point at nothing
        return found
    return None


def test_runs_its_stdlib_parts_under_a_real_python38(tmp_path: Path) -> None:
    py38 = _python38()
    if py38 is None:
        pytest.skip("no Python 3.8 interpreter on this machine (the AST checks above still ran)")
    subprocess.run([py38, "-m", "py_compile", *map(str, SOURCES)], check=True, capture_output=True)
    (tmp_path / "build.json").write_text('{"build_id": "py38"}')
    code = (
        "import json, time\n"
        "from firecore_app import sysinfo, auth, logs\n"
        "from firecore_app.settings import Settings\n"
        f"s = Settings.from_env({{'FIRECORE_BUILD_FILE': {str(tmp_path / 'build.json')!r},"
        f" 'FIRECORE_LOG_DIR': {str(tmp_path / 'log')!r}}})\n"
        "logs.setup(s)\n"
        "print(json.dumps(sysinfo.info(s, time.monotonic())))\n"
    )
    out = subprocess.run(
        [py38, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(APP_DIR), "PATH": "/usr/bin:/bin"},
    ).stdout
    info = json.loads(out)
    assert info["python"].startswith("3.8.") and info["build_id"] == "py38"
    assert (tmp_path / "log" / "app.log").exists()
