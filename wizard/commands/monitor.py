"""``firecore-wizard monitor``: watch Pis boot on the wire and say what is wrong.

Sources: ``--interface IFACE`` (a live capture; root or CAP_NET_RAW) or ``--pcap FILE`` (pcap or
pcapng) or ``--pcap -`` (a stream on stdin, decoded as it arrives:
``ssh root@router tcpdump -U -w - -i br-lan | firecore-wizard monitor --pcap -``), or
``--ssh root@router --interface br-lan``, which runs that tcpdump itself with a filter for the
boot traffic (``steps.host.remotecapture``) and says how to install tcpdump where it is missing.
With ``--json``, or when stdout is not a terminal, it prints DESIGN.md's monitor JSON lines; on a
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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from steps.host.sshrun import Ssh

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
    parser.add_argument(
        "--ssh",
        metavar="USER@HOST[:PORT]",
        help="capture on --interface of that host (a router) with its tcpdump, over ssh",
    )
    parser.add_argument(
        "--ssh-config",
        metavar="FILE",
        type=Path,
        help="ssh_config file for --ssh (default: deploy.ssh_config of --answers, else ssh's)",
    )
    parser.add_argument(
        "--answers",
        metavar="FILE",
        type=Path,
        help="answers file: in router mode with a remote deploy.target, capture on that host's "
        "network.router_interface (no --ssh/--interface needed)",
    )
    parser.add_argument("--json", action="store_true", help="JSON lines on stdout")
    parser.add_argument(
        "--duration", metavar="S", type=float, help="stop after S seconds (capture time for files)"
    )
    parser.add_argument(
        "--write", metavar="FILE", type=Path, help="also save what was read (pcap, or .pcapng)"
    )
    parser.add_argument("--mac", metavar="MAC", help="only this Pi")


def _ssh(args: argparse.Namespace) -> Ssh | None:
    """The remote host to capture on: --ssh, else a remote deploy.target of --answers."""
    from steps.answers import load_answers, parse_ssh_host, resolve_path
    from steps.errors import UsageError
    from steps.host.sshrun import Ssh, ssh_for

    answers = load_answers(args.answers) if args.answers else None
    if args.ssh is None:
        if answers is None or answers.network.mode != "router" or args.pcap is not None:
            return None
        ssh = ssh_for(answers)  # router mode, remote deploy.target: watch the router
        if ssh is not None:
            args.interface = args.interface or answers.network.router_interface
            if args.ssh_config is not None:
                ssh = Ssh(ssh.target, args.ssh_config)
        return ssh
    if args.interface is None:
        raise UsageError("--ssh needs --interface: the interface on that host (e.g. br-lan)")
    try:
        target = parse_ssh_host(args.ssh)
    except ValueError as exc:
        raise UsageError(f"--ssh: {exc}") from None
    config = args.ssh_config
    if config is None and answers is not None and answers.deploy.ssh_config:
        config = resolve_path(answers.deploy.ssh_config)
    return Ssh(target, config)


def run(args: argparse.Namespace) -> int:
    """Watch, print, and exit with the verdict."""
    from steps.errors import Cancelled
    from steps.monitor import MonitorStep
    from wizard.exit_codes import ExitCode
    from wizard.headless import sigint_cancels
    from wizard.render import MonitorRenderer

    ssh = _ssh(args)
    step = MonitorStep(
        interface=args.interface,
        pcap=args.pcap,
        write=args.write,
        mac=args.mac,
        duration=args.duration,
        ssh=ssh,
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
