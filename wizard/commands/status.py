"""``firecore-wizard status``: the Pis whose app announced itself over mDNS, with health.

stdout carries the data: a table, or with ``--json`` one ``{"type": "pi", ...}`` object per Pi
then one ``{"type": "summary", ...}``; progress and hints go to stderr. Exit 0 when at least one
Pi was found and every Pi found is healthy (and, with ``--require-current``, runs the deployed
build); 1 otherwise — including when none was found, so a script can wait for its Pis with
``until firecore-wizard status; do sleep 5; done``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from steps.answers import default_answers, load_answers
from steps.base import StepContext
from steps.errors import UsageError
from steps.events import LogLine
from steps.status import StatusReport, StatusStep, summary_line, table
from wizard.headless import sigint_cancels
from wizard.render import make_renderer

HELP = "list the Pis whose app announced itself over mDNS, with health and build"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of the status command."""
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per Pi, then a summary"
    )
    from wizard import argtypes

    parser.add_argument(
        "--wait",
        type=argtypes.seconds(0, 600),
        default=3.0,
        metavar="S",
        help="seconds to browse mDNS (default 3)",
    )
    parser.add_argument(
        "--answers",
        type=Path,
        metavar="FILE",
        help="answers file: network.tftp_root locates the deployed manifest, app.secrets_file "
        "the token for /info",
    )
    parser.add_argument(
        "--manifest",
        type=Path,
        metavar="FILE",
        help="compare with this manifest.json instead of <tftp_root>/current/manifest.json",
    )
    parser.add_argument(
        "--require-current",
        action="store_true",
        help="also fail (exit 1) when a Pi runs another build than the deployed one",
    )


def run(args: argparse.Namespace) -> int:
    """Browse, poll, print; the exit code says whether every Pi found is healthy."""
    if not 0 < args.wait <= 600:
        raise UsageError(f"--wait {args.wait:g}: give between 0 and 600 seconds")
    answers = load_answers(args.answers) if args.answers else default_answers()
    ctx = StepContext(answers)
    step = StatusStep(wait=args.wait, manifest=args.manifest)
    with make_renderer(json_lines=args.json) as out:
        with sigint_cancels(ctx.cancel):
            for event in step.run(ctx):
                if isinstance(event, LogLine) and event.stream == "info" and not args.json:
                    out.line(f"  {event.text}")
        report = ctx.results.need(StatusReport, by="status")
        for pi in report.pis:
            out.emit_json({"type": "pi", **pi.to_data()})
        summary = report.summary(require_current=args.require_current)
        out.answer({"type": "summary", **summary}, [table(report.pis)] if report.pis else [])
        out.line(summary_line(report))
        if not report.pis:
            out.line(
                "  fix: check that the Pis booted (firecore-wizard selftest / monitor), that this "
                "machine is on their LAN segment (mDNS does not cross routers), that UDP port "
                "5353 is not blocked here, or wait longer (--wait)"
            )
        elif report.old_builds:
            out.line("  Pis running an old build pick up the deployed one when they reboot")
    return 0 if report.ok(require_current=args.require_current) else 1
