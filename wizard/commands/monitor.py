"""``firecore-wizard monitor``: watch Pis boot on the wire and say what is wrong.

Sources: ``--interface IFACE`` (a live capture; root or CAP_NET_RAW) or ``--pcap FILE`` (pcap or
pcapng) or ``--pcap -`` (a stream on stdin, decoded as it arrives:
``ssh root@router tcpdump -U -w - -i br-lan | firecore-wizard monitor --pcap -``), or
``--ssh root@router --interface br-lan``, which runs that tcpdump itself with a filter for the
boot traffic (``steps.host.remotecapture``) and says how to install tcpdump where it is missing.
With ``--json``, or when stdout is not a terminal, it prints DESIGN.md's monitor JSON lines; on a
terminal, the Diagnostics screen (``wizard.monitor_app``; with ``--pcap -`` it reads keys from
the terminal, ``/dev/tty``, as ``less`` does), or human lines when no keyboard can be had. Exit
code: 0 when no error-severity diagnosis was raised, 1 when one was (or the capture is damaged:
its good part is still reported), 2 for bad usage or an input that is not a capture, 130 on
Ctrl-C (after the summary). This module never imports Textual itself: the JSON and human paths
stay light, and the import-linter's headless contract checks it.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from steps.errors import UsageError

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
    json_lines = args.json or not sys.stdout.isatty()
    screen, stdin = (False, None) if json_lines else _keyboard(args.pcap)
    step = MonitorStep(
        interface=args.interface,
        pcap=args.pcap,
        write=args.write,
        mac=args.mac,
        duration=args.duration,
        ssh=ssh,
        stdin=stdin,
    )
    if screen:
        from wizard.monitor_app import run_monitor_app

        return run_monitor_app(step)
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


def _keyboard(pcap: str | None) -> tuple[bool, BinaryIO | None]:
    """Whether the screen can read keys; and the capture stream, when stdin carries it.

    With ``--pcap -`` stdin is the capture: the stream moves to a descriptor of its own and the
    terminal (``/dev/tty``) takes descriptor 0, where the screen reads keys.
    """
    if sys.stdin is not None and sys.stdin.isatty():
        if pcap == "-":
            raise UsageError(
                "--pcap - reads a capture from stdin, and stdin is this terminal",
                fix="pipe a capture in: ssh root@router tcpdump -U -w - -i br-lan | "
                "firecore-wizard monitor --pcap -",
            )
        return True, None
    if pcap != "-":
        return False, None
    try:
        tty = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False, None
    stream = os.fdopen(os.dup(0), "rb", buffering=0)
    os.dup2(tty, 0)
    os.close(tty)
    return True, stream
