"""A capture on another host (the router) streamed here over ssh, for the monitor's decoder.

``RemoteCapture(ssh, interface)`` runs ``tcpdump -U -w - -i IFACE FILTER`` on the remote host —
the seed's ``ssh root@router tcpdump -i br-lan -w- … | wireshark -k -i -``, with the monitor in
Wireshark's place — and hands its stdout (a pcap stream, one packet per write thanks to ``-U``)
to ``steps.monitor.MonitorStep`` as its ``--pcap -`` input. The filter keeps what a Pi's boot
puts on the wire and the monitor decodes: ARP and UDP (DHCP, TFTP on the server's ephemeral
ports, mDNS announcements), also inside 802.1Q tags, but not DNS (udp/53), which on a router is
most of the UDP and would only fill the ssh pipe.

The remote script checks first that tcpdump is there and the interface exists, and says which on
stdout before tcpdump starts, so a router without tcpdump gets the exact install command for its
package manager: ``opkg update && opkg install tcpdump-mini`` on OpenWrt up to 24.10, ``apk
update && apk add tcpdump-mini`` on OpenWrt with apk (both packages come from
openwrt/openwrt ``package/network/utils/tcpdump``: ``tcpdump`` and the smaller ``tcpdump-mini``,
each installing /usr/bin/tcpdump), ``apt-get install tcpdump`` on Debian.
"""

from __future__ import annotations

import contextlib
import os
from typing import BinaryIO, cast

from steps.errors import RemoteError, UsageError
from steps.host.sshrun import RemoteProcess, Ssh, quote

#: tcpdump/libpcap filter: the boot traffic the monitor decodes (ARP, UDP but DNS), VLANs too.
CAPTURE_FILTER = "arp or (udp and not port 53) or (vlan and (arp or (udp and not port 53)))"
READY = b"fc-capture "
E_NO_TCPDUMP = 40
E_NO_IFACE = 41


def capture_script(interface: str) -> str:
    """Check for tcpdump and the interface, announce, then become tcpdump."""
    return "\n".join(
        [
            "set -u",
            f"iface={quote(interface)}",
            "if ! command -v tcpdump >/dev/null 2>&1; then",
            "  if command -v apk >/dev/null 2>&1; then echo 'install apk update && apk add "
            "tcpdump-mini'",
            "  elif command -v opkg >/dev/null 2>&1; then echo 'install opkg update && opkg "
            "install tcpdump-mini'",
            "  elif command -v apt-get >/dev/null 2>&1; then echo 'install apt-get install "
            "tcpdump'",
            "  else echo 'install (your package manager) tcpdump'; fi",
            "  exit 40",
            "fi",
            'if [ ! -e "/sys/class/net/$iface" ]; then',
            '  echo "ifaces $(ls /sys/class/net | tr "\\n" " ")"',
            "  exit 41",
            "fi",
            'echo "fc-capture $iface"',
            f'exec tcpdump -U -w - -i "$iface" {quote(CAPTURE_FILTER)}',
            "",
        ]
    )


class RemoteCapture:
    """The remote tcpdump's pcap stream; a context manager that stops it on exit."""

    def __init__(self, ssh: Ssh, interface: str) -> None:
        self.ssh = ssh
        self.interface = interface
        self._remote: RemoteProcess | None = None

    def __enter__(self) -> RemoteCapture:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> RemoteCapture:
        """Start the capture and wait until tcpdump is about to run.

        Raises:
            UsageError: tcpdump is missing there (the fix is the install command) or the
                interface does not exist (the fix names the ones that do).
            RemoteError: ssh failed, or the remote host ended the capture at once.
        """
        remote = self.ssh.start(capture_script(self.interface), stream_stdout=True)
        self._remote = remote
        with contextlib.suppress(OSError):
            assert remote.popen.stdin is not None
            remote.popen.stdin.close()  # tcpdump reads nothing from us
        line = self._line()
        if line.startswith(READY):
            return self
        result = remote.finish()  # raises RemoteError for ssh's own failures
        host = self.ssh.target.host
        text = line.decode("utf-8", "replace").strip()
        if result.code == E_NO_TCPDUMP or text.startswith("install "):
            command = text.removeprefix("install ")
            raise UsageError(
                f"{host} has no tcpdump: the monitor needs it there to capture on {self.interface}",
                fix=f"install it on {host}: `{command}`",
            )
        if result.code == E_NO_IFACE or text.startswith("ifaces "):
            raise UsageError(
                f"{host} has no interface {self.interface!r}",
                fix="--interface: one of "
                + (text.removeprefix("ifaces ").strip() or "?")
                + " (on OpenWrt the LAN bridge is br-lan)",
            )
        raise RemoteError(
            f"the capture on {host} ended at once: {result.last_error()}", details=result.stderr
        )

    def _line(self) -> bytes:
        """One line of stdout, read a byte at a time (the pcap stream follows on the same fd)."""
        assert self._remote is not None and self._remote.popen.stdout is not None
        fd = self._remote.popen.stdout.fileno()
        out = bytearray()
        while len(out) < 4096:
            byte = os.read(fd, 1)
            if not byte or byte == b"\n":
                break
            out += byte
        return bytes(out)

    @property
    def stream(self) -> BinaryIO:
        """tcpdump's pcap stream (read it with os.read on its fd, as the capture reader does)."""
        assert self._remote is not None and self._remote.popen.stdout is not None
        return cast(BinaryIO, self._remote.popen.stdout)

    def close(self) -> None:
        """Stop ssh and, with it, the remote tcpdump."""
        if self._remote is not None:
            self._remote.kill()
            self._remote = None
