"""``--demo`` and ``firecore-wizard demo-mirror``: the generated piCore mirror, served locally.

``start_demo(answers)`` (used by ``firecore-wizard --demo``) builds the demo mirror once into the
cache (``<cache>/demo/mirror-<key>/root``), serves it on 127.0.0.1 from a daemon thread for the
life of the process, says so on stderr, and returns answers that point ``release.mirrors`` at it
(and ``release.version``/``arch`` at a demo release unless the user's choice exists there). The
mirror root and every demo release's boot partition carry a ``FIRECORE-DEMO`` file; the release
step sets ``ReleaseArtifact.demo`` from it, and everything built from it is labelled DEMO: it does
not boot real hardware.

``firecore-wizard demo-mirror --out DIR [--serve]`` writes the same mirror to DIR (replacing an
earlier demo mirror there, refusing any other non-empty directory) and optionally serves it.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from steps.answers import Answers, Arch
from steps.demo.factory import Mirror, Progress, build_mirror, cached_mirror
from steps.demo.server import MirrorServer
from steps.demo.wheels import demo_wheelhouse
from steps.errors import UsageError
from steps.fsutil import replacing_dir
from steps.paths import DEMO_MARKER, cache_dir
from wizard.render import make_renderer

HELP = "build the demo piCore mirror into a directory (and optionally serve it)"

#: The demo release used when the answers name one the demo mirror does not have.
DEFAULT_RELEASE: tuple[str, Arch] = ("15.0.0", "armhf")

_servers: list[MirrorServer] = []


def demo_answers(answers: Answers, mirror: Mirror, url: str, *, strict: bool = False) -> Answers:
    """``answers`` pointed at the demo mirror at ``url``; every other answer kept.

    A release the demo mirror lacks is refused with ``strict`` (a headless run must not build
    something other than what its file asks for); otherwise the demo's default release is used
    and ``start_demo`` says so.

    Raises:
        UsageError: ``strict`` and the answers' release is not on the demo mirror.
    """
    out = answers.model_copy(deep=True)
    out.release.mirrors = [url]
    have = {(r.version, r.arch) for r in mirror.releases}
    if (out.release.version, out.release.arch) not in have:
        if strict:
            listed = ", ".join(f"{v} {a}" for v, a in sorted(have))
            raise UsageError(
                f"release.version/arch {out.release.version} {out.release.arch} is not on the "
                f"demo mirror (it has {listed})",
                fix="choose one of those in the answers file, or run without --demo",
            )
        out.release.version, out.release.arch = DEFAULT_RELEASE
    return out


def start_demo(
    answers: Answers,
    *,
    strict: bool = False,
    say: Callable[[str], object] | None = None,
    on_progress: Progress | None = None,
) -> Answers:
    """Build (or reuse) and serve the demo mirror; answers that use it.

    The server runs in a daemon thread until the process exits. ``say`` gets the DEMO notes
    (stderr headless; the wizard shows them itself, since Textual owns the terminal).
    """
    say = say or sys.stderr.write  # looked up now: tests and the wizard replace stderr
    mirror = cached_mirror(cache_dir(answers) / "demo", on_progress=on_progress)
    server = MirrorServer(mirror.root).start()
    _servers.append(server)
    out = demo_answers(answers, mirror, server.url, strict=strict)
    if (out.release.version, out.release.arch) != (answers.release.version, answers.release.arch):
        say(
            f"DEMO: WARNING the demo mirror has no {answers.release.version} "
            f"{answers.release.arch}: using {out.release.version} {out.release.arch} instead\n"
        )
    say(
        f"DEMO: serving a generated piCore mirror at {server.url} (files in {mirror.root})\n"
        f"DEMO: using {out.release.version} {out.release.arch}; everything built from it is "
        "labelled DEMO and does NOT boot real hardware\n"
    )
    if not out.app.wheelhouse:
        # no network needed at all: the app's wheels are stand-ins too (unless you chose some)
        wheels = demo_wheelhouse(cache_dir(answers) / "demo" / "wheelhouse")
        out.app.wheelhouse = str(wheels)
        say(f"DEMO: the app's Python wheels are stand-ins from {wheels}\n")
    return out


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="where to write it")
    parser.add_argument("--serve", action="store_true", help="then serve it until Ctrl-C")
    from wizard import argtypes

    parser.add_argument(
        "--host",
        default="127.0.0.1",
        type=argtypes.ip_address,
        help="address to serve on (127.0.0.1)",
    )
    parser.add_argument(
        "--port", type=argtypes.port, default=0, help="port to serve on (0: a free one)"
    )


def _write(out: Path) -> Mirror:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file", fix="name a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / DEMO_MARKER).exists():
        raise UsageError(
            f"--out {out} is not empty and holds no demo mirror",
            fix="name an empty or new directory (an earlier demo mirror there is replaced)",
        )
    with replacing_dir(out.resolve()) as staging:
        os.chmod(staging, 0o755)  # mkdtemp's 0700 would hide it from a web server
        mirror = build_mirror(staging)
    return Mirror(out.resolve(), mirror.releases, mirror.repos, mirror.key, mirror.extra_files)


def run(args: argparse.Namespace) -> int:
    """Write the demo mirror; list what it holds on stdout; serve it with --serve."""
    mirror = _write(args.out)
    with make_renderer(json_lines=False) as out:
        out.data(f"demo mirror written to {mirror.root}")
        for rel in mirror.releases:
            kernels = ", ".join(f"{b} {k}" for b, k in rel.kernels.items())
            out.data(f"  {rel.path}  ({rel.size} bytes; {kernels})")
        for path, repo in mirror.repos.items():
            out.data(f"  {path}/  ({len(repo.packages)} extensions, python{repo.python})")
        if not args.serve:
            return 0
        with MirrorServer(mirror.root, host=args.host, port=args.port) as server:
            out.data(f"serving {mirror.root} at {server.url} — Ctrl-C stops")
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                out.line("stopped")
    return 0
