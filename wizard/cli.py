"""Command line of ``firecore-wizard``.

``firecore-wizard`` alone opens the Textual wizard; ``--answers FILE`` runs the same steps headless;
sub-commands (``selftest``, ``status``, ``deploy --rollback`` …) live in ``wizard.commands`` and
are imported only when used, so the headless path never imports Textual.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from steps.errors import FirecoreError, UsageError
from steps.textsafe import has_control, printable, redact_text, redact_url
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
    "monitor": "wizard.commands.monitor",
    "demo-mirror": "wizard.commands.demo",
}


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (the boundary prints it) and refuses control characters.

    Every argument is checked here, once, for every command: a value holding a control character
    (a newline, an escape sequence) is a usage error naming the argument, whatever its type.
    """

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(printable(message), fix=f"see `{self.prog} --help`")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        for arg in args or ():
            if has_control(arg):
                raise UsageError(
                    f"argument '{printable(arg, 60)}' holds a control character",
                    fix="type it again without newlines, tabs or escape sequences",
                )
        return super().parse_known_args(args, namespace)


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
    add_debug(parser)
    return parser


def add_debug(parser: argparse.ArgumentParser) -> None:
    """``--debug``: an unexpected error prints its traceback (otherwise one line)."""
    parser.add_argument(
        "--debug", action="store_true", help="print the traceback of an unexpected error"
    )


def _sub_parser(name: str) -> tuple[argparse.ArgumentParser, object]:
    module = importlib.import_module(SUBCOMMANDS[name])
    parser = _Parser(prog=f"firecore-wizard {name}", description=getattr(module, "HELP", None))
    module.configure(parser)
    add_debug(parser)
    for action in parser._actions:  # sub-actions (dnsmasq status …) get --debug too
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                add_debug(sub)
    return parser, module


class _Boundary:
    """What the one error boundary needs to know about the run it guards."""

    def __init__(self, args: Sequence[str]) -> None:
        self.json = "--json" in args
        self.debug = "--debug" in args or os.environ.get("FIRECORE_DEBUG", "") not in ("", "0")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of every command: the one error boundary; returns the exit code.

    A ``FirecoreError`` is printed as ``ERROR <title>: <message>`` plus its fix (exit 2 for a
    user error, naming the key or argument; 1 for a failed step); anything unexpected becomes
    one line and exit 1, its traceback only with ``--debug``. Under ``--json`` an ``error`` line
    is written to stdout and a ``done`` line is always the last one, whatever happened.
    """
    from wizard.render import reset_json

    args = list(sys.argv[1:] if argv is None else argv)
    boundary = _Boundary(args)
    reset_json()
    try:
        code = _dispatch(args)
    except SystemExit as exc:  # --help / --version, and sys.exit from deep inside
        code = int(exc.code) if isinstance(exc.code, int) else int(ExitCode.USAGE)
    except FirecoreError as exc:
        code = _report(boundary, exc)
    except KeyboardInterrupt:
        sys.stderr.write("ERROR Interrupted\n")
        _json_error(boundary, "Interrupted", "interrupted", "", int(ExitCode.INTERRUPTED))
        code = int(ExitCode.INTERRUPTED)
    except RecursionError:
        code = _unexpected(boundary, "nesting too deep (an input is recursive or far too large)")
    except Exception as exc:
        code = _unexpected(boundary, f"{type(exc).__name__}: {exc}")
    if boundary.json and not _done_written(boundary):
        _write_json({"type": "done", "exit_code": code})
    return code


def _dispatch(args: list[str]) -> int:
    if args and args[0] in SUBCOMMANDS:
        parser, module = _sub_parser(args[0])
        ns = parser.parse_args(args[1:])
        return int(module.run(ns))  # type: ignore[attr-defined]
    ns = _main_parser().parse_args(args)
    return _run_main(ns)


def _done_written(boundary: _Boundary) -> bool:
    """True when the last line on stdout is already a ``done`` line (a renderer wrote it)."""
    from wizard.render import last_json_type

    return last_json_type() == "done"


def _write_json(obj: dict[str, Any]) -> None:
    from wizard.render import note_json

    try:
        sys.stdout.write(json.dumps(obj, default=str) + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):  # stdout closed (a pipe that went away)
        return
    note_json(obj)


def _json_error(boundary: _Boundary, title: str, message: str, fix: str, code: int) -> None:
    if boundary.json:
        _write_json(
            {
                "type": "error",
                "step": None,
                "title": title,
                "message": message,
                "fix": fix,
                "exit_code": code,
            }
        )


def _report(boundary: _Boundary, exc: FirecoreError) -> int:
    code = int(exit_code_for(exc))
    message = printable(redact_text(exc.message))
    fix = printable(redact_text(exc.fix))
    from wizard.render import last_json_type

    if last_json_type() != "done":  # the renderer reported it already (and wrote done)
        sys.stderr.write(f"ERROR {exc.title}: {message}\n")
        if fix:
            sys.stderr.write(f"  fix: {fix}\n")
        if boundary.debug and exc.details:
            sys.stderr.write(printable(exc.details, 4000) + "\n")
        _json_error(boundary, exc.title, message, fix, code)
    return code


def _unexpected(boundary: _Boundary, what: str) -> int:
    """A bug or an unforeseen condition: one line, exit 1, the traceback behind --debug."""
    line = printable(redact_text(what), 300)
    sys.stderr.write(f"ERROR Unexpected: {line}\n")
    if boundary.debug:
        import traceback  # only for an internal error: the usual run never formats one

        sys.stderr.write(redact_text(traceback.format_exc()))
    else:
        sys.stderr.write("  fix: run again with --debug for the details, and report it\n")
    _json_error(boundary, "Unexpected", line, "run again with --debug", int(ExitCode.STEP_FAILED))
    return int(ExitCode.STEP_FAILED)


def _run_main(ns: argparse.Namespace) -> int:
    from steps.answers import default_answers, load_answers

    answers = load_answers(ns.answers) if ns.answers else None
    if ns.offer_demo and not ns.demo:
        ns.demo = _ask_for_demo((answers or default_answers()).release.mirrors)
    headless = answers is not None and not ns.interactive and (ns.answers or ns.dry_run or ns.json)
    if ns.demo and headless:
        from wizard.commands.demo import start_demo

        answers = start_demo(answers or default_answers(), strict=True)
    if headless:
        from wizard.headless_run import run_headless

        assert answers is not None
        return run_headless(answers, json_lines=ns.json, dry_run=ns.dry_run)
    if ns.json or ns.dry_run:
        raise UsageError("--json and --dry-run need --answers FILE (they are headless options)")
    # the wizard starts the demo mirror itself, with its first frame at once (wizard.app)
    return _run_tui(answers, ns.answers, demo=ns.demo)


def _ask_for_demo(mirrors: list[str]) -> bool:
    """True when no mirror answers and the user agrees to use the demo mirror instead."""
    from steps.fetch.mirror import answering_mirror

    if answering_mirror(mirrors) is not None:
        return False
    import shutil
    import textwrap

    width = min(shutil.get_terminal_size().columns, 80) - 1
    asked = ", ".join(map(redact_url, mirrors))
    text = (
        f"No piCore mirror answered ({asked}). The demo mirror is a small generated piCore "
        "release served on 127.0.0.1: it lets you walk the whole flow offline, but what you "
        "build from it does not boot a real Pi."
    )
    sys.stderr.write(textwrap.fill(text, width=width, break_on_hyphens=False) + "\n")
    if not sys.stdin.isatty():
        sys.stderr.write("Not a terminal: going on without the demo mirror.\n")
        return False
    reply = input("Use the demo mirror? [Y/n] ").strip().lower()
    return reply in ("", "y", "yes")


def _run_tui(answers: object, path: Path | None, *, demo: bool = False) -> int:
    try:
        from wizard.app import make_app
    except ImportError as exc:  # the TUI is an optional part of a partial install
        raise UsageError(f"the interactive wizard is not available: {exc}") from None
    app = make_app(answers=answers, answers_path=path, demo=demo)  # type: ignore[arg-type]
    result = app.run()
    if app.farewell:
        sys.stderr.write(app.farewell + "\n")
    return int(result or 0)
