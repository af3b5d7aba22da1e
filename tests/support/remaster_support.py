"""Inputs for the remaster step made straight from the fake mirror, without the earlier steps.

The remaster tests drive ``RemasterStep`` on its own: the release file and TCZ repo come from the
fixture mirror (``steps/demo``), the extension closure is followed here through the published
``.dep`` files (``KERNEL`` expanded per board), and the app is a small tree made in the test. The
full plan (release → extensions → app → remaster) is covered by the headless end-to-end test.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from steps.answers import Answers
from steps.artifacts import (
    AppBundle,
    Extension,
    ExtensionSet,
    OverlayFile,
    ReleaseArtifact,
    ReleaseRef,
)
from steps.base import StepContext
from steps.events import Event
from steps.picore.configtxt import ConfigTxt


def release_artifact(
    file: Path,
    *,
    version: str,
    arch: str,
    flavour: str,
    config_txt: str,
    boards: Sequence[str],
    image_name: str = "",
    image_md5: str = "",
    date: str = "2024-09-01",
    demo: bool = True,
) -> ReleaseArtifact:
    """What the release step would put for ``file``."""
    config = ConfigTxt.parse(config_txt)
    layout = "zip" if file.name.endswith(".zip") else "img.gz"
    ref = ReleaseRef(
        version,
        arch,
        flavour,
        file.name,
        layout,  # type: ignore[arg-type]
        f"{version}/{file.name}",
        False,
        file.stat().st_size,
        date,
    )
    return ReleaseArtifact(
        ref=ref,
        url=f"http://127.0.0.1/{file.name}",
        mirror="http://127.0.0.1/",
        file=file,
        sha256=hashlib.sha256(file.read_bytes()).hexdigest(),
        image_name=image_name,
        image_md5=image_md5,
        config_txt=config_txt,
        kernels=config.kernel_releases(boards),
        demo=demo,
    )


def extension_set(repo: Path, requested: Iterable[str], kernels: Iterable[str]) -> ExtensionSet:
    """The .dep closure of ``requested`` in ``repo`` (deps first), KERNEL expanded per kernel."""
    order: list[str] = []
    seen: set[str] = set()
    kernel_list = sorted(set(kernels))

    def deps_of(name: str) -> tuple[list[str], str]:
        dep = repo / f"{name}.dep"
        text = dep.read_text() if dep.is_file() else ""
        names: list[str] = []
        for line in text.splitlines():
            item = line.split("#")[0].strip()
            if not item:
                continue
            if "KERNEL" in item:
                names.extend(item.replace("KERNEL", k) for k in kernel_list)
            else:
                names.append(item if item.endswith(".tcz") else item + ".tcz")
        return names, text

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for dep in deps_of(name)[0]:
            visit(dep)
        order.append(name)

    requested = list(requested)
    for name in requested:
        visit(name)
    packages = []
    for name in order:
        path = repo / name
        deps, text = deps_of(name)
        packages.append(
            Extension(
                name,
                tuple(deps),
                (name,),
                path.stat().st_size,
                (repo / f"{name}.md5.txt").read_text().split()[0],
                None,
                text,
            )
        )
    return ExtensionSet(tuple(requested), tuple(packages), {n: repo / n for n in order})


def app_bundle(root: Path, *, message: str = "hello") -> AppBundle:
    """A small app tree under opt/firecore/app with one wheel-like site-packages file."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "main.py").write_text(f"MESSAGE = {message!r}\n")
    (root / "boot.sh").write_text("#!/bin/sh\necho starting app\n")
    pkgs = root / "site-packages" / "tinylib"
    pkgs.mkdir(parents=True, exist_ok=True)
    (pkgs / "__init__.py").write_text("VERSION = '1.0'\n")
    files = (
        OverlayFile("opt/firecore/app", 0o755, is_dir=True),
        OverlayFile("opt/firecore/app/main.py", 0o644, source=root / "main.py"),
        OverlayFile("opt/firecore/boot.sh", 0o755, source=root / "boot.sh"),
        OverlayFile(
            "opt/firecore/site-packages/tinylib/__init__.py", 0o644, source=pkgs / "__init__.py"
        ),
        OverlayFile("opt/firecore/app.env", 0o644, data=b"FIRECORE_PORT=8000\n"),
    )
    digest = hashlib.sha256(
        b"".join(
            f.path.encode() + (f.source.read_bytes() if f.source else f.data or b"") for f in files
        )
    ).hexdigest()
    return AppBundle(
        files,
        "/opt/firecore/boot.sh &\n",
        "3.11",
        "manylinux2014_armv7l",
        {"tinylib-1.0-py3-none-any.whl": "0" * 64},
        digest,
    )


def context(
    answers: Answers,
    cache: Path,
    *items: object,
    cancel: threading.Event | None = None,
    dry_run: bool = False,
) -> StepContext:
    ctx = StepContext(answers, cancel or threading.Event(), dry_run=dry_run, cache_dir=cache)
    for item in items:
        ctx.results.put(item)
    return ctx


def run(step: object, ctx: StepContext) -> list[Event]:
    return list(step.run(ctx))  # type: ignore[attr-defined]
