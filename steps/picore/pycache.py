"""Bytecode for the Pi, compiled at build time, so the app does not compile itself on every boot.

piCore runs from RAM and ``/opt/firecore`` belongs to root: the app's Python (user tc) can never
write a ``__pycache__`` there, so without ``.pyc`` files in the overlay every boot compiles
fastapi, pydantic, starlette and uvicorn again before the first request. Measured under qemu
(tests/integration/test_app_on_arm.py, one run after the other at load ~8): power-on →
``/health`` 69 s → 52 s on armhf and 50 s → 36 s on aarch64 (about −25 %; −37 % with two guests
at load ~16), for overlay.gz 4.6 → 7.0 MB. ``app.precompile = false`` ships sources only (the
smaller overlay, e.g. for a 512 MB Pi Zero).

Which bytecode: ``pyc`` files are specific to CPython X.Y, so they are compiled by an interpreter
of the Pi's version (this one when it matches, else ``pythonX.Y`` on PATH); without one the build
says so and ships sources only. They are *unchecked-hash* pycs (PEP 552): no timestamps, and the
Pi's Python never reads the source to validate them (the overlay cannot change under them).
Each carries the Pi's path of its source (``/opt/firecore/...``) for tracebacks.

Reproducible: marshal's output depends on the compiling interpreter's state (reference counts
decide which objects are written as back-references), so files are never compiled one at a time
in a long-lived process. A fresh isolated interpreter (``-I``, ``PYTHONHASHSEED=0``) compiles a
whole group in sorted order: the same group always gives the same bytes. Two groups, the wheels
and the app's own files (the agent and app.path), each cached under the cache directory by its
content: editing the app recompiles only its own small group, and a no-change rerun starts no
interpreter at all.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from steps import proc
from steps.artifacts import OverlayFile
from steps.fsutil import replacing_dir

#: Compiles each (source, path on the Pi, pyc) of the JSON list on stdin; prints the sources
#: that are not valid Python for it (shipped as sources: the Pi compiles them, or never imports
#: them, as with templates that only look like Python).
_COMPILER = """
import json, py_compile, sys
skipped = []
for source, pi_path, out in json.load(sys.stdin):
    try:
        py_compile.compile(source, cfile=out, dfile=pi_path, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    except py_compile.PyCompileError:
        skipped.append(pi_path)
json.dump(skipped, sys.stdout)
"""


@dataclass(frozen=True)
class Bytecode:
    """The ``.pyc`` files (and their ``__pycache__`` directories) for the overlay."""

    files: tuple[OverlayFile, ...]
    note: str
    """One line for the log: how many were compiled and by which interpreter, or why none."""

    @property
    def compiled(self) -> int:
        """How many ``.pyc`` files there are."""
        return sum(1 for f in self.files if not f.is_dir)


def cache_tag(python: str) -> str:
    """``cpython-311`` for "3.11": the suffix the Pi's import system looks for."""
    major, minor = python.split(".")[:2]
    return f"cpython-{major}{minor}"


def pyc_path(path: str, python: str) -> str:
    """Where the Pi's Python looks for the bytecode of ``path`` (an overlay path)."""
    p = PurePosixPath(path)
    return str(p.parent / "__pycache__" / f"{p.stem}.{cache_tag(python)}.pyc")


def interpreter(python: str) -> str | None:
    """A CPython of the Pi's version X.Y on this host (this one first), or None."""
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == python:
        return sys.executable
    return proc.locate(f"python{python}")


def compile_bundle(
    files: Sequence[OverlayFile],
    python: str,
    cache: Path,
    *,
    cancel: threading.Event | None = None,
) -> Bytecode:
    """Bytecode for every ``.py`` among ``files``, in two cached groups (wheels, the app's own).

    ``cache`` is the cache directory; a group found there with the same sources is reused.
    """
    exe = interpreter(python)
    sources = [f for f in files if f.path.endswith(".py") and not f.is_dir]
    if exe is None:
        return Bytecode(
            (),
            f"no .pyc: the Pi runs Python {python} and this host has no python{python} to "
            "compile for it (install it, or the Pi compiles the app on every boot)",
        )
    if not sources:
        return Bytecode((), "no Python sources to compile")
    wheels = [f for f in sources if "/site-packages/" in f.path]
    own = [f for f in sources if "/site-packages/" not in f.path]
    built: dict[str, bytes] = {}
    skipped: list[str] = []
    for group in (wheels, own):
        if group:
            done, missed = _cached_group(exe, python, group, cache, cancel)
            built.update(done)
            skipped += missed
    out = [OverlayFile(rel, 0o644, data=data) for rel, data in sorted(built.items())]
    out += [OverlayFile(d, 0o755, is_dir=True) for d in sorted({os.path.dirname(r) for r in built})]
    note = f"{len(built)} .pyc compiled for CPython {python} ({exe})"
    if skipped:
        note += f"; {len(skipped)} not valid Python {python}, shipped as source: {skipped[0]}"
        note += " …" if len(skipped) > 1 else ""
    return Bytecode(tuple(out), note)


def _group_key(exe: str, python: str, files: Sequence[OverlayFile]) -> str:
    h = hashlib.sha256(f"{python}\0{_version(exe)}\0".encode())
    for f in sorted(files, key=lambda x: x.path):
        h.update(f"{f.path}\0".encode())
        h.update(hashlib.sha256(_source_bytes(f)).digest())
    return h.hexdigest()[:32]


@functools.cache
def _version(exe: str) -> str:
    """The interpreter's full version: its bytecode may differ between micro releases."""
    if exe == sys.executable:
        return sys.version
    done = proc.run(exe, "-I", "-c", "import sys; print(sys.version)")
    return done.text.strip()


def _source_bytes(f: OverlayFile) -> bytes:
    if f.data is not None:
        return f.data
    assert f.source is not None
    return f.source.read_bytes()


def _cached_group(
    exe: str,
    python: str,
    files: Sequence[OverlayFile],
    cache: Path,
    cancel: threading.Event | None,
) -> tuple[dict[str, bytes], list[str]]:
    """The group's bytecode from the cache, compiled there first when missing or damaged.

    ``group.json`` records each file's sha256 when it is compiled; a cached file that no longer
    matches (a damaged disk, a hand edit) sends the whole group back to the compiler.
    """
    final = cache / "pyc" / _group_key(exe, python, files)
    cached = _read_group(final, {pyc_path(f.path, python): "/" + f.path for f in files})
    if cached is not None:
        return cached
    with replacing_dir(final) as stage:  # replaces a damaged group too
        done, skipped = _compile(exe, python, files, stage, cancel)
        sums = {rel: hashlib.sha256(data).hexdigest() for rel, data in done.items()}
        record = {"skipped": skipped, "sha256": sums}
        (stage / "group.json").write_text(json.dumps(record, indent=1, sort_keys=True))
    return done, skipped


def _read_group(final: Path, expected: dict[str, str]) -> tuple[dict[str, bytes], list[str]] | None:
    """A cached group whose every file still has the sha256 recorded for it, else None.

    ``expected`` maps each pyc path of the group to its source's Pi path: the record must name
    exactly those (compiled or skipped), and nothing else is read.
    """
    try:
        meta = json.loads((final / "group.json").read_text())
        named = set(meta["sha256"]) | {r for r, src in expected.items() if src in meta["skipped"]}
        if named != set(expected):
            return None
        done = {rel: (final / rel).read_bytes() for rel in meta["sha256"]}
        if all(hashlib.sha256(done[r]).hexdigest() == h for r, h in meta["sha256"].items()):
            return done, list(meta["skipped"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _compile(
    exe: str,
    python: str,
    files: Sequence[OverlayFile],
    dest: Path,
    cancel: threading.Event | None,
) -> tuple[dict[str, bytes], list[str]]:
    """Compile ``files`` (sorted) in one fresh interpreter into ``dest``.

    Returns the bytecode by overlay path and the Pi paths of the sources left as they are.
    """
    jobs = []
    with tempfile.TemporaryDirectory(prefix="firecore-pysrc-") as tmp:
        for index, f in enumerate(sorted(files, key=lambda x: x.path)):
            source = f.source
            if source is None:  # generated in memory: give the compiler a file
                source = Path(tmp) / f"{index}.py"
                source.write_bytes(f.data or b"")
            jobs.append([str(source), "/" + f.path, str(dest / pyc_path(f.path, python))])
        script = Path(tmp) / "compile.py"
        script.write_text(_COMPILER)
        run = proc.run(
            exe,
            "-I",
            script,
            stdin=json.dumps(jobs),
            env={"PYTHONHASHSEED": "0"},
            cancel=cancel,
            fix="set app.precompile to false to ship sources only",
        )
    skipped: list[str] = json.loads(run.text or "[]")
    done = {
        pyc_path(f.path, python): (dest / pyc_path(f.path, python)).read_bytes()
        for f in files
        if "/" + f.path not in skipped
    }
    return done, skipped
