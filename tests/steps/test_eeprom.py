"""The EEPROM image editor, the bootloader config text, the firmware catalog and its download."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from steps.answers import BOOT_MODES, PrepareAnswers
from steps.bootloader import bootconf
from steps.bootloader.eeprom import CONFIG, ERASE_SECTOR, MAX_FILE, EepromError, EepromImage
from steps.bootloader.firmware import fetch_release, load_catalog, signature
from steps.demo.eeprom import DEFAULT_CONFIG, make_image, write_release
from steps.demo.server import Corrupt, MirrorServer
from steps.errors import AnswersError, ChecksumError, DownloadError
from steps.events import drive


def config_span(img: EepromImage) -> tuple[int, int]:
    """Where bootconf.txt and the padding after it live (what an edit may change)."""
    i = next(i for i, s in enumerate(img.sections) if s.name == CONFIG)
    later = [s for s in img.sections[i + 1 :] if not s.is_padding]
    end = later[0].offset if later else min(64 * 1024 + 988 * 1024, len(img.to_bytes()) - 4096)
    return img.sections[i].offset, end


# ---------------------------------------------------------------------- the image


@pytest.mark.parametrize(("chip", "ab"), [("2711", False), ("2712", True)])
def test_generated_images_parse_like_released_ones(chip: str, ab: bool) -> None:
    img = EepromImage(make_image(chip))
    assert img.chip == chip and img.ab is ab
    assert img.file_names()[-4:] == ["pubkey.bin", "cacert.der", "bootconf.sig", CONFIG]
    assert img.config() == DEFAULT_CONFIG[chip]


@pytest.mark.parametrize("chip", ["2711", "2712"])
def test_config_round_trip_changes_nothing_else(chip: str) -> None:
    original = make_image(chip)
    img = EepromImage(original)
    values = {"BOOT_ORDER": "0xf21", "TFTP_IP": "10.1.2.3", "TFTP_PREFIX": "2"}
    text = bootconf.apply(img.config(), values)
    edited = img.with_config(text)
    assert edited.config() == text
    assert {k: bootconf.settings(edited.config())[k] for k in values} == values
    start, end = config_span(img)
    new = edited.to_bytes()
    assert len(new) == len(original)
    assert new[:start] == original[:start] and new[end:] == original[end:]
    assert new[-ERASE_SECTOR:] == original[-ERASE_SECTOR:]  # the bootloader's own page
    assert edited.file_names() == img.file_names()
    # writing the original text back gives the original image, byte for byte
    assert edited.with_config(img.config()).to_bytes() == original


@pytest.mark.parametrize("chip", ["2711", "2712"])
def test_config_size_limit(chip: str) -> None:
    img = EepromImage(make_image(chip))
    fits = "#" * (MAX_FILE - 1) + "\n"
    assert img.with_config(fits).config() == fits
    with pytest.raises(EepromError, match=f"{MAX_FILE + 1} bytes"):
        img.with_config(fits + "x")


def test_damaged_images_are_named() -> None:
    with pytest.raises(EepromError, match="not the size"):
        EepromImage(b"\xff" * 1000, "x.bin")
    data = bytearray(make_image("2711"))
    data[0:4] = b"\x12\x34\x56\x78"
    with pytest.raises(EepromError, match="no section header at byte 0x0"):
        EepromImage(bytes(data), "x.bin")
    no_conf = make_image("2711").replace(b"bootconf.txt", b"bootconf.bak")
    with pytest.raises(EepromError, match=r"no bootconf\.txt"):
        EepromImage(no_conf).config()


def test_signature_is_sha256_then_timestamp() -> None:
    data = make_image("2712")
    sig = signature(data, ts=1700000000, chip="2712").splitlines()
    assert sig == [hashlib.sha256(data).hexdigest(), "ts: 1700000000", "target-soc: 2712"]


# ---------------------------------------------------------------------- the config text


def test_settings_follow_config_txt_rules() -> None:
    text = (
        "BOOT_UART=1\n[pi4]\nBOOT_ORDER=0xf14\n[all]\nBOOT_ORDER=0xf41 # comment\n"
        "[cm4]\nTFTP_IP=1.2.3.4\n"
    )
    assert bootconf.settings(text) == {"BOOT_UART": "1", "BOOT_ORDER": "0xf41"}
    out = bootconf.apply(text, {"BOOT_ORDER": "0xf21", "TFTP_IP": "10.0.0.1"})
    assert out == "BOOT_UART=1\n[pi4]\n[all]\n[cm4]\n[all]\nBOOT_ORDER=0xf21\nTFTP_IP=10.0.0.1\n"
    assert bootconf.settings(out) == {
        "BOOT_UART": "1",
        "BOOT_ORDER": "0xf21",
        "TFTP_IP": "10.0.0.1",
    }
    assert bootconf.apply(out, {"BOOT_ORDER": "0xf21", "TFTP_IP": "10.0.0.1"}) == out


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({}, {"BOOT_ORDER": "0xf21"}),
        (
            {"boot_order": "network,sd", "tftp_prefix": "mac"},
            {"BOOT_ORDER": "0xf12", "TFTP_PREFIX": "2"},
        ),
        (
            {"tftp_prefix": "pis/", "tftp_ip": "192.168.1.5", "dhcp_timeout": 20000},
            {
                "BOOT_ORDER": "0xf21",
                "TFTP_PREFIX": "1",
                "TFTP_PREFIX_STR": "pis/",
                "TFTP_IP": "192.168.1.5",
                "DHCP_TIMEOUT": "20000",
            },
        ),
    ],
)
def test_netboot_settings_from_answers(answers: dict, expected: dict) -> None:
    assert bootconf.netboot_settings(PrepareAnswers(**answers)) == expected


def test_boot_order_text_names_every_mode() -> None:
    assert bootconf.boot_order_text("0xf21") == "SD card, then network, then restart"
    assert set(bootconf.MODE_TITLES) == set(BOOT_MODES.values())


@pytest.mark.parametrize(
    ("key", "value"),
    [("boot_order", "0xf41"), ("boot_order", "sd,floppy"), ("tftp_prefix", "a b"),
     ("tftp_ip", "10.0.0"), ("dhcp_timeout", 4000)],
)  # fmt: skip
def test_prepare_answers_refuse_bad_values(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=key):
        PrepareAnswers.model_validate({key: value})


# ---------------------------------------------------------------------- catalog and download


def test_bundled_catalog_pins_both_chips() -> None:
    cat = load_catalog()
    assert set(cat.releases) == {"2711", "2712"}
    for chip, rel in cat.releases.items():
        assert rel.pieeprom.path == f"firmware-{chip}/default/pieeprom-{rel.version}.bin"
        assert rel.recovery.path == f"firmware-{chip}/default/recovery.bin"
        assert rel.pieeprom.size == {"2711": 512 * 1024, "2712": 2 << 20}[chip]


def test_bad_catalogs_name_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "c.json"
    bad.write_text(json.dumps({"releases": {"2711": {"pieeprom": {"path": "../x"}}}}))
    for name, match in [(str(bad), "relative path"), (str(tmp_path / "none.json"), "not exist")]:
        with pytest.raises(AnswersError, match=match) as err:
            load_catalog(name)
        assert err.value.key == "prepare.eeprom_catalog"


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    root = tmp_path / "rpi-eeprom"
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(write_release(root)))
    yield root, catalog


def test_fetch_from_a_local_copy(repo: tuple[Path, Path], tmp_path: Path) -> None:
    root, catalog = repo
    rel = load_catalog(str(catalog)).release("2711")
    got = drive(fetch_release(rel, [str(root)], tmp_path / "cache", step="t"))
    assert got["pieeprom"].read_bytes() == (root / rel.pieeprom.path).read_bytes()
    (root / rel.recovery.path).write_bytes(b"not the pinned file")
    with pytest.raises(ChecksumError, match="sha256"):
        drive(fetch_release(rel, [str(root)], tmp_path / "cache", step="t"))


def test_fetch_over_http_verifies_and_caches(repo: tuple[Path, Path], tmp_path: Path) -> None:
    root, catalog = repo
    rel = load_catalog(str(catalog)).release("2712")
    with MirrorServer(root) as server:
        server.fault("*/pieeprom-*.bin", Corrupt(), repeat_last=True)
        with pytest.raises(ChecksumError):  # a damaged file never reaches a card
            drive(fetch_release(rel, [server.url], tmp_path / "cache", step="t"))
        assert not list((tmp_path / "cache").rglob("pieeprom-*.bin"))
        server.clear_faults()
        server.fault("*/recovery.bin", Corrupt())  # once: the downloader's retry recovers
        got = drive(fetch_release(rel, [server.url], tmp_path / "cache", step="t"))
        assert hashlib.sha256(got["pieeprom"].read_bytes()).hexdigest() == rel.pieeprom.sha256
        server.reset_counts()
        again = drive(fetch_release(rel, [server.url], tmp_path / "cache", step="t"))
        assert again == got and server.count() == 0  # the second card needs no network


def test_offline_error_says_what_to_download(repo: tuple[Path, Path], tmp_path: Path) -> None:
    _, catalog = repo
    rel = load_catalog(str(catalog)).release("2711")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
    with pytest.raises(DownloadError) as err:
        drive(fetch_release(rel, [dead, str(tmp_path / "empty")], tmp_path / "cache", step="t"))
    assert rel.pieeprom.path in err.value.message
    assert f"{dead}{rel.recovery.path}" in err.value.fix
    assert "prepare.eeprom_mirrors" in err.value.fix and "git clone" in err.value.fix
