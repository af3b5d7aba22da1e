"""``firecore-wizard selftest``: a virtual Pi boots against the server and reports each stage.

Run it from any machine on the Pis' LAN (it needs root for its raw socket, nothing else). It
prints one line per stage (``--json``: one stage object per line and a final summary, as
DESIGN.md "Monitor JSON lines" says) and exits 0 only if every stage passed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from steps.wire.virtualpi import BootReport, Stage

HELP = "boot a virtual Pi 3/Pi 4 from an interface and check every stage"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of the self-test."""
    parser.add_argument(
        "--interface", metavar="IFACE", help="interface on the Pis' LAN (default: the answers')"
    )
    parser.add_argument(
        "--serial",
        metavar="HEX8",
        default=None,
        help="serial number of the virtual Pi (per-device trees); default 5e1f7e57",
    )
    parser.add_argument("--model", choices=["pi3", "pi4"], default="pi3", help="default pi3")
    parser.add_argument(
        "--mac", help="MAC of the virtual Pi (default: b8:27:eb / dc:a6:32 + the serial's end)"
    )
    parser.add_argument(
        "--manifest",
        metavar="FILE",
        type=Path,
        help="compare every file with this manifest (default: <tftp_root>/current/manifest.json "
        "when it exists on this host)",
    )
    parser.add_argument(
        "--rehearse",
        action="store_true",
        help="on the server itself: boot against a private copy of this server (our generated "
        "dnsmasq config + the deployed TFTP root) in network namespaces; needs no --interface",
    )
    parser.add_argument("--answers", metavar="FILE", type=Path, help="answers file")
    parser.add_argument("--json", action="store_true", help="JSON lines on stdout")
    parser.add_argument(
        "--dhcp-timeout",
        metavar="S",
        type=float,
        default=3.0,
        help="seconds to collect offers after each DISCOVER (3 DISCOVERs; default 3)",
    )


def run(args: argparse.Namespace) -> int:
    """Boot, print the stages, exit 0 only if all passed."""
    from steps.answers import default_answers, load_answers
    from steps.events import LogLine
    from steps.host.rehearsal import Rehearsal
    from steps.selftest import deployed_manifest, load_manifest
    from steps.wire.virtualpi import DEFAULT_SERIAL, BootOptions, BootReport, run_selftest

    answers = load_answers(args.answers) if args.answers else default_answers()
    iface = args.interface or answers.network.interface
    path = args.manifest or deployed_manifest(answers)
    manifest = load_manifest(path) if path is not None else None
    report = BootReport("", args.model, args.serial or DEFAULT_SERIAL)
    if not args.json:
        where = "a private copy of this server" if args.rehearse else iface
        what = f"comparing files with {path}" if path else "no deployed manifest to compare with"
        sys.stderr.write(f"* virtual {args.model} on {where} ({what})\n")
    with contextlib.ExitStack() as stack:
        if args.rehearse:
            rehearsal = stack.enter_context(Rehearsal(answers))
            for event in rehearsal.start():
                if not args.json and isinstance(event, LogLine):
                    sys.stderr.write(f"  {event.text}\n")
            stages = rehearsal.boot(
                model=args.model,
                serial=args.serial or DEFAULT_SERIAL,
                manifest=manifest,
                report=report,
                options=BootOptions(dhcp_window=args.dhcp_timeout),
            )
        else:
            stages = run_selftest(
                iface,
                model=args.model,
                serial=args.serial or DEFAULT_SERIAL,
                mac=args.mac,
                manifest=manifest,
                options=BootOptions(dhcp_window=args.dhcp_timeout),
                report=report,
            )
        _print_stages(stages, report, json_lines=args.json)
    return 0 if report.ok else 1


def _print_stages(stages: Iterator[Stage], report: BootReport, *, json_lines: bool) -> None:
    from steps.wire.jsonlines import stage_json, stage_line, summary_json

    out = sys.stdout

    def emit(obj: dict[str, object]) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    for stage in stages:
        if json_lines:
            emit(stage_json(stage, report.mac))
        else:
            out.write(stage_line(stage) + "\n")
            if not stage.ok and stage.code:
                from steps.wire.diagnosis import fix_for

                out.write(f"     fix: {fix_for(stage.code)}\n")
            out.flush()
    if json_lines:
        emit(summary_json([report]))
    else:
        verdict = "booted" if report.ok else f"did NOT boot (stopped at {report.phase})"
        out.write(
            f"virtual {report.model} {report.mac} serial {report.serial}: {verdict}"
            f"{f', address {report.ip}' if report.ip else ''}"
            f"{f', TFTP server {report.server}' if report.server else ''}\n"
        )
