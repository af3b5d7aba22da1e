"""The answers model: defaults, round trip, strictness, messages that name the key."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest

from steps.answers import (
    WHERE_ONLY,
    Answers,
    build_digest,
    default_answers,
    load_answers,
    load_secrets,
    parse_answers,
)
from steps.answers_toml import dump_answers
from steps.errors import AnswersError, UsageError
from tests.conftest import ROOT
from wizard.cli import main

EXAMPLE = ROOT / "assets" / "answers.example.toml"


def test_example_file_is_complete_and_loads_back_identically() -> None:
    answers = load_answers(EXAMPLE)
    assert answers == default_answers()
    # the example is exactly what the wizard saves: every key, documented
    assert EXAMPLE.read_text() == dump_answers(answers)
    for section, model in Answers.model_fields.items():
        if section == "version":
            continue
        for key in model.annotation.model_fields:
            assert f"\n{key} = " in EXAMPLE.read_text(), f"{section}.{key} missing"


def test_round_trip_with_profiles_is_lossless_and_stable() -> None:
    data = {
        "version": 1,
        "release": {"version": "12.0", "arch": "armv7", "boards": ["pi4", "pi3", "pi3"]},
        "extensions": {"names": ["openssh", "python3.8.tcz"]},
        "app": {
            "env": {"B": "2", "A": "1"},
            "ssh_authorized_keys": [
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP1MmLxuAyRA0X7Oeqjlg43oYao6r1xYdBvheitzVYVZ"
                " x@y"
            ],
        },
        "deploy": {
            "devices": {"9FFEFDEF": "lab", "DC:A6:32:01:36:C2": "lab"},
            "profiles": {"lab": {"hostname": "lab-1", "config_txt": ["kernel k.img"]}},
        },
    }
    first = parse_answers(data)
    assert first.release.boards == ["pi3", "pi4"]
    assert first.extensions.names == ["openssh.tcz", "python3.8.tcz"]
    # a MAC key is the directory a Pi 4/5 with TFTP_PREFIX=2 asks for (eeprom-bootloader.adoc)
    assert first.deploy.devices == {"9ffefdef": "lab", "dc-a6-32-01-36-c2": "lab"}
    text = dump_answers(first)
    second = parse_answers(tomllib.loads(text))
    assert second == first
    assert dump_answers(second) == text


@pytest.mark.parametrize(
    ("data", "key", "hint"),
    [
        ({"version": 1, "release": {"verison": "15.0.0"}}, "release.verison", "release.version"),
        ({"version": 1, "relase": {}}, "relase", "did you mean release"),
        (
            {"version": 1, "network": {"dnsmasq_servce": "none"}},
            "network.dnsmasq_servce",
            "dnsmasq_service",
        ),
        (
            {"version": 1, "deploy": {"profiles": {"p": {"hostnme": "x"}}}},
            "deploy.profiles.p.hostnme",
            "deploy.profiles.p.hostname",
        ),
    ],
)
def test_unknown_keys_name_the_key_and_suggest(data: dict, key: str, hint: str) -> None:
    with pytest.raises(AnswersError) as info:
        parse_answers(data)
    assert info.value.key == key
    assert hint in str(info.value)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({}, "version"),
        ({"version": 2}, "version"),
        ({"version": 1, "release": {"version": "fifteen"}}, "release.version"),
        ({"version": 1, "release": {"arch": "x86_64"}}, "release.arch"),
        ({"version": 1, "release": {"boards": ["pi9"]}}, "release.boards.0"),
        ({"version": 1, "release": {"mirrors": ["ftp://x"]}}, "release.mirrors"),
        ({"version": 1, "network": {"interface": "eth0\ndhcp-range=x"}}, "network.interface"),
        ({"version": 1, "network": {"tftp_root": "/srv/a,b"}}, "network.tftp_root"),
        ({"version": 1, "network": {"tftp_root": '/srv/"x'}}, "network.tftp_root"),
        ({"version": 1, "app": {"hostname": "Bad_Host"}}, "app.hostname"),
        ({"version": 1, "app": {"port": 80}}, "app.port"),
        ({"version": 1, "deploy": {"devices": {"xyz": "p"}}}, "deploy.devices"),
        ({"version": 1, "deploy": {"devices": {"12345678": "nope"}}}, "deploy.devices.12345678"),
    ],
)
def test_invalid_values_name_the_key(data: dict, key: str) -> None:
    with pytest.raises(AnswersError) as info:
        parse_answers(data)
    assert info.value.key == key
    assert info.value.exit_code == 2


def test_cli_exits_2_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('version = 1\n[release]\nverison = "15.0.0"\n')
    assert main(["--answers", str(bad), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "release.verison" in err and "did you mean release.version" in err
    assert "Traceback" not in err


def test_cli_exits_2_for_toml_syntax_and_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("version = 1\n[release\n")
    assert main(["--answers", str(broken)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert main(["--answers", str(tmp_path / "nope.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_schema_command_prints_documented_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    release = schema["$defs"]["ReleaseAnswers"]
    assert release["additionalProperties"] is False
    assert "tried in order" in release["properties"]["mirrors"]["description"]
    assert schema["required"] == ["version"]


def test_secrets_file_must_be_private(tmp_path: Path) -> None:
    path = tmp_path / "secrets.toml"
    path.write_text('token = "s3cret"\n')
    os.chmod(path, 0o644)
    with pytest.raises(AnswersError) as info:
        load_secrets(path)
    assert "chmod 600" in info.value.fix
    os.chmod(path, 0o600)
    assert load_secrets(path).token == "s3cret"
    with pytest.raises(AnswersError):
        load_secrets(tmp_path / "missing.toml")


def test_load_answers_rejects_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_bytes(b"version = 1\n# \xff\n")
    with pytest.raises(UsageError):
        load_answers(path)


def test_docs_answers_reference_is_current() -> None:
    from steps.answers_toml import reference_markdown

    readme = (ROOT / "docs" / "reference" / "answers.md").read_text()
    start = readme.index("<!-- answers-reference")
    start = readme.index("\n", start) + 1
    end = readme.index("<!-- /answers-reference -->")
    assert readme[start:end] == reference_markdown(), "regenerate docs/reference/answers.md"


def test_the_build_digest_leaves_out_the_keys_that_only_say_where() -> None:
    a = default_answers()
    before = build_digest(a)
    a.build.output = "/elsewhere/out"
    a.build.cache = "/elsewhere/cache"
    a.release.mirrors = ["http://127.0.0.1:8123/"]
    assert build_digest(a) == before
    assert {("build", "output"), ("build", "cache"), ("release", "mirrors")} <= set(WHERE_ONLY)
    a.app.hostname = "kiosk-2"  # a key that shapes the tree
    assert build_digest(a) != before
