"""Hostile and careless answers: every validator fullmatches, types are strict, keys parse.

Root cause 1 of issue 10: ``re.match(r"^…$")`` accepts ``"value\\n"`` because ``$`` matches
before a final newline. Each key below is given a valid value (accepted) and the same value with
a trailing newline (refused, naming the key).
"""

from __future__ import annotations

import base64
import os
import struct
from pathlib import Path
from typing import Any

import pytest

from steps.answers import load_secrets, parse_answers
from steps.errors import AnswersError
from tests.hostile.conftest import nest

KEY = (
    "ssh-ed25519 "
    + base64.b64encode(
        struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + bytes(range(32))
    ).decode()
)


#: (key path, a valid value, how to add a trailing newline to it)
STRING_KEYS: list[tuple[str, Any]] = [
    ("release.mirrors", ["http://mirror.example/"]),
    ("release.version", "15.0.0"),
    ("extensions.names", ["openssh.tcz"]),
    ("app.path", "/srv/app"),
    ("app.python_packages", ["fastapi>=0.110"]),
    ("app.wheelhouse", "/srv/wheels"),
    ("app.hostname", "firecore"),
    ("app.ssh_authorized_keys", [KEY + " me@laptop"]),
    ("app.bind", "0.0.0.0"),
    ("app.secrets_file", "/etc/firecore.secrets.toml"),
    ("app.env", {"GREETING": "hello"}),
    ("build.output", "build/boot"),
    ("build.cache", "/var/cache/fc"),
    ("build.cmdline_extra", ["quiet"]),
    ("network.interface", "eth0"),
    ("network.tftp_root", "/srv/firecore/tftp"),
    ("network.dnsmasq_conf", "/etc/dnsmasq.d/firecore.conf"),
    ("network.state_dir", "/run/firecore"),
    ("network.backup_dir", "/var/backups/fc"),
    ("network.dnsmasq_extra", ["tftp-mtu=1400"]),
    ("deploy.profiles", {"lab": {"hostname": "lab-1", "config_txt": ["arm_boost=1"]}}),
]


def _with_newline(value: Any) -> Any:
    if isinstance(value, str):
        return value + "\n"
    if isinstance(value, list):
        return [_with_newline(value[0]), *value[1:]]
    key, inner = next(iter(value.items()))
    return {**value, key + "\n": inner}


@pytest.mark.parametrize(("key", "value"), STRING_KEYS, ids=[k for k, _ in STRING_KEYS])
def test_each_key_accepts_its_value_and_refuses_it_with_a_trailing_newline(
    key: str, value: Any
) -> None:
    parse_answers(nest(key, value))
    with pytest.raises(AnswersError) as err:
        parse_answers(nest(key, _with_newline(value)))
    assert err.value.key.startswith(key), err.value


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("app.env", {"reboot\n": "now"}),  # a bare `reboot` line in a file boot.sh sources as root
        ("app.env", {"A": "x\x1b]0;owned\x07"}),
        ("deploy.devices", {"deadbeef\n": "lab"}),
        ("deploy.profiles", {"lab": {"env": {"X\n": "1"}}}),
        ("deploy.profiles", {"lab": {"cmdline_extra": ["a\x01b"]}}),
        ("deploy.profiles", {"lab\n": {}}),
        ("app.hostname", "fire\ncore"),
        ("release.mirrors", ["http://h/\n"]),
    ],
)
def test_control_characters_are_refused_in_values_and_in_key_names(key: str, value: Any) -> None:
    data = nest(key, value)
    if key == "deploy.devices":
        data["deploy"]["profiles"] = {"lab": {}}
    with pytest.raises(AnswersError, match=r"control character|is not"):
        parse_answers(data)


@pytest.mark.parametrize(
    ("key", "value", "fix"),
    [
        ("network.only_pis", "no", "true or false"),  # was read as false: every PXE client served
        ("network.preflight_strict", 0, "true or false"),
        ("deploy.keep", True, "whole number"),  # was read as 1
        ("app.port", "8080", "whole number"),
        ("network.probe_seconds", "4", "number"),
        ("release.boards", "pi4", ""),
    ],
)
def test_types_are_strict(key: str, value: Any, fix: str) -> None:
    with pytest.raises(AnswersError) as err:
        parse_answers(nest(key, value))
    assert err.value.key == key
    assert fix in err.value.fix


def test_numbers_still_load_as_numbers() -> None:
    a = parse_answers(nest("network.probe_seconds", 2))
    assert a.network.probe_seconds == 2.0
    assert parse_answers(nest("app.port", 8080)).app.port == 8080


@pytest.mark.parametrize(
    "line",
    [
        "conf-script=/tmp/x",  # runs a program as root
        "dhcp-script=/tmp/x",
        "dhcp-range=10.0.0.10,10.0.0.99,12h",  # a real range: leases addresses
        "conf-file=/tmp/other.conf",
        "tftp-root=/",
        "tftp-mtu=1400\n",
        "tftp-mtu=big",
        "tftp-single-port=1",
        "dhcp-boot=evil",
    ],
)
def test_dnsmasq_extra_is_an_allow_list(line: str) -> None:
    with pytest.raises(AnswersError) as err:
        parse_answers(nest("network.dnsmasq_extra", [line]))
    assert err.value.key.startswith("network.dnsmasq_extra")


@pytest.mark.parametrize(
    "line", ["tftp-single-port", "tftp-mtu=1400", "tftp-port-range=40000,40100", "log-async"]
)
def test_dnsmasq_extra_allows_tuning(line: str) -> None:
    parse_answers(nest("network.dnsmasq_extra", [line]))


@pytest.mark.parametrize(
    "key",
    [
        KEY + "\r",
        KEY + " $(reboot)\x00",
        KEY + " " + KEY,  # a second key hidden in the comment
        KEY + "\n" + KEY,
        'command="reboot" ' + KEY,  # options are not keys
        "ssh-ed25519 AAAA$(reboot)",
        "ssh-ed25519 " + base64.b64encode(b"\x00\x00\x00\x07ssh-rsa" + bytes(40)).decode(),
        "ssh-ed25519",
        "ssh-evil " + KEY.split()[1],
    ],
)
def test_ssh_keys_are_parsed_not_prefix_checked(key: str) -> None:
    with pytest.raises(AnswersError) as err:
        parse_answers(nest("app.ssh_authorized_keys", [key]))
    assert err.value.key.startswith("app.ssh_authorized_keys")


def test_a_real_key_with_a_comment_is_accepted() -> None:
    a = parse_answers(nest("app.ssh_authorized_keys", [KEY + " tc@my laptop"]))
    assert a.app.ssh_authorized_keys == [KEY + " tc@my laptop"]


def test_unknown_key_in_the_secrets_file_suggests_the_secrets_keys(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('toke = "abc"\n')
    os.chmod(path, 0o600)
    with pytest.raises(AnswersError) as err:
        load_secrets(path)
    assert "token" in err.value.fix
    assert "release" not in err.value.fix and "app" not in err.value.fix


@pytest.mark.parametrize("content", [b'token = "a\\u001b[2Jb"\n', b"\xff\xfe"])
def test_secrets_file_with_control_characters_or_bad_bytes_is_an_answers_error(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "s.toml"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(AnswersError) as err:
        load_secrets(path)
    assert err.value.key.startswith("app.secrets_file")


def test_secrets_file_that_is_a_directory_is_an_answers_error(tmp_path: Path) -> None:
    with pytest.raises(AnswersError):
        load_secrets(tmp_path)


def test_200000_extension_names_are_de_duplicated_in_linear_time() -> None:
    names = [f"ext{i % 100000}.tcz" for i in range(200_000)]
    a = parse_answers(nest("extensions.names", names))
    assert len(a.extensions.names) == 100_000
    assert a.extensions.names[:2] == ["ext0.tcz", "ext1.tcz"]
