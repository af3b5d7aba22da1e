"""Command line of ``firecore-wizard``.

``firecore-wizard`` alone opens the Textual wizard; ``--answers FILE`` runs the same steps headless;
sub-commands (``selftest``, ``status``, ``deploy --rollback`` …) live in ``wizard.commands`` and
are imported only when used, so the headless path never imports Textual.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from steps.errors import FirecoreError, UsageError
from wizard import __version__
from wizard.exit_codes import ExitCode, exit_code_for

#: sub-command → module in wizard.commands (each has HELP, configure(parser), run(args)).
SUBCOMMANDS: dict[str, str] = {
    "schema": "wizard.commands.schema",
    "deploy": "wizard.commands.deploy",
    "selftest": "wizard.commands.selftest",
    "dnsmasq": "wizard.commands.dnsmasq",
    "status": "wizard.commands.status",
    "prepare": "wizard.commands.prepare",
    "write-image": "wizard.commands.write_image",
    "demo-mirror": "wizard.commands.demo",
}


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with our one-line error style."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"ERROR Usage: {message}\n")
        raise SystemExit(ExitCode.USAGE)


def _main_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="firecore-wizard",
        description="Netboot Raspberry Pis into a RAM-only piCore that runs your Python app.",
        epilog="sub-commands: "
        + ", ".join(SUBCOMMANDS)
        + " (firecore-wizard SUB-COMMAND --help for each)",
    )
    parser.add_argument("--answers", metavar="FILE", type=Path, help="answers file (TOML)")
    parser.add_argument("--json", action="store_true", help="JSON lines on stdout (headless)")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the plan and the files it would write"
    )
    parser.add_argument(
        "--interactive", action="store_true", help="open the wizard pre-filled from --answers"
    )
    parser.add_argument(
        "--demo", action="store_true", help="serve a generated demo mirror on 127.0.0.1 and use it"
    )
    parser.add_argument(
        "--offer-demo",
        action="store_true",
        help="if no mirror answers, ask whether to use the demo mirror instead (make run)",
    )
    parser.add_argument("--version", action="version", version=f"firecore-wizard {__version__}")
    return parser


def _sub_parser(name: str) -> tuple[argparse.ArgumentParser, object]:
    module = importlib.import_module(SUBCOMMANDS[name])
    parser = _Parser(prog=f"firecore-wizard {name}", description=getattr(module, "HELP", None))
    module.configure(parser)
    return parser, module


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (never raises for a user error)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] in SUBCOMMANDS:
            parser, module = _sub_parser(args[0])
            ns = parser.parse_args(args[1:])
            return int(module.run(ns))  # type: ignore[attr-defined]
        ns = _main_parser().parse_args(args)
        return _run_main(ns)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else ExitCode.USAGE
    except FirecoreError as exc:
        sys.stderr.write(f"ERROR {exc.title}: {exc.message}\n")
        if exc.fix:
            sys.stderr.write(f"  fix: {exc.fix}\n")
        return int(exit_code_for(exc))
    except KeyboardInterrupt:
        sys.stderr.write("ERROR Interrupted\n")
        return int(ExitCode.INTERRUPTED)


def _run_main(ns: argparse.Namespace) -> int:
    from steps.answers import default_answers, load_answers

    answers = load_answers(ns.answers) if ns.answers else None
    if ns.offer_demo and not ns.demo:
        ns.demo = _ask_for_demo((answers or default_answers()).release.mirrors)
    if ns.demo:
        from wizard.commands.demo import start_demo

        answers = start_demo(answers or default_answers())
    if answers is not None and not ns.interactive and (ns.answers or ns.dry_run or ns.json):
        from wizard.headless_run import run_headless

        return run_headless(answers, json_lines=ns.json, dry_run=ns.dry_run)
    if ns.json or ns.dry_run:
        raise UsageError("--json and --dry-run need --answers FILE (they are headless options)")
    return _run_tui(answers, ns.answers)


def _ask_for_demo(mirrors: list[str]) -> bool:
    """True when no mirror answers and the user agrees to use the demo mirror instead."""
    from steps.fetch.mirror import answering_mirror

    if answering_mirror(mirrors) is not None:
        return False
    sys.stderr.write(
        "No piCore mirror answered (" + ", ".join(mirrors) + ").\n"
        "The demo mirror is a small generated piCore release served on 127.0.0.1: it lets you\n"
        "walk the whole flow offline, but what you build from it does not boot a real Pi.\n"
    )
    if not sys.stdin.isatty():
        sys.stderr.write("Not a terminal: going on without the demo mirror.\n")
        return False
    reply = input("Use the demo mirror? [Y/n] ").strip().lower()
    return reply in ("", "y", "yes")


def _run_tui(answers: object, path: Path | None) -> int:
    try:
        from wizard.app import make_app
    except ImportError as exc:  # the TUI is an optional part of a partial install
        raise UsageError(f"the interactive wizard is not available: {exc}") from None
    app = make_app(answers=answers, answers_path=path)  # type: ignore[arg-type]
    result = app.run()
    return int(result or 0)
