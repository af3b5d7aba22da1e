"""Status: polling a real running app over HTTP, manifests, the report and the command's usage.

(Discovery over mDNS, end to end in namespaces, is in tests/app/test_discovery.py.)
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from steps.errors import UsageError
from steps.picore.appbundle import sigauth
from steps.status import Announcement, PiStatus, StatusReport, deployed_build, poll, table
from tests.conftest import ROOT
from tests.support.lab import stop_process
from tests.support.pifiles import pi_files
from wizard.cli import main

TOKEN = "status-token"
BUILD = "cafe0001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def app_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The bundled app, run as boot.sh runs it (python -m firecore_app), on 127.0.0.1."""
    root = tmp_path_factory.mktemp("pi")
    env = pi_files(root)
    Path(env["FIRECORE_BUILD_FILE"]).write_text(json.dumps({"build_id": BUILD}))
    # what boot.sh does as root at boot: record the netboot state (a stand-in vcgencmd)
    tools = root / "bin"
    tools.mkdir()
    (tools / "vcgencmd").write_text("#!/bin/sh\necho 17:3020000a\n")
    (tools / "vcgencmd").chmod(0o755)
    Path(env["FIRECORE_NETBOOT_FILE"]).parent.mkdir(parents=True)
    subprocess.run(
        [sys.executable, "-m", "firecore_app.netboot", "--write", env["FIRECORE_NETBOOT_FILE"]],
        env={**env, "PATH": f"{tools}:/usr/bin:/bin", "PYTHONPATH": str(ROOT / "assets" / "app")},
        check=True,
    )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "firecore_app"],
        env={
            **env,
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(ROOT / "assets" / "app"),
            "FIRECORE_PORT": str(port),
            "FIRECORE_BIND": "127.0.0.1",
            "FIRECORE_TOKEN_SHA256": hashlib.sha256(TOKEN.encode()).hexdigest(),
            "FIRECORE_TOKEN_PUBKEY": sigauth().public_key(sigauth().seed_of(TOKEN)).hex(),
        },
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240  # a hang-stopper: a loaded machine starts it slowly
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("the app did not start") from None
                threading.Event().wait(0.05)
        yield port
    finally:
        stop_process(proc)


def ann(port: int, *addresses: str) -> Announcement:
    return Announcement(
        name="firecore-abcdef12._firecore._tcp.local.",
        server="firecore-abcdef12.local.",
        addresses=addresses or ("127.0.0.1",),
        port=port,
        properties={"serial": "abcdef12", "build": "txt-build", "model": "Pi"},
    )


def test_healthy_pi_with_token_and_build_comparison(app_port: int) -> None:
    never = threading.Event()
    pi = poll(ann(app_port, "127.0.0.2", "127.0.0.1"), TOKEN, BUILD, never, attempts=1)
    assert pi.healthy and pi.error is None and pi.info_error is None
    assert pi.ip == "127.0.0.1"  # 127.0.0.2 refused (the app binds 127.0.0.1): next address
    assert pi.name == "firecore-abcdef12" and pi.serial == "abcdef12"
    assert pi.build_id == BUILD and pi.current is True
    assert pi.uptime == 3723.45  # from /info (the Pi's /proc/uptime)
    assert pi.model == "Raspberry Pi 3 Model B Rev 1.2"  # /info beats the TXT record
    assert pi.netboot is True and pi.netboot_reason == "OTP 17:3020000a (bit 29 set)"
    assert pi.to_data()["netboot"] is True
    older = poll(ann(app_port), TOKEN, "feed0002", never)
    assert older.healthy and older.current is False and older.deployed_build == "feed0002"
    no_token = poll(ann(app_port), "", None, never)
    assert no_token.healthy and no_token.current is None
    assert no_token.info_error is not None and "token required" in no_token.info_error
    assert no_token.uptime is not None and no_token.uptime < 3723  # the app's uptime instead
    assert no_token.netboot is None  # /info (which says) needs the token


def test_unreachable_and_failing_pis_are_unhealthy() -> None:
    never = threading.Event()
    dead = poll(ann(free_port()), "", BUILD, never, attempts=2)
    assert not dead.healthy and dead.error == "connection refused"
    assert dead.build_id == "txt-build" and dead.current is False  # from the announcement

    hits: list[str] = []

    class Failing(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(503 if len(hits) < 3 else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        pi = poll(ann(server.server_address[1]), "", None, never, attempts=3)
    finally:
        server.shutdown()
        server.server_close()
    assert hits == ["/health"] * 3  # 503 is retried (with backoff), then a final answer
    assert not pi.healthy and pi.error == "/health answered HTTP 404"


def test_deployed_manifest(tmp_path: Path) -> None:
    good = tmp_path / "manifest.json"
    good.write_text(json.dumps({"build_id": BUILD, "files": {}}))
    assert deployed_build(good) == BUILD
    assert deployed_build(tmp_path / "absent.json") is None
    (tmp_path / "nobuild.json").write_text("{}")
    with pytest.raises(UsageError, match="has no build_id"):
        deployed_build(tmp_path / "nobuild.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UsageError, match="cannot read the manifest"):
        deployed_build(tmp_path / "bad.json")


def _pi(serial: str, healthy: bool, current: bool | None) -> PiStatus:
    return PiStatus(
        name=f"firecore-{serial}",
        serial=serial,
        hostname="firecore",
        model=None,
        ip="10.0.0.5",
        port=8000,
        addresses=("10.0.0.5",),
        build_id="b1",
        deployed_build="b2" if current is False else "b1",
        current=current,
        healthy=healthy,
        error=None if healthy else "timed out",
        uptime=7322.0,
        netboot=True if healthy else None,
        netboot_reason="OTP 17:3020000a (bit 29 set)" if healthy else None,
    )


def test_report_exit_rules_and_table() -> None:
    assert not StatusReport((), 3, None, None).ok()  # nobody found is not a success
    ok = StatusReport((_pi("aaaa0001", True, True),), 3, "b1", "m.json")
    assert ok.ok() and ok.ok(require_current=True)
    old = StatusReport((_pi("aaaa0001", True, True), _pi("aaaa0002", True, False)), 3, "b2", None)
    assert old.ok() and not old.ok(require_current=True)
    assert old.summary()["old_build"] == 1
    sick = StatusReport((_pi("aaaa0001", False, None),), 3, None, None)
    assert not sick.ok() and sick.summary()["unhealthy"] == 1
    text = table(old.pis + sick.pis).splitlines()
    assert text[0].split() == [
        "SERIAL",
        "HOSTNAME",
        "ADDRESS",
        "BUILD",
        "UPTIME",
        "NETBOOT",
        "HEALTH",
    ]
    assert "on (OTP 17:3020000a (bit 29 set))" in text[1] and " ? " in text[3]
    assert "b1 (old)" in text[2] and "2h02m" in text[1]
    assert text[3].endswith("UNHEALTHY: timed out")


def test_status_command_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--wait", "0"]) == 2
    assert "--wait" in capsys.readouterr().err
    assert main(["status", "--wait", "1", "--manifest", str(tmp_path / "none.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["status", "--answers", str(tmp_path / "none.toml")]) == 2
