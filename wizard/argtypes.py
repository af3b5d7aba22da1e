"""argparse ``type=`` checks shared by the sub-commands: a bad value is a usage error (exit 2)
naming the argument, never a traceback or a value the command later trips over."""

from __future__ import annotations

import argparse
import ipaddress
import math
import re
from collections.abc import Callable

_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")
_IFACE = re.compile(r"[A-Za-z0-9_.:@-]{1,15}")


def seconds(low: float, high: float, *, allow_low: bool = False) -> Callable[[str], float]:
    """A finite number of seconds in (low, high] (or [low, high] with ``allow_low``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        above = value >= low if allow_low else value > low
        if not math.isfinite(value) or not above or value > high:
            side = "from" if allow_low else "more than"
            raise argparse.ArgumentTypeError(f"{text}: give {side} {low:g} up to {high:g} seconds")
        return value

    return parse


def hex8(text: str) -> str:
    """A Pi serial number: 8 hex digits (lower-cased)."""
    if not _HEX8.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not 8 hex digits like 5e1f7e57")
    return text.lower()


def mac(text: str) -> str:
    """A MAC address aa:bb:cc:dd:ee:ff (lower-cased)."""
    if not _MAC.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a MAC address like b8:27:eb:12:34:56")
    return text.lower()


def interface(text: str) -> str:
    """A network interface name (≤ 15 characters, no blanks)."""
    if not _IFACE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an interface name like eth0")
    return text


def port(text: str) -> int:
    """A TCP/UDP port, 0 (any free one) to 65535."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return int(text)


def ip_address(text: str) -> str:
    """An IPv4 or IPv6 address."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address") from None
