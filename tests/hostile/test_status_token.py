"""status and the LAN: the token never goes to a stranger, network text never reaches a terminal.

Anyone on the LAN can announce ``_firecore._tcp``. Before, ``status`` sent ``Authorization:
Bearer <token>`` to whatever announced itself. Now it sends a signature over a nonce the host
issued (``firecore_app.sigauth``): the token never leaves this machine, and what a stranger
collects works nowhere else.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from firecore_app import service
from firecore_app.settings import Settings

from steps.status import Announcement, describe, poll, table
from tests.hostile.conftest import serving
from tests.support.pifiles import pi_files

TOKEN = "hostile-test-token"
ESC = "\x1b]0;owned\x07\x1b[2J"


class _Stranger(BaseHTTPRequestHandler):
    """A host that announces itself like a Pi and records what it is sent."""

    seen: list[tuple[str, dict[str, str]]] = []
    body: dict[str, Any] = {}

    def do_GET(self) -> None:
        self.seen.append((self.path, dict(self.headers)))
        if self.path == "/firecore/challenge":
            reply: dict[str, Any] = {"nonce": "ab" * 16, "serial": "abcdef12", "build_id": "b1"}
        else:
            reply = self.body
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stranger() -> Iterator[tuple[int, type[_Stranger]]]:
    handler = type("Stranger", (_Stranger,), {"seen": [], "body": {"status": "ok"}})
    with serving(handler) as port:
        yield port, handler


def _ann(port: int, props: dict[str, str] | None = None) -> Announcement:
    return Announcement(
        "evil._firecore._tcp.local.", "evil.local.", ("127.0.0.1",), port, props or {}
    )


def test_the_token_is_never_sent_to_a_host_that_announces_itself(
    stranger: tuple[int, type[_Stranger]],
) -> None:
    port, handler = stranger
    poll(_ann(port), TOKEN, None, threading.Event(), attempts=1)
    assert handler.seen, "status asked nothing"
    sent = json.dumps(handler.seen)
    assert TOKEN not in sent
    assert "Bearer" not in sent


def _pi_client(tmp_path: Path) -> TestClient:
    from steps.picore.appbundle import sigauth

    env = pi_files(tmp_path)
    env["FIRECORE_TOKEN_PUBKEY"] = sigauth().public_key(sigauth().seed_of(TOKEN)).hex()
    return TestClient(service.create_app(Settings.from_env(env)))


def test_what_a_stranger_collects_does_not_open_a_real_pi(
    stranger: tuple[int, type[_Stranger]], tmp_path: Path
) -> None:
    port, handler = stranger
    poll(_ann(port), TOKEN, None, threading.Event(), attempts=1)
    collected = [h.get("Authorization") for path, h in handler.seen if path == "/info"]
    assert collected and collected[0]
    pi = _pi_client(tmp_path)
    # relayed to a real Pi: the nonce is not one that Pi issued
    assert pi.get("/info", headers={"Authorization": collected[0]}).status_code == 401


def test_a_signed_request_works_once_on_the_pi_that_issued_the_nonce(tmp_path: Path) -> None:
    from steps.picore.appbundle import sigauth

    pi = _pi_client(tmp_path)
    seed = sigauth().seed_of(TOKEN)
    ch = pi.get("/firecore/challenge").json()
    auth = sigauth().header(seed, ch["nonce"], "GET", "/info", ch["serial"], ch["build_id"])
    assert pi.get("/info", headers={"Authorization": auth}).status_code == 200
    assert pi.get("/info", headers={"Authorization": auth}).status_code == 401  # single use
    ch = pi.get("/firecore/challenge").json()
    other = sigauth().header(seed, ch["nonce"], "GET", "/logs", ch["serial"], ch["build_id"])
    assert pi.get("/info", headers={"Authorization": other}).status_code == 401  # other path
    ch = pi.get("/firecore/challenge").json()
    wrong = sigauth().seed_of("another token")
    bad = sigauth().header(wrong, ch["nonce"], "GET", "/info", ch["serial"], ch["build_id"])
    assert pi.get("/info", headers={"Authorization": bad}).status_code == 401


def test_ed25519_matches_rfc8032_and_openssl(tmp_path: Path) -> None:
    from steps.picore.appbundle import sigauth

    s = sigauth()
    seed = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
    assert s.public_key(seed).hex() == (
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
    )  # RFC 8032 7.1, test 2
    assert s.sign(seed, b"\x72").hex() == (
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
    )
    openssl = shutil.which("openssl")
    assert openssl, "openssl is part of the base system"
    # PKCS#8 DER of an Ed25519 private key = a fixed 16-byte prefix + the 32-byte seed
    der = bytes.fromhex("302e020100300506032b657004220420") + seed
    (tmp_path / "k.der").write_bytes(der)
    msg = b"firecore-sig-v1\nnonce\nGET\n/info"
    (tmp_path / "m").write_bytes(msg)
    subprocess.run(
        [openssl, "pkeyutl", "-sign", "-rawin", "-keyform", "DER", "-inkey",
         str(tmp_path / "k.der"), "-in", str(tmp_path / "m"), "-out", str(tmp_path / "sig")],
        check=True,
    )  # fmt: skip
    theirs = (tmp_path / "sig").read_bytes()
    assert theirs == s.sign(seed, msg)
    assert s.verify(s.public_key(seed), msg, theirs)
    assert not s.verify(s.public_key(seed), msg + b"x", theirs)


def test_text_from_the_network_is_made_printable(
    stranger: tuple[int, type[_Stranger]],
) -> None:
    port, handler = stranger
    handler.body = {"status": "ok", "hostname": ESC, "build_id": "b\x1b[1A", "serial": ESC}
    pi = poll(_ann(port, {"model": ESC}), "", None, threading.Event(), attempts=1)
    shown = describe(pi) + table([pi]) + json.dumps(pi.to_data())
    assert "\x1b" not in describe(pi) and "\x1b" not in table([pi])
    assert "\\x1b" in shown  # visible, not executed
    assert pi.hostname is not None and "\x07" not in pi.hostname
