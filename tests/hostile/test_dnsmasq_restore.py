"""``dnsmasq restore --backup FILE`` installs dnsmasq's config as root: it gets the same checks
as a generated config (issue 10): only our backups, no option that runs a program or reads
more files, and ``dnsmasq --test``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from steps.answers import Answers, default_answers
from steps.errors import FirecoreError
from steps.host.dnsmasq import restore_backup

ADMIN = "# the admin's own config\nport=0\nlog-dhcp\n"


def _answers(tmp_path: Path) -> Answers:
    a = default_answers()
    a.network.dnsmasq_conf = str(tmp_path / "etc" / "firecore.conf")
    a.network.backup_dir = str(tmp_path / "backups")
    Path(a.network.dnsmasq_conf).parent.mkdir(parents=True)
    Path(a.network.dnsmasq_conf).write_text(ADMIN)
    Path(a.network.backup_dir).mkdir()
    return a


def _plant(a: Answers, text: str, name: str = "firecore.conf.20260101-000000.bak") -> Path:
    path = Path(a.network.backup_dir) / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text",
    [
        "port=0\ndhcp-script=/tmp/owned.sh\n",  # a program run as root on every lease
        "port=0\nconf-file=/tmp/more.conf\n",
        "port=0\nno-such-option-here\n",  # dnsmasq --test refuses it
    ],
)
def test_a_backup_that_fails_the_checks_is_not_installed(tmp_path: Path, text: str) -> None:
    a = _answers(tmp_path)
    _plant(a, text)
    with pytest.raises(FirecoreError):
        restore_backup(a)
    assert Path(a.network.dnsmasq_conf).read_text() == ADMIN


def test_a_file_outside_the_backup_directory_is_not_restored(tmp_path: Path) -> None:
    a = _answers(tmp_path)
    elsewhere = tmp_path / "evil.conf"
    elsewhere.write_text("port=0\nlog-dhcp\n")
    with pytest.raises(FirecoreError):
        restore_backup(a, elsewhere)
    assert Path(a.network.dnsmasq_conf).read_text() == ADMIN


def test_a_backup_others_can_write_is_not_restored(tmp_path: Path) -> None:
    a = _answers(tmp_path)
    planted = _plant(a, "port=0\nlog-dhcp\n")
    os.chmod(planted, 0o666)
    with pytest.raises(FirecoreError, match=r"writable by others|owned by"):
        restore_backup(a)
    assert Path(a.network.dnsmasq_conf).read_text() == ADMIN


def test_a_good_backup_is_restored(tmp_path: Path) -> None:
    a = _answers(tmp_path)
    _plant(a, "# older\nport=0\nlog-dhcp\n")
    done = restore_backup(a)
    assert (
        done.changed and Path(a.network.dnsmasq_conf).read_text() == "# older\nport=0\nlog-dhcp\n"
    )
