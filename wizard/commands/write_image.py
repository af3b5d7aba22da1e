"""``firecore-wizard write-image IMG --device DEV``: write a card safely, then verify it.

The device is inspected and refused when unsafe (``steps.write_image.check_target``: mounted,
a partition, in use, read-only, too small; not removable or larger than a card unless
``--force``), then named — model, size, how it is attached — and the user is asked once
(``--yes`` for scripts; without a terminal ``--yes`` is required). Progress goes to stderr as
bars on a terminal; the step reads the card back and compares it before it reports success.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from steps.errors import UsageError
from steps.units import human_size

HELP = "write a card image (SD image, prepare card) to an SD card safely, then verify it"


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments: the image, the device, confirmation and safety overrides."""
    parser.add_argument("image", type=Path, metavar="IMG", help="the image to write (.img)")
    parser.add_argument(
        "--device", type=Path, required=True, metavar="DEV", help="the card, e.g. /dev/sdb"
    )
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument(
        "--force",
        action="store_true",
        help="also write to a non-removable device or one larger than --max-size",
    )
    parser.add_argument(
        "--max-size",
        type=float,
        default=256,
        metavar="GIB",
        help="devices larger than this are refused without --force (default 256 GiB)",
    )
    parser.add_argument("--json", action="store_true", help="JSON lines on stdout")


def confirm(question: str) -> bool:
    """Ask once on the terminal; False for anything but yes."""
    if not sys.stdin.isatty():
        raise UsageError(
            "no terminal to ask for confirmation", fix="pass --yes to write without asking"
        )
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def run(args: argparse.Namespace) -> int:
    """Check, confirm, write, verify."""
    from steps.answers import default_answers
    from steps.base import StepContext
    from steps.write_image import WriteImageStep, check_target
    from wizard.headless import run_steps
    from wizard.render import make_renderer

    if args.max_size <= 0:
        raise UsageError(f"--max-size {args.max_size:g}: give a size in GiB above 0")
    max_size = int(args.max_size * (1 << 30))
    target = check_target(args.image, args.device, force=args.force, max_size=max_size)
    size = human_size(args.image.stat().st_size)
    if not args.yes and target.exists and (target.kind != "file" or target.size > 0):
        sys.stderr.write(
            f"About to write {args.image} ({size}) to\n  {target.describe()}\n"
            "Everything on it will be lost.\n"
        )
        if not confirm("Write it?"):
            sys.stderr.write("Nothing written.\n")
            return 1
    ctx = StepContext(answers=default_answers())  # the step reads no answers
    step = WriteImageStep(args.image, args.device, force=args.force, max_size=max_size)
    return int(run_steps([step], ctx, make_renderer(json_lines=args.json)))
