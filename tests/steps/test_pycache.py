"""Bytecode for the Pi: compiled for its Python, used without the source, the same every build."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from steps import proc
from steps.artifacts import OverlayFile
from steps.picore.pycache import compile_bundle, pyc_path
from tests.support.pifiles import write_overlay_files

PY = f"{sys.version_info[0]}.{sys.version_info[1]}"
TAG = f"cpython-{sys.version_info[0]}{sys.version_info[1]}"


def sources(tmp: Path) -> list[OverlayFile]:
    """A small app and a small 'wheel', as the App step lays them out under /opt/firecore."""
    (tmp / "src").mkdir(exist_ok=True)
    pkg = tmp / "src" / "greet.py"
    pkg.write_text("def hello():\n    return 'compiled ' + __name__\n")
    dep = tmp / "src" / "dep.py"
    dep.write_text("import sys\nWHERE = __file__\ndef fail():\n    raise RuntimeError('x')\n")
    return [
        OverlayFile("opt/firecore/agent/greet.py", 0o644, source=pkg),
        OverlayFile("opt/firecore/site-packages/dep.py", 0o644, source=dep),
        OverlayFile("opt/firecore/app.env", 0o644, data=b"A='1'\n"),
        OverlayFile("opt/firecore/agent/made.py", 0o644, data=b"VALUE = 42\n"),
    ]


def test_every_source_gets_an_unchecked_hash_pyc_naming_its_path_on_the_pi(tmp_path: Path) -> None:
    files = sources(tmp_path)
    code = compile_bundle(files, PY, tmp_path / "cache")
    got = {f.path: f for f in code.files}
    assert code.compiled == 3 and "3 .pyc compiled" in code.note
    for src in ("agent/greet.py", "agent/made.py", "site-packages/dep.py"):
        pyc = got[pyc_path(f"opt/firecore/{src}", PY)]
        data = pyc.data if pyc.data is not None else pyc.source.read_bytes()  # type: ignore[union-attr]
        assert data[:4] == importlib.util.MAGIC_NUMBER
        assert int.from_bytes(data[4:8], "little") == 0b01  # hash-based, never checked
        assert f"/opt/firecore/{src}".encode() in data  # tracebacks name the Pi's file
    assert got["opt/firecore/agent/__pycache__"].is_dir
    assert not any(p.endswith("app.env") or "app.env" in p for p in got)


def test_the_pi_imports_the_bytecode_without_reading_the_source(tmp_path: Path) -> None:
    files = sources(tmp_path)
    code = compile_bundle(files, PY, tmp_path / "cache")
    root = tmp_path / "pi"
    write_overlay_files(root, [*files, *code.files])
    # the source changes after the build: an unchecked pyc is still what runs
    (root / "opt/firecore/agent/greet.py").write_text("raise SystemExit('source was read')\n")
    script = (
        f"import sys; sys.path[:0] = ['{root}/opt/firecore/agent', "
        f"'{root}/opt/firecore/site-packages']\n"
        "import greet, dep; print(greet.hello(), dep.WHERE)"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-B", "-c", script],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("compiled greet ")


def test_the_same_sources_compile_to_the_same_bytes_with_any_cache(tmp_path: Path) -> None:
    files = sources(tmp_path)

    def compiled(cache: str) -> dict[str, bytes]:
        out = compile_bundle(files, PY, tmp_path / cache).files
        return {
            f.path: f.data if f.data is not None else f.source.read_bytes()  # type: ignore[union-attr]
            for f in out
            if not f.is_dir
        }

    first = compiled("one")
    assert compiled("two") == first  # cold cache elsewhere
    assert compiled("one") == first  # warm cache


def test_a_file_that_is_not_valid_python_ships_as_source(tmp_path: Path) -> None:
    bad = OverlayFile("opt/firecore/site-packages/tmpl/page.py", 0o644, data=b"{% if x %}\n")
    code = compile_bundle([*sources(tmp_path), bad], PY, tmp_path / "cache")
    assert pyc_path(bad.path, PY) not in {f.path for f in code.files}
    assert code.compiled == 3
    assert (
        "1 not valid Python" in code.note
        and "/opt/firecore/site-packages/tmpl/page.py" in code.note
    )


def test_without_an_interpreter_of_the_pis_version_the_build_says_so(tmp_path: Path) -> None:
    code = compile_bundle(sources(tmp_path), "3.99", tmp_path / "cache")
    assert code.files == () and code.compiled == 0
    assert "python3.99" in code.note and "every boot" in code.note
    assert pyc_path("opt/firecore/agent/a.py", "3.99").endswith("__pycache__/a.cpython-399.pyc")
    assert TAG in pyc_path("x/a.py", PY)


def test_a_damaged_cached_group_is_compiled_again(tmp_path: Path) -> None:
    files = sources(tmp_path)
    first = {f.path: f.data for f in compile_bundle(files, PY, tmp_path / "cache").files}
    cached = next((tmp_path / "cache" / "pyc").rglob("dep.*.pyc"))
    cached.write_bytes(b"not bytecode")
    again = {f.path: f.data for f in compile_bundle(files, PY, tmp_path / "cache").files}
    assert again == first
    assert cached.read_bytes() == first[pyc_path("opt/firecore/site-packages/dep.py", PY)]


def test_a_no_change_rerun_starts_no_compiler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = sources(tmp_path)
    first = compile_bundle(files, PY, tmp_path / "cache")

    def no_compiler(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"an interpreter was started: {args}")

    monkeypatch.setattr(proc, "run", no_compiler)
    assert compile_bundle(files, PY, tmp_path / "cache") == first
