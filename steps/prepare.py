"""The Prepare step: the one card that makes a Pi netboot-ready, or that runs it if it cannot.

Per model (``steps.bootloader.models``):

- **otp-card** (Pi 3B): the built system as a card image whose config.txt adds
  ``program_usb_boot_mode=1`` under ``[pi3]``; booting it once sets the OTP bit, and the app on
  it reports OTP row 17 to ``status``. ``prepare.output/firecore-pi3b-otp-<build id>.img``.
- **eeprom-card** (Pi 4, 400, CM4, Pi 5): a bootloader recovery card — ``recovery.bin``, the
  pinned EEPROM image with our BOOT_ORDER/TFTP settings as ``pieeprom.upd`` (``prepare.card =
  "many"``: ``pieeprom.bin``), ``pieeprom.sig``, a README — both as a directory to copy onto
  any FAT32 card and as ``firecore-<model>-eeprom-<hash>.img``.
- **sd-image** (Pi 1, 2, Zero): the build's SD image (``build.sd_image``), beside the tree.
- **nothing** (Pi 3B+): said so, with what to do.

Every card is written whole under a temporary name and renamed into place; an older card of
the same kind in ``prepare.output`` is removed only after the new one is complete. Cards are
deterministic: the update timestamp in ``pieeprom.sig`` is ``SOURCE_DATE_EPOCH`` or the
firmware release's date, not the clock, so the same answers give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from steps.answers import resolve_path
from steps.base import StepContext
from steps.bootloader import bootconf, firmware, models
from steps.bootloader.eeprom import EepromImage
from steps.bootloader.models import ModelInfo
from steps.errors import StepError
from steps.events import Event, LogLine, Planned, Result
from steps.fsutil import disk_error, replacing_dir
from steps.paths import cache_dir
from steps.picore import sdcard
from steps.picore.configtxt import ConfigTxt

NAME = "prepare"
#: The config.txt line that has a Pi 3B's firmware set the OTP netboot bit (boot-net.adoc).
OTP_LINE = "program_usb_boot_mode=1"


@dataclass(frozen=True)
class PreparedCard:
    """What prepare made for one model, and what the user does with it."""

    model: str
    title: str
    action: str
    why: str
    instructions: tuple[str, ...]
    check: str
    note: str = ""
    image: Path | None = None
    sha256: str = ""
    directory: Path | None = None
    files: Mapping[str, str] = field(default_factory=dict)
    """Name → sha256 of every file on the card (EEPROM cards)."""
    settings: Mapping[str, str] = field(default_factory=dict)
    """The bootloader properties written (EEPROM cards)."""

    def to_data(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "title": self.title,
            "action": self.action,
            "why": self.why,
            "note": self.note,
            "instructions": list(self.instructions),
            "check": self.check,
            "image": str(self.image) if self.image else None,
            "sha256": self.sha256 or None,
            "directory": str(self.directory) if self.directory else None,
            "files": dict(self.files),
            "settings": dict(self.settings),
        }


def _write_hint(image: Path) -> str:
    return f"firecore-wizard write-image {image} --device /dev/sdX"


class PrepareStep:
    """Make the card for one model (see the module docstring)."""

    name = NAME
    title = "Prepare"

    def __init__(self, model: str) -> None:
        self.info: ModelInfo = models.model(model)
        self.warnings: list[str] = []

    def run(self, ctx: StepContext) -> Iterator[Event]:
        """Make the card; the Result's data is ``PreparedCard.to_data()``."""
        info = self.info
        yield LogLine(NAME, f"{info.title}: {models.why(info)}")
        card: PreparedCard | None
        if info.action == "nothing":
            card = self._nothing()
        elif info.action == "eeprom-card":
            card = yield from self._eeprom_card(ctx)
        elif info.action == "otp-card":
            card = yield from self._otp_card(ctx)
        else:
            card = yield from self._sd_image(ctx)
        for warning in self.warnings:
            yield LogLine(NAME, warning, "warning")
        if card is None:  # dry run
            return
        ctx.results.put(card)
        where = f": {card.image}" if card.image else ""
        yield Result(NAME, f"{info.title}: {_summary(card)}{where}", card.to_data())

    # ------------------------------------------------------------------ per action

    def _card(self, **kw: Any) -> PreparedCard:
        info = self.info
        return PreparedCard(
            info.key, info.title, info.action, models.why(info), note=info.note, **kw
        )

    def _nothing(self) -> PreparedCard:
        return self._card(
            instructions=(
                "Remove any bootable SD card, connect the Pi's Ethernet to this LAN and power "
                "it on.",
            ),
            check="firecore-wizard status lists the Pi once our system runs on it; its "
            "netboot column reads 'booted from the network'.",
        )

    def _tree(self, ctx: StepContext) -> Path:
        boards = ctx.answers.release.boards
        wanted = self.info.boards
        if wanted and not set(wanted) & set(boards):
            self.warnings.append(
                f"release.boards ({', '.join(boards)}) has no {' or '.join(wanted)}: the "
                f"{self.info.title} boots the card, but kernel-module extensions are not "
                f"staged for its kernel (add {wanted[0]} and build again)"
            )
        tree = resolve_path(ctx.answers.build.output)
        if not (tree / sdcard.MANIFEST).is_file():
            raise StepError(
                f"the {self.info.title} card carries the built system, and {tree} holds no build",
                fix="build first: firecore-wizard --answers FILE (or the wizard's Build screen)",
            )
        return tree

    def _sd_image(self, ctx: StepContext) -> Generator[Event, None, PreparedCard | None]:
        tree = self._tree(ctx)
        if ctx.dry_run:
            yield Planned(NAME, "write", str(tree.parent / "firecore-<build id>.img"), "SD image")
            return None
        image = yield from sdcard.tree_image(NAME, tree, cancel=ctx.cancel)
        manifest = _manifest(tree)
        return self._card(
            instructions=(
                f"Write the SD image to a card: {_write_hint(image)}",
                f"Put the card in the {self.info.title} and power it on: it runs the same "
                "system as the netbooted Pis. After a new build, write the new image.",
            ),
            check="firecore-wizard status lists the Pi; its netboot column reads "
            "'booted from SD card'.",
            image=image,
            sha256=str(manifest.get("sd_image", {}).get("sha256", "")),
        )

    def _otp_card(self, ctx: StepContext) -> Generator[Event, None, PreparedCard | None]:
        tree = self._tree(ctx)
        manifest = _manifest(tree)
        build_id = str(manifest["build_id"])
        out = resolve_path(ctx.answers.prepare.output)
        dest = out / f"firecore-pi3b-otp-{build_id}.img"
        config_name = next((f for f in manifest["files"] if f.lower() == "config.txt"), None)
        if config_name is None:
            raise StepError(f"the build in {tree} has no config.txt", fix="build again")
        config = ConfigTxt.from_bytes((tree / config_name).read_bytes(), source=config_name)
        patched = config.with_lines([OTP_LINE], section="pi3").to_bytes()
        if ctx.dry_run:
            yield Planned(NAME, "write", str(dest), f"this build + {OTP_LINE} in config.txt")
            return None
        files = [
            sdcard.CardFile(rel, data=patched)
            if rel == config_name
            else sdcard.CardFile(rel, source=tree / rel)
            for rel in sorted(manifest["files"])
        ]
        dirs = [p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_dir()]
        card = yield from sdcard.write_card(
            NAME,
            files,
            dest,
            label="FIRECORE",
            serial=int(hashlib.sha256(f"otp-{build_id}".encode()).hexdigest()[:8], 16),
            mtime=int(manifest.get("built", 0)),
            dirs=dirs,
            cancel=ctx.cancel,
        )
        _remove_older(out, "firecore-pi3b-otp-", dest)
        return self._card(
            instructions=(
                f"Write the card: {_write_hint(dest)}",
                "Put it in the Pi 3B, connect its Ethernet to this LAN and power it on: it "
                "boots this build from the card, and the firmware sets the OTP bit as it "
                "starts.",
                "Power the Pi off, remove the card and power it on again: it now boots from "
                "the network.",
            ),
            check="firecore-wizard status, while the Pi runs from the card: its netboot "
            "column reads 'enabled (OTP 17:3020000a)'.",
            image=dest,
            sha256=card.sha256,
        )

    def _eeprom_card(self, ctx: StepContext) -> Generator[Event, None, PreparedCard | None]:
        prep = ctx.answers.prepare
        catalog = firmware.load_catalog(prep.eeprom_catalog)
        release = catalog.release(self.info.chip)
        values = bootconf.netboot_settings(prep)
        out = resolve_path(prep.output)
        upd = "pieeprom.upd" if prep.card == "once" else "pieeprom.bin"
        if ctx.dry_run:
            for name in ("recovery.bin", upd, "pieeprom.sig", "README.txt"):
                yield Planned(NAME, "write", str(out / f"{self.info.key}-eeprom" / name),
                              f"EEPROM {release.version}")  # fmt: skip
            yield Planned(NAME, "write", str(out / f"firecore-{self.info.key}-eeprom-*.img"),
                          f"card image; bootloader config {values}")  # fmt: skip
            return None
        got = yield from firmware.fetch_release(
            release,
            prep.eeprom_mirrors,
            cache_dir(ctx.answers, ctx.cache_dir),
            step=NAME,
            cancel=ctx.cancel,
        )
        ctx.check_cancel()
        original = EepromImage(got["pieeprom"].read_bytes(), release.pieeprom.name)
        text = bootconf.apply(original.config(), values)
        image = original.with_config(text)
        readback = bootconf.settings(image.config())
        if any(readback.get(k) != v for k, v in values.items()):  # pragma: no cover - a bug
            raise StepError(f"the edited bootloader config reads back as {readback}")
        data = image.to_bytes()
        ts = _timestamp(release.version)
        contents = {
            "recovery.bin": got["recovery"].read_bytes(),
            upd: data,
            "pieeprom.sig": firmware.signature(data, ts=ts, chip=release.chip).encode(),
            "README.txt": _readme(self.info, release, text, upd).encode(),
        }
        for line in text.splitlines():
            yield LogLine(NAME, f"bootconf.txt: {line}")
        digest = hashlib.sha256(data).hexdigest()
        directory = out / f"{self.info.key}-eeprom"
        try:
            with replacing_dir(directory) as stage:
                for name, payload in contents.items():
                    (stage / name).write_bytes(payload)
                os.chmod(stage, 0o755)
        except OSError as exc:
            raise disk_error(directory, exc) from None
        dest = out / f"firecore-{self.info.key}-eeprom-{digest[:12]}.img"
        card = yield from sdcard.write_card(
            NAME,
            [sdcard.CardFile(name, data=payload) for name, payload in contents.items()],
            dest,
            label="EEPROM",
            serial=int(digest[:8], 16),
            mtime=ts,
            cancel=ctx.cancel,
        )
        _remove_older(out, f"firecore-{self.info.key}-eeprom-", dest)
        order = bootconf.boot_order_text(values["BOOT_ORDER"])
        after = (
            "recovery.bin then renames itself to RECOVERY.000 and the Pi restarts with the new "
            f"bootloader, which tries {order}. The card works once: write it again for the "
            "next Pi."
            if upd == "pieeprom.upd"
            else "Power the Pi off and remove the card; it stays ready for the next Pi."
        )
        return self._card(
            instructions=(
                f"Write the card: {_write_hint(dest)} — or copy the files in {directory} onto "
                "any FAT32-formatted card smaller than 32 GB.",
                f"Put the card in the {self.info.title}, power it on and wait at least 10 "
                "seconds: the green LED blinks rapidly (an HDMI screen turns green) when the "
                "bootloader is written; another pattern or a red screen is an error.",
                after,
            ),
            check="firecore-wizard status, once our system runs on the Pi: its netboot column "
            f"reads 'enabled (BOOT_ORDER={values['BOOT_ORDER']})'.",
            image=dest,
            sha256=card.sha256,
            directory=directory,
            files={n: hashlib.sha256(p).hexdigest() for n, p in contents.items()},
            settings=values,
        )


def _summary(card: PreparedCard) -> str:
    return {
        "nothing": "nothing to do: it netboots as it is",
        "otp-card": "OTP card (boots this build once with program_usb_boot_mode=1)",
        "eeprom-card": "EEPROM recovery card (BOOT_ORDER="
        + card.settings.get("BOOT_ORDER", "?")
        + ")",
        "sd-image": "cannot netboot: SD image of this build",
    }[card.action]


def _manifest(tree: Path) -> dict[str, Any]:
    data = json.loads((tree / sdcard.MANIFEST).read_text(encoding="utf-8"))
    if not isinstance(data, dict):  # pragma: no cover - remaster writes an object
        raise StepError(f"{tree / sdcard.MANIFEST} is not a build manifest")
    return data


def _timestamp(version: str) -> int:
    """The update timestamp for pieeprom.sig: SOURCE_DATE_EPOCH, else the release date."""
    env = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if env.isdigit():
        return int(env)
    try:
        return int(datetime.strptime(version, "%Y-%m-%d").replace(tzinfo=UTC).timestamp())
    except ValueError:
        return 0


def _remove_older(folder: Path, prefix: str, keep: Path) -> None:
    """Remove earlier cards of the same kind (``prefix*.img``) once ``keep`` is complete."""
    for old in folder.glob(f"{prefix}*.img"):
        if old != keep:
            old.unlink(missing_ok=True)


def _readme(info: ModelInfo, release: firmware.FirmwareRelease, text: str, upd: str) -> str:
    lines = [
        f"{info.title}: bootloader EEPROM recovery card made by firecore-wizard prepare",
        "",
        f"Bootloader: rpi-eeprom firmware-{release.chip} {release.channel} {release.version}",
        f"Image: {upd} (checked by recovery.bin against pieeprom.sig)",
        "Bootloader configuration (bootconf.txt):",
        *(f"    {line}" for line in text.splitlines()),
        "",
        "Power the Pi off, insert this card, power it on and wait at least 10 seconds.",
        "Success: the green LED blinks rapidly; an HDMI screen turns green.",
    ]
    if info.note:
        lines += ["", info.note]
    return "\n".join(lines) + "\n"
