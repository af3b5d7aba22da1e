"""``firecore-wizard monitor``: watch Pis boot on the wire and say what is wrong.

Sources: ``--interface IFACE`` (a live capture; root or CAP_NET_RAW) or ``--pcap FILE`` (pcap or
pcapng) or ``--pcap -`` (a stream on stdin, decoded as it arrives:
``ssh root@router tcpdump -U -w - -i br-lan | firecore-wizard monitor --pcap -``). With
``--json``, or when stdout is not a terminal, it prints DESIGN.md's monitor JSON lines; on a
terminal, human lines (the Diagnostics screen will take this place). Exit code: 0 when no
error-severity diagnosis was raised, 1 when one was (or the capture is damaged: its good part is
still reported), 2 for bad usage or an input that is not a capture, 130 on Ctrl-C (after the
summary).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

HELP = "decode DHCP/ARP/TFTP as Pis boot (live or from a capture) and diagnose failures"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of the monitor."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--interface", metavar="IFACE", help="capture live on this interface (`any`: all)"
    )
    source.add_argument(
        "--pcap",
        metavar="FILE|-",
        help="read a pcap/pcapng capture, or `-` for a stream on stdin (tcpdump -U -w -)",
    )
    parser.add_argument("--json", action="store_true", help="JSON lines on stdout")
    parser.add_argument(
        "--duration", metavar="S", type=float, help="stop after S seconds (capture time for files)"
    )
    parser.add_argument(
        "--write", metavar="FILE", type=Path, help="also save what was read (pcap, or .pcapng)"
    )
    parser.add_argument("--mac", metavar="MAC", help="only this Pi")


def run(args: argparse.Namespace) -> int:
    """Watch, print, and exit with the verdict."""
    from steps.errors import Cancelled
    from steps.monitor import MonitorStep
    from wizard.exit_codes import ExitCode
    from wizard.headless import sigint_cancels
    from wizard.render import MonitorRenderer

    step = MonitorStep(
        interface=args.interface,
        pcap=args.pcap,
        write=args.write,
        mac=args.mac,
        duration=args.duration,
    )
    json_lines = args.json or not sys.stdout.isatty()
    renderer = MonitorRenderer(sys.stdout, sys.stderr, json_lines=json_lines)
    cancel = threading.Event()
    try:
        with sigint_cancels(cancel):
            for event in step.watch(cancel):
                renderer.event(event)
    except BrokenPipeError:
        # the reader went away (`monitor … | head`): stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return int(ExitCode.OK)
    if cancel.is_set():
        raise Cancelled()
    return int(ExitCode.STEP_FAILED if renderer.errors else ExitCode.OK)
