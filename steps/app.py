"""The App step: the Python app that runs on every Pi, ready for the overlay.

It validates the app directory (or takes the bundled firecore_app), resolves its requirements as
wheels for the Pi (``steps.picore.wheels``), and puts an ``AppBundle``: every file under
``/opt/firecore`` with its mode and owner, plus the line that ``/opt/bootlocal.sh`` gets. The
remaster step packs the bundle into overlay.gz and adds ``/opt/firecore/build.json`` and the
per-device ``/opt/firecore/profile.env``. What the bundle holds and the app conventions:
``steps.picore.appbundle``.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from steps.answers import Answers, resolve_path
from steps.artifacts import AppBundle, ExtensionSet, OverlayFile, ReleaseArtifact
from steps.base import StepContext
from steps.errors import AnswersError, CommandError, DownloadError
from steps.events import Event, LogLine, Planned, Progress, Result
from steps.fetch.download import Downloader
from steps.paths import asset, cache_dir, parsed_sources_file
from steps.picore.appbundle import (
    ANNOUNCE_REQUIREMENTS,
    APP_ENV,
    BOOT_SCRIPT,
    BOOTLOCAL_LINE,
    PREFIX,
    SERVICE_REQUIREMENTS,
    EntryPoint,
    ParsedSources,
    TreeFile,
    app_env,
    bundle_digest,
    bundle_dirs,
    bundled_dir,
    check_syntax,
    find_entry,
    read_requirements,
    render_env,
    scan_tree,
    split_secrets,
    token_pubkey,
    token_sha256,
    tree_files,
)
from steps.picore.overlay import squashfs_listing
from steps.picore.pycache import compile_bundle
from steps.picore.syslibs import listed_names, parse_glibc, provides
from steps.picore.tcz import repo_path
from steps.picore.wheels import (
    MissingLibrary,
    WheelSet,
    check_requirement,
    install,
    missing_libraries,
    python_version,
    target_for,
)


@dataclass(frozen=True)
class AppSource:
    """The app the answers name, as found on disk."""

    entry: EntryPoint
    root: Path | None = None
    """``app.path`` resolved; None for the bundled firecore_app."""
    files: list[TreeFile] = field(default_factory=list)
    """The app's tree ([] for the bundled app)."""
    requirements: list[str] = field(default_factory=list)
    """Lines of its requirements.txt."""
    secrets: list[TreeFile] = field(default_factory=list)
    """Secret-looking files of the tree, left out of ``files`` (``split_secrets``)."""


def read_app(answers: Answers) -> AppSource:
    """Find the app's entry point, files and requirements (the bundled app if no ``app.path``).

    Raises:
        AnswersError: naming ``app.path`` (missing, not a directory, no entry point, a file
            that cannot ship) or ``app.env`` (a bad FIRECORE_APP_MODULE).
    """
    if not answers.app.path:
        return AppSource(EntryPoint("bundled", file="firecore_app"))
    root = resolve_path(answers.app.path)
    if not root.exists():
        raise AnswersError(
            "app.path", f"{root} does not exist", fix="check the path, or leave it empty"
        )
    if not root.is_dir():
        raise AnswersError("app.path", f"{root} is not a directory")
    entry = find_entry(root, answers.app.env)
    files, secrets = split_secrets(scan_tree(root, "app.path"), answers)
    reqfile = root / "requirements.txt"
    requirements = read_requirements(reqfile, "app.path") if reqfile.is_file() else []
    return AppSource(entry, root, files, requirements, secrets)


def pip_requirements(answers: Answers, app: AppSource) -> list[str]:
    """What pip installs for the Pi, each once: the agent's needs (the web service's unless
    the app runs itself), ``app.python_packages``, then the app's requirements.txt."""
    base = list(ANNOUNCE_REQUIREMENTS)
    if app.entry.mode != "run":
        base = [*SERVICE_REQUIREMENTS, *base]
    packages = [check_requirement(p, "app.python_packages") for p in answers.app.python_packages]
    return list(dict.fromkeys([*base, *packages, *app.requirements]))


class AppStep:
    """Validate the app, resolve its Pi wheels, and hand the remaster step an AppBundle."""

    name = "app"
    title = "App"

    def run(self, ctx: StepContext) -> Iterator[Event]:
        """Check the app, install its wheels (cached), put the AppBundle."""
        answers = ctx.answers
        extensions = ctx.results.need(ExtensionSet, by="the app step")
        release = ctx.results.get(ReleaseArtifact)
        python = python_version(extensions)
        glibc = parse_glibc(release.glibc) if release is not None else None
        target = target_for(
            answers.release.arch, python, glibc=glibc, boards=answers.release.boards
        )
        if release is not None and glibc is None:
            yield LogLine(
                self.name,
                "the release's rootfs has no readable lib/libc.so.6: assuming glibc 2.17 "
                "(manylinux2014 wheels only)",
                "warning",
            )
        newest = f", glibc {release.glibc} (its libc.so.6)" if release and glibc else ""
        yield LogLine(self.name, f"Pi target: CPython {python}, {target.platform}{newest}")
        if target.armv6_boards:
            yield LogLine(
                self.name,
                f"release.boards includes {', '.join(target.armv6_boards)} (ARMv6): only "
                "pure-Python and armv6l wheels are accepted (armv7l code does not run there)",
            )

        app = read_app(answers)
        entry = app.entry
        parsed = ParsedSources(parsed_sources_file(cache_dir(answers, ctx.cache_dir)), python)
        if app.root is not None:
            for f in app.secrets:
                yield LogLine(
                    self.name,
                    f"{app.root / f.rel} looks like a secret: left out of the overlay (it is "
                    "served over TFTP to the whole LAN); give the app its settings through "
                    "app.env",
                    "warning",
                )
            check_syntax(app.files, python, "app.path", parsed)
            yield LogLine(self.name, f"app {app.root}: {describe_entry(entry)}")
        else:
            yield LogLine(self.name, "app: the bundled firecore_app (FastAPI + uvicorn)")
        agent_files = scan_tree(bundled_dir(), "app.path")
        check_syntax(agent_files, python, "app.path", parsed)
        if not ctx.dry_run:
            parsed.save()
        ctx.check_cancel()

        wanted = pip_requirements(answers, app)
        wheelhouse = resolve_path(answers.app.wheelhouse) if answers.app.wheelhouse else None
        if ctx.dry_run:
            yield Planned(
                self.name,
                "pip install (into the cache)",
                " ".join(wanted),
                f"CPython {python} {target.platform}",
            )
        wheels = yield from install(
            self.name, ctx, wanted, target, cache_dir(answers, ctx.cache_dir), wheelhouse
        )
        if release is not None and release.libraries:
            yield from self._check_libraries(ctx, wheels, extensions, release)
        sha = token_sha256(answers)
        env = app_env(answers, entry, python, sha, token_pubkey(answers))
        files = self._files(agent_files, app.files, wheels, env)
        if answers.app.precompile:
            bytecode = compile_bundle(
                files, python, cache_dir(answers, ctx.cache_dir), cancel=ctx.cancel
            )
            yield LogLine(self.name, bytecode.note, "info" if bytecode.compiled else "warning")
            files += bytecode.files
        ordered = tuple(sorted(files, key=lambda f: f.path))
        bundle = AppBundle(
            files=ordered,
            bootlocal=BOOTLOCAL_LINE + "\n",
            python=wheels.target.python,
            platform=wheels.target.platform,
            wheels=dict(wheels.wheels),
            digest=bundle_digest(ordered),
        )
        ctx.results.put(bundle)
        n_files = sum(1 for f in bundle.files if not f.is_dir)
        size = sum(_size(f) for f in bundle.files)
        if ctx.dry_run:
            for group, count in _groups(bundle.files).items():
                yield Planned(self.name, "add to overlay", f"/{group}", f"{count} files")
            yield Planned(self.name, "append to /opt/bootlocal.sh", BOOTLOCAL_LINE)
        yield Progress(self.name, "app", size, size, "bytes", f"{n_files} files")
        yield Result(
            self.name,
            f"{describe_entry(entry)}; CPython {python} {target.platform}; {len(wheels.wheels)} "
            f"wheels{' (cached)' if wheels.cached else ''}; {n_files} files, {size / 1e6:.1f} MB"
            + ("; token required" if sha else ""),
            {
                "mode": entry.mode,
                "module": entry.module,
                "python": python,
                "platform": target.platform,
                "wheels": dict(wheels.wheels),
                "requirements": list(wanted),
                "files": n_files,
                "bytes": size,
                "digest": bundle.digest,
                "token": bool(sha),
                "cached": wheels.cached,
            },
        )

    def _check_libraries(
        self,
        ctx: StepContext,
        wheels: WheelSet,
        extensions: ExtensionSet,
        release: ReleaseArtifact,
    ) -> Generator[Event, None, None]:
        """Every library the wheels' shared objects need must be on the Pi.

        Provided: the base rootfs's libraries (``ReleaseArtifact.libraries``), the files of the
        closure's extensions (their ``.tcz.list``, else the TCZ's own listing) and what the
        wheels bundle.

        Raises:
            AnswersError: ``extensions.names``, naming the missing library, who needs it and the
                extension that provides it (from the repo's ``provides.db.gz``).
        """
        lists: dict[str, tuple[str, ...]] = dict(extensions.lists)
        for pkg in extensions.packages:
            path = extensions.files.get(pkg.name)
            if pkg.name not in lists and path is not None:
                try:
                    lists[pkg.name] = tuple(squashfs_listing(path, ctx.cancel))
                except CommandError:
                    continue
        provided = set(release.libraries) | listed_names(lists)
        missing = missing_libraries(wheels.site_packages, provided)
        if not missing:
            yield LogLine(self.name, "every library the wheels link to is on the Pi")
            return
        where = yield from _providers(ctx.answers, release, ctx)
        raise _missing_error(missing, where, repo_path(release.ref.version, release.ref.arch))

    def _files(
        self,
        agent: list[TreeFile],
        user: list[TreeFile],
        wheels: WheelSet,
        env: dict[str, str],
    ) -> list[OverlayFile]:
        """Everything under /opt/firecore: the agent, the user's app, the wheels, boot glue."""
        files: list[OverlayFile] = bundle_dirs(PREFIX)
        files.append(OverlayFile(f"{PREFIX}/agent", 0o755, is_dir=True))
        files += tree_files(f"{PREFIX}/agent", [f for f in agent if _is_agent(f.rel)])
        if user:
            files.append(OverlayFile(f"{PREFIX}/app", 0o755, is_dir=True))
            files += tree_files(f"{PREFIX}/app", user)
        files.append(OverlayFile(f"{PREFIX}/site-packages", 0o755, is_dir=True))
        files += tree_files(f"{PREFIX}/site-packages", scan_tree(wheels.site_packages, "app"))
        files.append(OverlayFile(BOOT_SCRIPT, 0o755, source=asset("boot", "boot.sh")))
        files.append(OverlayFile(APP_ENV, 0o644, data=render_env(env)))
        return files


def _is_agent(rel: str) -> bool:
    """Only the firecore_app package goes to /opt/firecore/agent (not ruff.toml …)."""
    return rel == "firecore_app" or rel.startswith("firecore_app/")


def describe_entry(entry: EntryPoint) -> str:
    """How the Pi starts the app, in a few words."""
    if entry.mode == "bundled":
        return "bundled firecore_app"
    if entry.mode == "run":
        return "executable run script"
    return f"ASGI app {entry.module} (from {entry.file}) behind firecore_app"


def _size(f: OverlayFile) -> int:
    if f.data is not None:
        return len(f.data)
    if f.source is not None:
        return f.source.stat().st_size
    return 0


def _groups(files: tuple[OverlayFile, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in files:
        if f.is_dir:
            continue
        parts = f.path.split("/")
        group = "/".join(parts[:3]) + ("/" if len(parts) > 3 else "")
        out[group] = out.get(group, 0) + 1
    return out


def _providers(
    answers: Answers, release: ReleaseArtifact, ctx: StepContext
) -> Generator[Event, None, dict[str, list[str]]]:
    """File name → extensions shipping it, from the repo's provides.db.gz ({} if unreachable)."""
    repo = repo_path(release.ref.version, release.ref.arch)
    cache = cache_dir(answers, ctx.cache_dir)
    try:
        with Downloader(answers.release.mirrors, cache, cancel=ctx.cancel, step="app") as dl:
            data = dl.meta(repo + "provides.db.gz", missing_ok=True)
            yield from dl.drain()
    except DownloadError:
        return {}
    if data is None:
        return {}
    try:
        return provides(gzip.decompress(data))
    except (OSError, EOFError, zlib.error):
        return {}


def _missing_error(
    missing: list[MissingLibrary], where: dict[str, list[str]], repo: str
) -> AnswersError:
    parts = []
    adds: list[str] = []
    for lib in missing:
        users = ", ".join(lib.needed_by[:2]) + (" …" if len(lib.needed_by) > 2 else "")
        found = where.get(lib.soname, [])
        parts.append(f"{lib.soname} (needed by {users}" + (f"; in {found[0]})" if found else ")"))
        if found and found[0] not in adds:
            adds.append(found[0])
    unknown = [lib.soname for lib in missing if not where.get(lib.soname)]
    fix = f"add {' and '.join(adds)} to extensions.names" if adds else ""
    if unknown:
        fix += ("; " if fix else "") + (
            f"no extension of {repo} lists {', '.join(unknown)}: drop the package that needs "
            "it, or use a wheel that bundles it (app.wheelhouse)"
        )
    return AnswersError(
        "extensions.names",
        "the app's wheels link to shared libraries that neither piCore's base rootfs nor the "
        f"selected extensions provide: {'; '.join(parts)}",
        fix=fix,
    )
