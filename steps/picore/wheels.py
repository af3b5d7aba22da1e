"""The app's Python packages, installed as wheels FOR THE PI (not for this machine).

No qemu chroot: pip runs on the build host with ``--platform``/``--python-version``/
``--implementation cp``/``--only-binary=:all:`` and ``--target``, so only wheels built for the
Pi's platform (or pure Python) are accepted. The Python version comes from the pythonX.Y.tcz in
the extension closure, the platform tags from ``release.arch`` and ``release.boards``, the
newest ``manylinux_2_N`` from the release's own glibc (its rootfs's ``libc.so.6``,
``steps.picore.syslibs``; PEP 600: ``manylinux_2_N`` needs glibc ≥ 2.N).

armhf is not armv7: from 15.x one armhf rootfs also boots the ARMv6 Pi Zero/1 (picore.md
"Boot-script facts"), where armv7l code dies with "Illegal instruction". So with ``pi0`` or
``pi1`` among the boards only pure-Python and ``linux_armv6l`` wheels are accepted, whatever the
arch directory says.

After the install, ``missing_libraries`` reads every installed shared object's ``DT_NEEDED``
(``steps.picore.elf``) and checks each name against the base rootfs, the closure's
``.tcz.list`` files and the libraries the wheels bundle themselves: a C++ extension needs
``libstdc++.so.6``, which piCore ships in ``gcc_libs.tcz``, not in the base.

pip evaluates environment markers for the *host* interpreter even with ``--python-version``
(``anyio`` needs ``exceptiongroup; python_version < "3.11"`` on a 3.8 Pi, which a 3.11 host
would skip), so after each install the requirements of every installed distribution are
re-evaluated for the Pi's environment and pip runs again with what is missing.

The installed tree is cached under ``<cache>/wheels/<key>/`` where the key hashes the
requirements, python, platforms and the wheelhouse's contents: the same inputs never run pip
again (pin versions for builds that must not pick up new releases from PyPI).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import urllib.parse
from collections.abc import Collection, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steps import proc
from steps.answers import ARCHES
from steps.artifacts import ExtensionSet
from steps.base import StepContext
from steps.errors import AnswersError, CommandError, DownloadError, StepError
from steps.events import Event, LogLine, Progress
from steps.fsutil import atomic_write, disk_error, replacing_dir, sha256_file
from steps.picore import elf
from steps.reqline import invalid, plain

if TYPE_CHECKING:
    from packaging.markers import Marker

#: glibc assumed when the release's own libc.so.6 cannot be read: manylinux2014's (PEP 599).
GLIBC_FLOOR = (2, 17)
#: Boards with an ARMv6 CPU (BCM2835): Pi Zero / Zero W and Pi 1.
ARMV6_BOARDS = frozenset({"pi0", "pi1"})
_PYTHON_TCZ = re.compile(r"python(3)\.(\d+)\.tcz")
_NO_MATCH = re.compile(
    r"(?:No matching distribution found for|Could not find a version that satisfies the "
    r"requirement)\s+(\S+)"
)
_OTHER_PYTHON = re.compile(r"Ignored the following versions that require a different python")
_NETWORK = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Network is unreachable|"
    r"Temporary failure in name resolution|Name or service not known|ProxyError|"
    r"Read timed out|ConnectTimeoutError|SSLError"
)
_MAX_ROUNDS = 4
KEY_VERSION = "1"


class WheelError(StepError):
    """A requirement has no wheel for the Pi's platform and Python."""

    title = "No wheel for the Pi"

    def __init__(self, message: str, *, package: str, fix: str = "", details: str = "") -> None:
        super().__init__(message, fix=fix, details=details)
        self.package = package


@dataclass(frozen=True)
class Target:
    """What the wheels must run on."""

    python: str
    """"3.11" (from the pythonX.Y extension)."""
    platforms: tuple[str, ...]
    """pip --platform tags, most preferred first."""
    machine: str
    """platform_machine on the Pi: armv6l, armv7l or aarch64."""
    armv6_boards: tuple[str, ...] = ()
    """The ARMv6 boards (pi0, pi1) that make an armhf/armv7 release armv6l-only."""

    @property
    def platform(self) -> str:
        """The primary platform tag (for display and the manifest)."""
        return self.platforms[0]

    def marker_env(self, extras: Iterable[str] = ()) -> list[dict[str, str]]:
        """Marker environments of the Pi, one per extra (and one without)."""
        base = {
            "python_version": self.python,
            "python_full_version": f"{self.python}.0",
            "implementation_name": "cpython",
            "implementation_version": f"{self.python}.0",
            "platform_python_implementation": "CPython",
            "platform_machine": self.machine,
            "platform_system": "Linux",
            "sys_platform": "linux",
            "os_name": "posix",
            "extra": "",
        }
        return [base] + [{**base, "extra": e} for e in extras]


@dataclass(frozen=True)
class WheelSet:
    """The installed tree and what went into it."""

    site_packages: Path
    target: Target
    requirements: tuple[str, ...]
    wheels: Mapping[str, str] = field(default_factory=dict)
    """Wheel file name → sha256."""
    key: str = ""
    cached: bool = False


def python_version(extensions: ExtensionSet) -> str:
    """The Python version of the pythonX.Y extension in the closure ("3.11").

    A requested interpreter wins over one pulled in as a dependency; among several, the newest.

    Raises:
        AnswersError: no pythonX.Y.tcz is selected (names ``extensions.names``).
    """
    found: list[tuple[bool, int, int, str]] = []
    names = {p.name for p in extensions.packages} | set(extensions.requested)
    for name in names:
        m = _PYTHON_TCZ.fullmatch(name)
        if m:
            major, minor = int(m.group(1)), int(m.group(2))
            found.append((name in extensions.requested, major, minor, f"{major}.{minor}"))
    if not found:
        raise AnswersError(
            "extensions.names",
            "no Python interpreter extension (pythonX.Y.tcz) is selected, and the app needs one",
            fix="add python3.11.tcz (piCore 14.x and later) or python3.8.tcz (12.x/13.x) "
            "to extensions.names",
        )
    return max(found)[3]


def target_for(
    arch: str,
    python: str,
    *,
    glibc: tuple[int, int] | None = None,
    boards: Iterable[str] = (),
) -> Target:
    """pip platform tags for a piCore architecture directory, its glibc and the boards served.

    Args:
        arch: ``release.arch``.
        python: "3.11".
        glibc: the release's glibc (``ReleaseArtifact.glibc``); None: manylinux2014's 2.17.
        boards: ``release.boards``; ``pi0``/``pi1`` (ARMv6) allow only armv6l and pure wheels.
    """
    if arch not in ARCHES:
        raise AnswersError("release.arch", f"{arch!r} is not one of {', '.join(ARCHES)}")
    armv6 = tuple(b for b in boards if b in ARMV6_BOARDS)
    if arch == "armv6" or (arch != "aarch64" and armv6):
        return Target(python, ("linux_armv6l",), "armv6l", armv6 if arch != "armv6" else ())
    machine = "aarch64" if arch == "aarch64" else "armv7l"
    major, minor = glibc or GLIBC_FLOOR
    newest = minor if major == 2 and minor >= 17 else 17
    tags = [f"manylinux2014_{machine}"]
    tags += [f"manylinux_2_{n}_{machine}" for n in range(newest, 16, -1)]
    tags.append(f"linux_{machine}")
    return Target(python, tuple(tags), machine)


def wheelhouse_listing(wheelhouse: Path | None) -> list[tuple[str, str]]:
    """(file name, sha256) of every wheel in the wheelhouse, sorted; [] without one."""
    if wheelhouse is None:
        return []
    return sorted((p.name, sha256_file(p)) for p in wheelhouse.glob("*.whl") if p.is_file())


def cache_key(
    requirements: Sequence[str], target: Target, listing: Sequence[tuple[str, str]]
) -> str:
    """Hash of everything that decides the installed tree."""
    blob = json.dumps(
        {
            "v": KEY_VERSION,
            "requirements": list(requirements),
            "python": target.python,
            "platforms": list(target.platforms),
            "wheelhouse": [list(x) for x in listing],
            "index": "wheelhouse" if listing else "pypi",
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def check_requirement(line: str, where: str) -> str:
    """A requirement line as pip will see it; AnswersError naming ``where`` when malformed."""
    why = invalid(line)
    if why is not None:
        raise AnswersError(
            where, f"{line!r} is not a pip requirement: {why}", fix="write it like fastapi>=0.110"
        )
    return line


def for_target(requirements: Sequence[str], target: Target) -> list[str]:
    """The requirements whose environment marker holds on the Pi (marker kept off the line).

    Each as pip sees it: ``packaging``'s spelling (``steps.reqline`` for plain lines).
    """
    out: list[str] = []
    env = target.marker_env()[0]
    for line in requirements:
        text = plain(line)
        if text is None:
            from packaging.requirements import Requirement

            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            req.marker = None
            text = str(req)
        if text not in out:
            out.append(text)
    return out


def missing_for_target(report: Mapping[str, Any], target: Target) -> list[str]:
    """Dependencies that pip skipped (markers evaluated for the host) but the Pi needs."""
    from packaging.markers import InvalidMarker
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    installed = {
        canonicalize_name(str(item["metadata"]["name"])) for item in report.get("install", [])
    }
    missing: list[str] = []
    for item in report.get("install", []):
        extras = [str(e) for e in item.get("requested_extras") or []]
        envs = target.marker_env(extras)
        for line in item["metadata"].get("requires_dist") or []:
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if canonicalize_name(req.name) in installed:
                continue
            if req.marker is not None:
                try:
                    if not any(_holds(req.marker, env) for env in envs):
                        continue
                except InvalidMarker:
                    continue
            req.marker = None
            if str(req) not in missing:
                missing.append(str(req))
    return missing


def _holds(marker: Marker, env: dict[str, str]) -> bool:
    return bool(marker.evaluate(env))


def wheel_hashes(report: Mapping[str, Any]) -> dict[str, str]:
    """Wheel file name → sha256 for every distribution pip installed."""
    out: dict[str, str] = {}
    for item in report.get("install", []):
        info = item.get("download_info") or {}
        url = str(info.get("url", ""))
        name = urllib.parse.unquote(url.rsplit("/", 1)[-1].split("#", 1)[0])
        digest = ((info.get("archive_info") or {}).get("hashes") or {}).get("sha256", "")
        if not digest and url.startswith("file:"):
            # urllib.request pulls in http.client, email and ssl: only after pip used local files
            from urllib.request import url2pathname

            digest = sha256_file(Path(url2pathname(urllib.parse.urlparse(url).path)))
        out[name] = str(digest)
    return dict(sorted(out.items()))


def install(
    step: str,
    ctx: StepContext,
    requirements: Sequence[str],
    target: Target,
    cache_root: Path,
    wheelhouse: Path | None = None,
) -> Generator[Event, None, WheelSet]:
    """Install ``requirements`` for ``target`` into the cache (or reuse the cached tree).

    Yields pip's output as LogLines; returns the WheelSet.

    Raises:
        WheelError: a requirement has no wheel for the Pi (names it, says how to fix it).
        DownloadError: PyPI could not be reached.
        StepError: pip failed otherwise (its last stderr lines are in the details).
    """
    if wheelhouse is not None and not wheelhouse.is_dir():
        raise AnswersError(
            "app.wheelhouse",
            f"{wheelhouse} is not a directory",
            fix="create it and put the Pi's wheels there, or leave app.wheelhouse empty",
        )
    reqs = for_target(requirements, target)
    listing = wheelhouse_listing(wheelhouse)
    key = cache_key(reqs, target, listing)
    final = cache_root / "wheels" / key
    done = final / "wheels.json"
    if done.is_file() and (final / "site-packages").is_dir():
        data = json.loads(done.read_text())
        yield LogLine(step, f"Pi wheels for CPython {target.python} {target.platform}: cached")
        return WheelSet(
            final / "site-packages", target, tuple(reqs), data["wheels"], key, cached=True
        )
    yield LogLine(
        step,
        f"installing {len(reqs)} requirement(s) for CPython {target.python} on "
        f"{target.platform} from {wheelhouse or 'PyPI'}",
    )
    wanted = list(reqs)
    try:
        with replacing_dir(final) as stage:
            for round_no in range(1, _MAX_ROUNDS + 1):
                ctx.check_cancel()
                yield Progress(step, "wheels", round_no - 1, None, "steps", "pip install")
                site = stage / "site-packages"
                if site.exists():
                    shutil.rmtree(site)
                report = yield from _pip(step, ctx, wanted, target, stage, cache_root, wheelhouse)
                missing = missing_for_target(report, target)
                if not missing:
                    break
                yield LogLine(
                    step,
                    "pip skipped what the Pi's Python needs (markers are evaluated for this "
                    f"host): adding {', '.join(missing)}",
                )
                wanted += missing
            else:
                raise StepError(
                    f"the requirements of {', '.join(reqs)} did not settle after "
                    f"{_MAX_ROUNDS} pip runs",
                    fix="pin the versions in app.python_packages",
                )
            hashes = wheel_hashes(report)
            atomic_write(
                stage / "wheels.json",
                json.dumps(
                    {
                        "requirements": wanted,
                        "python": target.python,
                        "platforms": list(target.platforms),
                        "wheels": hashes,
                    },
                    indent=2,
                    sort_keys=True,
                )
                + "\n",
            )
            (stage / "requirements.txt").unlink(missing_ok=True)
    except OSError as exc:
        raise disk_error(final, exc) from None
    yield Progress(step, "wheels", 1, 1, "steps", f"{len(hashes)} wheels")
    return WheelSet(final / "site-packages", target, tuple(reqs), hashes, key)


def _pip(
    step: str,
    ctx: StepContext,
    requirements: Sequence[str],
    target: Target,
    stage: Path,
    cache_root: Path,
    wheelhouse: Path | None,
) -> Generator[Event, None, dict[str, Any]]:
    reqfile = stage / "requirements.txt"
    reqfile.write_text("".join(r + "\n" for r in requirements))
    report = stage / "report.json"
    args: list[str] = [
        "-m", "pip", "install",
        "--disable-pip-version-check", "--no-input", "--no-color", "--progress-bar", "off",
        "--target", str(stage / "site-packages"),
        "--only-binary=:all:", "--implementation", "cp", "--python-version", target.python,
        "--no-compile", "--no-warn-script-location", "--no-warn-conflicts",
        "--report", str(report),
        "--cache-dir", str(cache_root / "pip"),
    ]  # fmt: skip
    for tag in target.platforms:
        args += ["--platform", tag]
    env: dict[str, str] = {}
    if wheelhouse is not None:
        # offline and hermetic: no index, no pip config files, no PIP_* variables
        args += ["--isolated", "--no-index", "--find-links", str(wheelhouse)]
        env["PIP_CONFIG_FILE"] = os.devnull
    else:
        args += ["--retries", "2", "--timeout", "20"]
    args += ["-r", str(reqfile)]
    stderr: list[str] = []
    try:
        for line in proc.stream(step, sys.executable, *args, cancel=ctx.cancel, env=env):
            if line.stream == "stderr":
                stderr.append(line.text)
            yield line
    except CommandError as exc:
        raise _pip_error(exc, "\n".join(stderr) or exc.stderr, target, wheelhouse) from None
    data: dict[str, Any] = json.loads(report.read_text())
    report.unlink()
    return data


def _pip_error(
    exc: CommandError, stderr: str, target: Target, wheelhouse: Path | None
) -> StepError:
    where = f"CPython {target.python} on {target.platform}"
    source = f"the wheelhouse {wheelhouse}" if wheelhouse else "PyPI"
    if wheelhouse is None and _NETWORK.search(stderr):
        return DownloadError(
            f"pip could not reach the package index while installing the app's wheels for {where}",
            fix="check the network (or proxy settings), or set app.wheelhouse to a local "
            "directory of wheels for offline builds",
        )
    m = _NO_MATCH.search(stderr)
    if m:
        package = m.group(1).rstrip(":")
        name = re.split(r"[<>=!~;\[ ]", package, maxsplit=1)[0]
        other = (
            " (there are versions for other Python versions only)"
            if _OTHER_PYTHON.search(stderr)
            else ""
        )
        armv6 = ""
        if target.armv6_boards:
            armv6 = (
                f"; release.boards includes {', '.join(target.armv6_boards)} (ARMv6), where "
                "armv7l wheels stop with an illegal instruction, so only pure-Python and "
                "armv6l wheels are accepted"
            )
        return WheelError(
            f"{package} has no wheel for the Pi ({where}) in {source}{other}{armv6}",
            package=name,
            fix=(
                f"remove {', '.join(target.armv6_boards)} from release.boards, or put an "
                f"armv6l wheel of {name} (piwheels.org) into app.wheelhouse"
                if target.armv6_boards
                else f"use a pure-Python alternative to {name}, build a wheel for the Pi into "
                f"app.wheelhouse (`pip wheel {name}` on a Pi, or one from piwheels.org), or "
                f"drop {name} from app.python_packages / the app's requirements.txt"
            ),
            details=stderr,
        )
    last = next((ln for ln in reversed(stderr.splitlines()) if ln.startswith("ERROR")), "")
    return StepError(
        f"pip could not install the app's packages for {where}: {last or exc.message}",
        fix="see the pip output above; pin compatible versions in app.python_packages",
        details=stderr,
    )


# ---------------------------------------------------------------------- libraries the Pi lacks


@dataclass(frozen=True)
class MissingLibrary:
    """A shared library an installed extension module needs that nothing on the Pi provides."""

    soname: str
    needed_by: tuple[str, ...]
    """Installed files (relative to site-packages) that name it in DT_NEEDED."""


def missing_libraries(site_packages: Path, provided: Collection[str]) -> list[MissingLibrary]:
    """Every DT_NEEDED name of the installed shared objects that ``provided`` lacks.

    Libraries a wheel bundles itself (``numpy.libs/…``, found through its RPATH) count as
    provided: any shared object inside ``site_packages`` does.
    """
    objects: list[Path] = []
    bundled: set[str] = set()
    for path in sorted(site_packages.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        if path.name.endswith(".so") or ".so." in path.name:
            bundled.add(path.name)
            objects.append(path)
    wants: dict[str, list[str]] = {}
    for path in objects:
        try:
            names = elf.needed(path.read_bytes())
        except ValueError:
            continue
        rel = path.relative_to(site_packages).as_posix()
        for name in names:
            wants.setdefault(name, []).append(rel)
    return [
        MissingLibrary(name, tuple(users))
        for name, users in sorted(wants.items())
        if name not in provided and name not in bundled
    ]
