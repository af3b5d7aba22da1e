"""Which EEPROM firmware a card gets, and its verified, cached download.

The bundled catalog (``assets/eeprom.json``) pins one release per chip from the rpi-eeprom
repository — the ``default`` image ("updated for new hardware support, critical bug fixes and
periodic update for new features that have been tested via the latest release",
raspberrypi/documentation boot-eeprom.adoc, "Bootloader release status") and the
``recovery.bin`` beside it — with the size, sha256 and md5 of each file. The default mirror's
URL names the repository commit, so the bytes behind it never change.
``prepare.eeprom_catalog`` names another catalog of the same shape (a newer release, say);
``prepare.eeprom_mirrors`` says where the files come from:

- local directories holding a copy of the repository (tried first; for machines without
  internet: ``git clone https://github.com/raspberrypi/rpi-eeprom`` elsewhere and copy it);
- base URLs, fetched through ``steps.fetch.download`` (retries, failover between URLs, the
  content-addressed download cache: a second card needs no network at all).

Nothing is taken on trust: a file reaches a card only after its sha256 matched the catalog.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from steps.answers import resolve_path
from steps.errors import AnswersError, Cancelled, ChecksumError, DownloadError
from steps.events import Event, LogLine, Progress
from steps.fetch.download import Downloader, Want
from steps.fsutil import sha256_file
from steps.paths import asset

CATALOG_KEY = "prepare.eeprom_catalog"
MIRRORS_KEY = "prepare.eeprom_mirrors"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class FirmwareFile:
    """One pinned file of the rpi-eeprom repository."""

    path: str
    """Path in the repository, e.g. "firmware-2711/default/recovery.bin"."""
    size: int
    sha256: str
    md5: str

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name


@dataclass(frozen=True)
class FirmwareRelease:
    """The bootloader image and recovery.bin a card for one chip gets."""

    chip: str
    """"2711" (Pi 4, 400, CM4) or "2712" (Pi 5)."""
    version: str
    """The release date the image is named by, e.g. "2026-05-17"."""
    channel: str
    pieeprom: FirmwareFile
    recovery: FirmwareFile


@dataclass(frozen=True)
class Catalog:
    """The pinned releases, by chip."""

    releases: Mapping[str, FirmwareRelease]
    source: str
    path: Path

    def release(self, chip: str) -> FirmwareRelease:
        try:
            return self.releases[chip]
        except KeyError:
            raise AnswersError(
                CATALOG_KEY,
                f"{self.path} has no release for BCM{chip} "
                f"(it has {', '.join(sorted(self.releases)) or 'none'})",
                fix="add one, or leave the key empty for the bundled catalog",
            ) from None


def _file(where: str, raw: Any) -> FirmwareFile:
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be an object with path, size, sha256, md5")
    path = str(raw.get("path", ""))
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts:
        raise ValueError(f"{where}.path {path!r} is not a relative path in the repository")
    sha, md5 = str(raw.get("sha256", "")).lower(), str(raw.get("md5", "")).lower()
    if not _HEX64.match(sha) or not _HEX32.match(md5):
        raise ValueError(f"{where} needs a sha256 (64 hex) and an md5 (32 hex)")
    size = raw.get("size")
    if not isinstance(size, int) or size <= 0:
        raise ValueError(f"{where}.size must be a positive number of bytes")
    return FirmwareFile(path, size, sha, md5)


def load_catalog(name: str = "") -> Catalog:
    """The catalog at ``name`` (an answers path), or the bundled one.

    Raises:
        AnswersError: naming ``prepare.eeprom_catalog`` — missing, not JSON, or a bad entry.
    """
    path = resolve_path(name) if name else asset("eeprom.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AnswersError(CATALOG_KEY, f"{path} does not exist", fix="check the path") from None
    except (OSError, ValueError) as exc:
        raise AnswersError(CATALOG_KEY, f"{path}: not a JSON catalog ({exc})") from None
    releases: dict[str, FirmwareRelease] = {}
    try:
        raw = data.get("releases") if isinstance(data, dict) else None
        if not isinstance(raw, dict) or not raw:
            raise ValueError("no releases")
        for chip, entry in raw.items():
            if chip not in ("2711", "2712") or not isinstance(entry, dict):
                raise ValueError(f"releases.{chip}: the chips are 2711 and 2712")
            releases[chip] = FirmwareRelease(
                chip,
                str(entry.get("version", "")),
                str(entry.get("channel", "")),
                _file(f"releases.{chip}.pieeprom", entry.get("pieeprom")),
                _file(f"releases.{chip}.recovery", entry.get("recovery")),
            )
    except ValueError as exc:
        raise AnswersError(CATALOG_KEY, f"{path}: {exc}", fix="see docs/prepare.md") from None
    return Catalog(releases, str(data.get("source", "")), path)


def _is_url(mirror: str) -> bool:
    return mirror.startswith(("http://", "https://"))


def _from_directory(
    root: Path, item: FirmwareFile, cancel: threading.Event | None
) -> tuple[Path | None, str]:
    """The verified file from a local copy of the repository; (None, why) if it is not there."""
    path = root / item.path
    if not path.is_file():
        return None, f"{root}: no {item.path}"
    digest = sha256_file(path, cancel=cancel)
    if digest != item.sha256:
        raise ChecksumError(item.name, item.sha256, digest, source=str(path), algorithm="sha256")
    return path, ""


def fetch_release(
    release: FirmwareRelease,
    mirrors: Sequence[str],
    cache_root: Path,
    *,
    step: str,
    cancel: threading.Event | None = None,
) -> Generator[Event, None, dict[str, Path]]:
    """Get ``release``'s two files, verified; returns {"pieeprom": path, "recovery": path}.

    Raises:
        DownloadError: no mirror had a file — the message says what to download by hand.
        ChecksumError: a file did not match the catalog (it is not used, nor cached).
        Cancelled: ``cancel`` was set.
    """
    wanted = {"pieeprom": release.pieeprom, "recovery": release.recovery}
    got: dict[str, Path] = {}
    problems: list[str] = []
    for mirror in (m for m in mirrors if not _is_url(m)):
        root = resolve_path(mirror)
        for key, item in wanted.items():
            if key in got:
                continue
            path, why = _from_directory(root, item, cancel)
            if path is not None:
                got[key] = path
                yield LogLine(step, f"{item.name}: from {path}, sha256 ok")
            else:
                problems.append(why)
    urls = [m for m in mirrors if _is_url(m)]
    todo = {k: v for k, v in wanted.items() if k not in got}
    if todo and urls:
        wants = [
            Want(item.path, md5=item.md5, size=item.size, check=_sha256_check(item))
            for item in todo.values()
        ]
        try:
            with Downloader(urls, cache_root, cancel=cancel, step=step) as downloader:
                fetched = yield from downloader.fetch(wants, phase="firmware")
        except (Cancelled, ChecksumError):
            raise
        except DownloadError as exc:
            problems.append(exc.message)
        else:
            for key, item in todo.items():
                hit = fetched[item.path]
                if hit.sha256 != item.sha256:  # a cached object from another catalog
                    raise ChecksumError(
                        item.name, item.sha256, hit.sha256, source=str(hit.file), algorithm="sha256"
                    )
                got[key] = hit.file
    missing = [item for key, item in wanted.items() if key not in got]
    if missing:
        raise _offline_error(missing, urls, problems)
    yield Progress(step, "firmware", 2, 2, "files", f"EEPROM {release.version}")
    return got


def _sha256_check(item: FirmwareFile) -> Any:
    def check(path: Path, name: str) -> None:
        digest = sha256_file(path)
        if digest != item.sha256:
            raise ChecksumError(name, item.sha256, digest, algorithm="sha256")

    return check


def _offline_error(
    missing: list[FirmwareFile], urls: Sequence[str], problems: list[str]
) -> DownloadError:
    names = ", ".join(f.path for f in missing)
    where = urls[0] if urls else "https://raw.githubusercontent.com/raspberrypi/rpi-eeprom/master/"
    links = " ".join(where + f.path for f in missing)
    return DownloadError(
        f"the EEPROM firmware ({names}) is not available here: " + "; ".join(problems[-3:]),
        fix=(
            f"on a machine with internet download {links} (or `git clone "
            "https://github.com/raspberrypi/rpi-eeprom`), copy it here keeping the "
            f"firmware-*/ paths, and add that directory to {MIRRORS_KEY} "
            "(or pass --eeprom-mirror DIR)"
        ),
    )


def signature(image: bytes, *, ts: int, chip: str) -> str:
    """The ``.sig`` file for an EEPROM image: its sha256, the update timestamp, the SoC.

    "The .sig files contain the hexadecimal sha256 checksum of the corresponding image file on
    the first line, optionally followed by the timestamp of the image (ts: unixtime) on the next
    line; additional fields may be added in the future" (raspberrypi/documentation
    boot-eeprom.adoc, "Bootloader update files"). rpi-eeprom's own tools (rpi-eeprom-digest
    with -c, as make-release and rpi-eeprom-update call it) add ``target-soc: <chip>``.
    """
    return f"{hashlib.sha256(image).hexdigest()}\nts: {ts}\ntarget-soc: {chip}\n"
