"""The TFTP client: packets, and transfers against real dnsmasq and a scripted server."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from steps.wire import tftp
from tests.conftest import needs_root
from tests.support.lab import Host, Lab
from tests.support.netboot_lab import in_netns, start_dnsmasq


def test_rrq_bytes_match_the_pi4() -> None:
    # netboot.md §6: 00 01 <file> 00 octet 00 tsize 00 30 00 blksize 00 31 34 36 38 00
    raw = tftp.rrq("start4.elf", {"tsize": "0", "blksize": "1468"})
    assert raw == b"\x00\x01start4.elf\x00octet\x00tsize\x000\x00blksize\x001468\x00"
    assert tftp.rrq("bootcode.bin") == b"\x00\x01bootcode.bin\x00octet\x00"
    assert len(tftp.rrq("bootcode.bin")) + 8 == 29  # "UDP len 29" in the ROM capture


def test_decode_round_trips() -> None:
    pkt = tftp.decode(tftp.rrq("a/b", {"tsize": "0"}))
    assert pkt == tftp.Packet(tftp.RRQ, filename="a/b", mode="octet", options={"tsize": "0"})
    assert tftp.decode(tftp.ack(70000)) == tftp.Packet(tftp.ACK, block=70000 & 0xFFFF)
    err = tftp.decode(tftp.error(1, "file /x not found for 10.0.0.2"))
    assert err is not None and err.code == 1 and err.message.startswith("file /x")
    oack = tftp.decode(b"\x00\x06blksize\x001468\x00tsize\x0042\x00")
    assert oack is not None and oack.options == {"blksize": "1468", "tsize": "42"}
    assert tftp.decode(b"\x00") is None and tftp.decode(b"\x00\x09xx") is None


# ------------------------------------------------------------------- against real dnsmasq


@pytest.fixture(scope="module")
def tftp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Host, Path, Path]]:
    needs_root()
    tmp = tmp_path_factory.mktemp("tftp")
    root = tmp / "root"
    (root / "sub").mkdir(parents=True)
    (root / "exact.bin").write_bytes(os.urandom(512 * 3))
    (root / "odd.bin").write_bytes(os.urandom(5000))
    (root / "sub" / "big.bin").write_bytes(os.urandom(1468 * 40 + 7))
    (root / "empty.bin").write_bytes(b"")
    secret = root / "secret.bin"
    secret.write_bytes(b"no")
    secret.chmod(0o600)
    for path in root.rglob("*"):
        if path != secret:
            path.chmod(0o755 if path.is_dir() else 0o644)
    root.chmod(0o755)
    conf = tmp / "tftp.conf"
    conf.write_text(
        f"port=0\ninterface=eth0\nbind-interfaces\nenable-tftp\ntftp-root={root}\nlog-facility=-\n"
    )
    log = tmp / "dnsmasq.log"
    with Lab() as lab:
        srv = lab.host("srv", "10.99.0.1/24")
        cli = lab.host("cli", "10.99.0.2/24")
        start_dnsmasq(srv, conf, log, ready="TFTP root is")
        yield cli, root, log


@pytest.mark.netns
@pytest.mark.parametrize("name", ["exact.bin", "odd.bin", "empty.bin", "sub/big.bin"])
@pytest.mark.parametrize("options", [None, {"tsize": "0", "blksize": "1468"}])
def test_fetch_complete(
    tftp_server: tuple[Host, Path, Path], name: str, options: dict[str, str] | None
) -> None:
    cli, root, _log = tftp_server
    with in_netns(cli):
        ep = tftp.UdpEndpoint()
        got = tftp.fetch(ep, "10.99.0.1", name, options=options)
        ep.close()
    assert got.status == "complete", got.reason
    assert got.data == (root / name).read_bytes()
    assert got.server_port not in (None, 69)  # answered from an ephemeral port
    if options:
        assert got.options == {"tsize": str(len(got.data)), "blksize": "1468"}
        assert got.blksize == 1468 and got.tsize == len(got.data)
    else:
        assert got.options == {} and got.blksize == 512


@pytest.mark.netns
def test_probe_sends_early_terminate(tftp_server: tuple[Host, Path, Path]) -> None:
    cli, _root, log = tftp_server
    with in_netns(cli):
        ep = tftp.UdpEndpoint()
        got = tftp.fetch(ep, "10.99.0.1", "odd.bin", options={"tsize": "0"}, probe=True)
        ep.close()
    assert got.status == "probe" and got.tsize == 5000 and got.data == b""
    _wait_for(log, "error 0 Early terminate received from 10.99.0.2")


@pytest.mark.netns
@pytest.mark.parametrize(
    ("name", "status", "code", "text"),
    [
        ("missing.bin", "not-found", 1, "missing.bin not found"),
        ("secret.bin", "denied", 2, "Permission denied"),
        ("../etc/passwd", "denied", 2, ""),
    ],
)
def test_fetch_errors(
    tftp_server: tuple[Host, Path, Path], name: str, status: str, code: int, text: str
) -> None:
    cli, _root, _log = tftp_server
    with in_netns(cli):
        ep = tftp.UdpEndpoint()
        got = tftp.fetch(ep, "10.99.0.1", name, options={"tsize": "0", "blksize": "1468"})
        ep.close()
    assert got.status == status and got.error_code == code
    assert text in got.error_message
    assert f"ERROR {code}" in got.reason


@pytest.mark.netns
def test_no_server_times_out_after_retries(tftp_server: tuple[Host, Path, Path]) -> None:
    cli, _root, _log = tftp_server
    with in_netns(cli):
        ep = tftp.UdpEndpoint()
        got = tftp.fetch(ep, "10.99.0.77", "odd.bin", timeout=0.1, retries=3)
        ep.close()
    assert got.status == "timeout" and got.requests == 4
    assert "no answer" in got.reason


def _wait_for(log: Path, text: str) -> None:
    import time

    deadline = time.monotonic() + 240  # a hang-stopper; dnsmasq logs it at once
    while text not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"{text!r} not in {log.read_text()}"
        time.sleep(0.02)


# ------------------------------------------------------------------ a scripted server


class ScriptedServer:
    """A TFTP server on 127.0.0.1 that misbehaves on purpose: stray ports, duplicate DATA."""

    def __init__(self, payload: bytes, *, stray: bool, duplicate: bool) -> None:
        self.listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.listen.bind(("127.0.0.1", 0))
        self.port = self.listen.getsockname()[1]
        self.payload = payload
        self.stray = stray
        self.duplicate = duplicate
        self.stray_replies: list[bytes] = []
        self.acks: list[int] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        self.listen.settimeout(5)
        _req, client = self.listen.recvfrom(1500)
        data = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        data.bind(("127.0.0.1", 0))
        data.settimeout(5)
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other.bind(("127.0.0.1", 0))
        other.settimeout(5)
        blocks = [self.payload[i : i + 512] for i in range(0, len(self.payload) + 1, 512)]
        for n, chunk in enumerate(blocks, start=1):
            pkt = b"\x00\x03" + n.to_bytes(2, "big") + chunk
            data.sendto(pkt, client)
            if n == 1 and self.stray:
                other.sendto(pkt, client)
                self.stray_replies.append(other.recvfrom(1500)[0])
            ack_pkt, _ = data.recvfrom(1500)
            self.acks.append(int.from_bytes(ack_pkt[2:4], "big"))
            if n == 2 and self.duplicate:
                data.sendto(pkt, client)  # as if our ACK 2 was lost
                ack_pkt, _ = data.recvfrom(1500)
                self.acks.append(int.from_bytes(ack_pkt[2:4], "big"))
        data.close()
        other.close()
        self.listen.close()


def test_stray_port_gets_error_5_and_duplicates_are_reacked() -> None:
    payload = os.urandom(512 * 3 + 100)
    server = ScriptedServer(payload, stray=True, duplicate=True)
    ep = tftp.UdpEndpoint("127.0.0.1")
    got = tftp.fetch(ep, "127.0.0.1", "f", port=server.port, timeout=2)
    ep.close()
    server.thread.join(5)
    assert got.status == "complete" and got.data == payload
    assert server.stray_replies == [tftp.error(5, "Unknown transfer ID")]
    assert server.acks == [1, 2, 2, 3, 4]
