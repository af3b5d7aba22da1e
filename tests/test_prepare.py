"""``prepare``: per model, the card that makes a Pi netboot-ready, read back with real tools."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from steps.answers import Answers
from steps.answers_toml import dump_answers
from steps.base import StepContext
from steps.bootloader import bootconf
from steps.bootloader.eeprom import EepromImage
from steps.demo.eeprom import VERSION, write_release
from steps.demo.factory import Mirror
from steps.demo.server import MirrorServer
from steps.errors import StepError
from steps.events import LogLine
from steps.prepare import OTP_LINE, PreparedCard, PrepareStep
from tests.support.cards import fsck_partition, read_back
from tests.test_remaster import Build
from wizard.cli import main


def prepare(answers: Answers, model: str, *, dry_run: bool = False) -> PreparedCard | None:
    ctx = StepContext(answers=answers, dry_run=dry_run)
    for _ in PrepareStep(model).run(ctx):
        pass
    return ctx.results.get(PreparedCard)


@pytest.fixture
def eeprom_answers(answers: Answers, tmp_path: Path) -> Answers:
    """Answers whose [prepare] points at a generated rpi-eeprom copy and its catalog."""
    repo = tmp_path / "rpi-eeprom"
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(write_release(repo)))
    answers.prepare.eeprom_catalog = str(catalog)
    answers.prepare.eeprom_mirrors = [str(repo)]
    answers.prepare.output = str(tmp_path / "cards")
    return answers


@pytest.mark.parametrize(("model", "chip"), [("pi4", "2711"), ("pi5", "2712"), ("cm4", "2711")])
def test_eeprom_card(eeprom_answers: Answers, tmp_path: Path, model: str, chip: str) -> None:
    eeprom_answers.prepare.boot_order = "sd,network"
    eeprom_answers.prepare.tftp_ip = "192.168.7.2"
    eeprom_answers.prepare.tftp_prefix = "mac"
    eeprom_answers.prepare.dhcp_timeout = 20000
    card = prepare(eeprom_answers, model)
    assert card is not None and card.image is not None and card.directory is not None
    files = {p.name: p.read_bytes() for p in card.directory.iterdir()}
    assert set(files) == {"recovery.bin", "pieeprom.upd", "pieeprom.sig", "README.txt"}

    source = tmp_path / "rpi-eeprom" / f"firmware-{chip}" / "default"
    assert files["recovery.bin"] == (source / "recovery.bin").read_bytes()
    original = EepromImage((source / f"pieeprom-{VERSION}.bin").read_bytes())
    written = EepromImage(files["pieeprom.upd"])
    assert written.chip == chip
    want = {
        "BOOT_ORDER": "0xf21",
        "TFTP_IP": "192.168.7.2",
        "TFTP_PREFIX": "2",
        "DHCP_TIMEOUT": "20000",
    }
    got = bootconf.settings(written.config())
    assert {k: got[k] for k in want} == want and card.settings == want
    for line in original.config().splitlines():  # the image's own settings are kept
        assert line in written.config().splitlines() or line.split("=")[0] in want
    # the rest of the image is unchanged: writing the original config back restores it
    assert written.with_config(original.config()).to_bytes() == original.to_bytes()

    sig = files["pieeprom.sig"].decode().splitlines()
    assert sig[0] == hashlib.sha256(files["pieeprom.upd"]).hexdigest()
    day = datetime.strptime(VERSION, "%Y-%m-%d").replace(tzinfo=UTC)
    assert sig[1] == f"ts: {int(day.timestamp())}" and sig[2] == f"target-soc: {chip}"

    rb = read_back(card.image, tmp_path / "rb")
    assert rb.files == files  # the card image holds exactly the card's files
    assert [p["type"] for p in rb.table["partitions"]] == ["c"]
    fsck_partition(card.image, rb, tmp_path)
    assert card.sha256 == hashlib.sha256(card.image.read_bytes()).hexdigest()
    assert any("write-image" in step for step in card.instructions)


def test_eeprom_cards_are_deterministic_and_replace_older_ones(
    eeprom_answers: Answers, tmp_path: Path
) -> None:
    first = prepare(eeprom_answers, "pi4")
    assert first is not None and first.image is not None
    data = first.image.read_bytes()
    again = prepare(eeprom_answers, "pi4")
    assert again is not None and again.image == first.image
    assert first.image.read_bytes() == data
    eeprom_answers.prepare.boot_order = "network,sd"
    eeprom_answers.prepare.card = "many"
    other = prepare(eeprom_answers, "pi4")
    assert other is not None and other.image is not None and other.image != first.image
    assert not first.image.exists()
    assert sorted(p.name for p in other.directory.iterdir()) == [  # type: ignore[union-attr]
        "README.txt",
        "pieeprom.bin",
        "pieeprom.sig",
        "recovery.bin",
    ]


def test_prepare_cli_over_http_then_offline_from_the_cache(
    eeprom_answers: Answers, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "answers.toml"
    eeprom_answers.prepare.eeprom_mirrors = ["http://127.0.0.1:9/"]  # replaced by the flag
    file.write_text(dump_answers(eeprom_answers))
    with MirrorServer(tmp_path / "rpi-eeprom") as server:
        args = ["prepare", "--model", "pi5", "--answers", str(file), "--tftp-ip", "10.9.8.7"]
        assert main([*args, "--eeprom-mirror", server.url]) == 0
        assert server.count("*pieeprom-*") == 1
    out = capsys.readouterr().out
    assert "Raspberry Pi 5" in out and "TFTP_IP=10.9.8.7" in out and "What to do:" in out
    # the server is gone: the cache has both files
    assert main([*args, "--eeprom-mirror", server.url, "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    result = next(obj for obj in lines if obj["type"] == "result")
    assert result["data"]["settings"]["TFTP_IP"] == "10.9.8.7" and lines[-1]["exit_code"] == 0


def test_prepare_cli_errors(
    eeprom_answers: Answers, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "answers.toml"
    eeprom_answers.prepare.eeprom_mirrors = ["http://127.0.0.1:9/"]
    file.write_text(dump_answers(eeprom_answers))
    assert main(["prepare", "--model", "pi4", "--boot-order", "0xf41"]) == 2
    assert "--boot-order" in capsys.readouterr().err
    assert main(["prepare", "--model", "pi9"]) == 2
    assert main(["prepare", "--answers", str(file)]) == 2
    assert "--model is required" in capsys.readouterr().err
    assert main(["prepare", "--model", "pi4", "--answers", str(file)]) == 1  # offline
    err = capsys.readouterr().err
    assert "EEPROM firmware" in err and "prepare.eeprom_mirrors" in err
    assert not (tmp_path / "cards").exists() or not list((tmp_path / "cards").glob("*.img"))
    assert main(["prepare", "--list"]) == 0
    listed = capsys.readouterr().out
    assert all(m in listed for m in ("pi3b", "pi3b+", "pi4", "pi5", "pi2", "zero"))


def test_pi3b_otp_card_is_this_build_plus_one_line(fake_mirror: Mirror, tmp_path: Path) -> None:
    b = Build(fake_mirror, "15.0.0", tmp_path)
    b.answers.prepare.output = str(tmp_path / "cards")
    with pytest.raises(StepError, match="holds no build"):
        prepare(b.answers, "pi3b")
    b.run()
    build_id = b.result().build_id
    card = prepare(b.answers, "pi3b")
    assert card is not None and card.image is not None
    assert card.image.name == f"firecore-pi3b-otp-{build_id}.img"
    manifest = json.loads((b.out / "manifest.json").read_text())
    rb = read_back(card.image, tmp_path / "rb")
    assert set(rb.files) == set(manifest["files"])
    for rel in manifest["files"]:
        if rel != "config.txt":
            assert rb.files[rel] == (b.out / rel).read_bytes(), rel
    config = (b.out / "config.txt").read_bytes()
    assert rb.files["config.txt"] == config + f"[pi3]\n{OTP_LINE}\n".encode()
    fsck_partition(card.image, rb, tmp_path)
    again = prepare(b.answers, "pi3b")
    assert again is not None and again.sha256 == card.sha256


def test_other_models(fake_mirror: Mirror, tmp_path: Path) -> None:
    b = Build(fake_mirror, "15.0.0", tmp_path)
    b.run()
    nothing = prepare(b.answers, "pi3b+")
    assert nothing is not None and nothing.image is None and nothing.action == "nothing"
    ctx = StepContext(answers=b.answers)
    events = list(PrepareStep("pi2").run(ctx))  # boards pi3, pi4: the Pi 2 kernel gets no modules
    assert any(isinstance(e, LogLine) and e.stream == "warning" and "no pi2" in e.text
               for e in events)  # fmt: skip
    sd = ctx.results.get(PreparedCard)
    assert sd is not None and sd.action == "sd-image"
    assert sd.image == b.out.parent / f"firecore-{b.result().build_id}.img"
    assert json.loads((b.out / "manifest.json").read_text())["sd_image"]["sha256"] == sd.sha256
    assert "v1.2" in sd.note  # a Pi 2B v1.2 can netboot like a 3B


def test_dry_run_writes_nothing(eeprom_answers: Answers, tmp_path: Path) -> None:
    assert prepare(eeprom_answers, "pi4", dry_run=True) is None
    assert not (tmp_path / "cards").exists()
    assert not os.listdir(tmp_path / "out") if (tmp_path / "out").exists() else True
