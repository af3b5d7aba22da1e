"""``firecore-wizard selftest``: a virtual Pi boots against the server and reports each stage.

Run it from any machine on the Pis' LAN (it needs root for its raw socket, nothing else). It
prints one line per stage (``--json``: one stage object per line and a final summary, as
DESIGN.md "Monitor JSON lines" says) and exits 0 only if every stage passed.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from wizard.render import Renderer, make_renderer

if TYPE_CHECKING:
    from steps.wire.virtualpi import BootReport, Stage

HELP = "boot a virtual Pi 3/4/5 from an interface and check every stage"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of the self-test."""
    from wizard import argtypes

    parser.add_argument(
        "--interface",
        metavar="IFACE",
        type=argtypes.interface,
        help="interface on the Pis' LAN (default: the answers')",
    )
    parser.add_argument(
        "--serial",
        metavar="HEX8",
        type=argtypes.hex8,
        default=None,
        help="serial number of the virtual Pi (per-device trees); default 5e1f7e57",
    )
    parser.add_argument("--model", choices=["pi3", "pi4", "pi5"], default="pi3", help="default pi3")
    parser.add_argument(
        "--mac",
        type=argtypes.mac,
        help="MAC of the virtual Pi (default: b8:27:eb / dc:a6:32 / 2c:cf:67 + the serial's end)",
    )
    parser.add_argument(
        "--tftp-prefix",
        choices=["serial", "mac"],
        default="serial",
        help="Pi 4/5 TFTP_PREFIX: per-device directory by serial (0, default) or by MAC (2)",
    )
    parser.add_argument(
        "--stepping",
        choices=["c1", "d0"],
        default="c1",
        help="Pi 5 BCM2712 stepping: d0 boards load bcm2712d0-rpi-5-b.dtb (default c1)",
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
        type=argtypes.seconds(0, 60),
        default=3.0,
        help="seconds to collect offers after each DISCOVER (3 DISCOVERs; default 3)",
    )


def run(args: argparse.Namespace) -> int:
    """Boot, print the stages, exit 0 only if all passed."""
    from steps.answers import default_answers, load_answers
    from steps.events import LogLine
    from steps.selftest import boot_stages, find_manifest
    from steps.wire.virtualpi import DEFAULT_SERIAL, BootOptions, BootReport, Stage

    answers = load_answers(args.answers) if args.answers else default_answers()
    found = find_manifest(answers, args.manifest)
    report = BootReport("", args.model, args.serial or DEFAULT_SERIAL)
    with make_renderer(json_lines=args.json) as out:
        if not args.json:
            iface = args.interface or answers.network.interface
            where = "a private copy of this server" if args.rehearse else iface
            what = (
                f"comparing files with {found[0]}"
                if found
                else "no deployed manifest to compare with"
            )
            out.line(f"* virtual {args.model} on {where} ({what})")
        for item in boot_stages(
            answers,
            report,
            interface=args.interface,
            mac=args.mac,
            manifest=found[1] if found else None,
            options=BootOptions(dhcp_window=args.dhcp_timeout),
            rehearse=args.rehearse,
            prefix=args.tftp_prefix,
            stepping=args.stepping,
        ):
            if isinstance(item, Stage):
                _print_stage(out, item, report)
            elif isinstance(item, LogLine) and not args.json:
                out.line(f"  {item.text}")  # the rehearsal setting up
        _print_summary(out, report)
    return 0 if report.ok else 1


def _print_stage(out: Renderer, stage: Stage, report: BootReport) -> None:
    from steps.wire.diagnosis import fix_for
    from steps.wire.jsonlines import stage_json, stage_line

    lines = [stage_line(stage)]
    if not stage.ok and stage.code:
        lines.append(f"     fix: {fix_for(stage.code)}")
    out.answer(stage_json(stage, report.mac), lines)


def _print_summary(out: Renderer, report: BootReport) -> None:
    from steps.wire.jsonlines import summary_json

    verdict = "booted" if report.ok else f"did NOT boot (stopped at {report.phase})"
    out.answer(
        summary_json([report]),
        [
            f"virtual {report.model} {report.mac} serial {report.serial}: {verdict}"
            f"{f', address {report.ip}' if report.ip else ''}"
            f"{f', TFTP server {report.server}' if report.server else ''}"
        ],
    )
