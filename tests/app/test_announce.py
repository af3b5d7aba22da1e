"""The mDNS announcement's names and TXT records (the wire is tested in test_discovery)."""

from __future__ import annotations

import socket
from pathlib import Path

from firecore_app import announce
from firecore_app.settings import Settings

from tests.support.pifiles import pi_files


def test_name_and_txt_records_of_a_pi(tmp_path: Path) -> None:
    settings = Settings.from_env({**pi_files(tmp_path), "FIRECORE_PORT": "8123"})
    host = socket.gethostname().split(".")[0].lower()
    assert announce.instance_name(settings) == f"{host}-abcdef12"
    props = announce.properties(settings)
    assert props["serial"] == "abcdef12" and props["build"] == "b1d0c0de"
    assert props["model"] == "Raspberry Pi 3 Model B Rev 1.2" and props["port"] == "8123"
    info = announce.service_info(settings, "firecore-abcdef12", ["10.0.0.7"])
    assert info.name == "firecore-abcdef12._firecore._tcp.local."
    assert info.server == "firecore-abcdef12.local." and info.port == 8123
    assert info.parsed_addresses() == ["10.0.0.7"]
    assert info.properties[b"build"] == b"b1d0c0de"


def test_name_override_is_made_a_dns_label(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"FIRECORE_PROC": str(tmp_path), "FIRECORE_MDNS_NAME": "Kitchen Pi #2"}
    )
    assert announce.instance_name(settings) == "kitchen-pi-2"
    no_serial = Settings.from_env({"FIRECORE_PROC": str(tmp_path)})
    assert announce.instance_name(no_serial) == socket.gethostname().split(".")[0].lower()
    assert announce.properties(no_serial)["serial"] == ""
