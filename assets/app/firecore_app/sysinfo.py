"""What the Pi is and what it runs, read from /proc, /sys and the overlay's files.

Every reader returns None (or an empty list) when its source is missing or unreadable, so
``/info`` works on any Linux host, not only on a Pi; nothing here raises for a missing file.
"""

import array
import contextlib
import fcntl
import json
import os
import platform
import socket
import struct
import sys
import time
from typing import Any, Dict, List, Optional

from firecore_app import __version__, netboot
from firecore_app.settings import Settings

_SIOCGIFADDR = 0x8915


def _read(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as fh:
            return fh.read(1 << 20).decode("utf-8", "replace")
    except OSError:
        return None


def serial(settings: Settings) -> Optional[str]:
    """The board serial from /proc/cpuinfo as the 8 lower-case hex digits netboot uses."""
    full = serial_full(settings)
    return full[-8:] if full else None


def serial_full(settings: Settings) -> Optional[str]:
    """The ``Serial`` line of /proc/cpuinfo (16 hex digits on a Pi), lower-case."""
    text = _read(os.path.join(settings.proc, "cpuinfo")) or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "serial":
            value = value.strip().lower()
            if value and all(c in "0123456789abcdef" for c in value) and int(value, 16):
                return value
    return None


def model(settings: Settings) -> Optional[str]:
    """The board model from the device tree ("Raspberry Pi 3 Model B Rev 1.2")."""
    text = _read(os.path.join(settings.proc, "device-tree", "model"))
    if text is None:
        for line in (_read(os.path.join(settings.proc, "cpuinfo")) or "").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model":
                return value.strip() or None
        return None
    return text.replace("\x00", "").strip() or None


def kernel(settings: Settings) -> Optional[str]:
    """The running kernel release."""
    text = _read(os.path.join(settings.proc, "sys", "kernel", "osrelease"))
    return text.strip() if text else (platform.release() or None)


def uptime(settings: Settings) -> Optional[float]:
    """Seconds since boot."""
    text = _read(os.path.join(settings.proc, "uptime"))
    try:
        return float(text.split()[0]) if text else None
    except (ValueError, IndexError):
        return None


def memory(settings: Settings) -> Dict[str, Optional[int]]:
    """Total, free and available RAM in bytes (from /proc/meminfo)."""
    wanted = {"MemTotal": "total", "MemFree": "free", "MemAvailable": "available"}
    out: Dict[str, Optional[int]] = {v: None for v in wanted.values()}
    for line in (_read(os.path.join(settings.proc, "meminfo")) or "").splitlines():
        key, _, rest = line.partition(":")
        if key in wanted:
            with contextlib.suppress(ValueError, IndexError):
                out[wanted[key]] = int(rest.split()[0]) * 1024
    return out


def load(settings: Settings) -> Optional[List[float]]:
    """1, 5 and 15 minute load averages."""
    text = _read(os.path.join(settings.proc, "loadavg"))
    try:
        return [float(x) for x in text.split()[:3]] if text else None
    except ValueError:
        return None


def temperature(settings: Settings) -> Optional[float]:
    """SoC temperature in °C (thermal zone 0), if the kernel exposes it."""
    text = _read(os.path.join(settings.sys, "class", "thermal", "thermal_zone0", "temp"))
    try:
        return round(int(text.strip()) / 1000.0, 1) if text else None
    except ValueError:
        return None


def ipv4_addresses() -> Dict[str, str]:
    """Interface → IPv4 address for every interface that has one (loopback excluded)."""
    out: Dict[str, str] = {}
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return out
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for name in names:
            if name == "lo":
                continue
            req = array.array("B", struct.pack("256s", name.encode()[:15]))
            try:
                fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, req)
            except OSError:
                continue
            out[name] = socket.inet_ntoa(req.tobytes()[20:24])
    finally:
        sock.close()
    return out


def ipv6_addresses(settings: Settings) -> Dict[str, List[str]]:
    """Interface → IPv6 addresses (from /proc/net/if_inet6; loopback excluded)."""
    out: Dict[str, List[str]] = {}
    for line in (_read(os.path.join(settings.proc, "net", "if_inet6")) or "").splitlines():
        parts = line.split()
        if len(parts) < 6 or parts[5] == "lo":
            continue
        try:
            addr = socket.inet_ntop(socket.AF_INET6, bytes.fromhex(parts[0]))
        except (ValueError, OSError):
            continue
        out.setdefault(parts[5], []).append(addr)
    return out


def extensions(settings: Settings) -> List[str]:
    """Loaded TinyCore extensions: the marker files in /usr/local/tce.installed."""
    try:
        return sorted(n for n in os.listdir(settings.tce_installed) if not n.startswith("."))
    except OSError:
        return []


def build(settings: Settings) -> Dict[str, Any]:
    """The build description the remaster step wrote (build.json); {} if absent or unreadable."""
    text = _read(settings.build_file)
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def build_id(settings: Settings) -> str:
    """The build id from build.json ("unknown" when there is none)."""
    data = build(settings)
    value = data.get("build_id") or data.get("id") or ""
    return str(value) if value else "unknown"


def info(settings: Settings, started: float) -> Dict[str, Any]:
    """Everything ``GET /info`` reports."""
    return {
        "hostname": socket.gethostname(),
        "serial": serial(settings),
        "serial_full": serial_full(settings),
        "model": model(settings),
        "kernel": kernel(settings),
        "uptime": uptime(settings),
        "app_uptime": round(time.monotonic() - started, 1),
        "addresses": {"ipv4": ipv4_addresses(), "ipv6": ipv6_addresses(settings)},
        "memory": memory(settings),
        "load": load(settings),
        "temperature": temperature(settings),
        "extensions": extensions(settings),
        "build_id": build_id(settings),
        "build": build(settings),
        "netboot": netboot.cached_or_live(settings, settings.netboot_file),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "app": {
            "name": "firecore_app",
            "version": __version__,
            "user_app": settings.app_module or None,
            "port": settings.port,
        },
    }
