"""``firecore-wizard prepare --model MODEL``: the card that makes a Pi netboot-ready.

Runs ``steps.prepare.PrepareStep`` for one model (``--list`` shows them all with what each
needs). Flags override the answers' ``[prepare]`` keys for this run; a bad value is named by its
flag (exit 2). Progress goes to stderr; stdout gets what to do with the card (or, with
``--json``, the JSON lines ending in the step's result and ``done``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from steps.answers import Answers, default_answers, load_answers, parse_answers
from steps.bootloader.models import MODEL_KEYS, MODELS, why
from steps.errors import AnswersError, UsageError
from steps.prepare import PreparedCard, PrepareStep
from wizard.render import Renderer, make_renderer

HELP = "make the card that enables network boot on a Pi (per model), or its SD image"

#: flag → [prepare] key it overrides.
OVERRIDES = {
    "boot_order": "boot_order",
    "tftp_ip": "tftp_ip",
    "tftp_prefix": "tftp_prefix",
    "dhcp_timeout": "dhcp_timeout",
    "card": "card",
    "eeprom_mirror": "eeprom_mirrors",
    "eeprom_catalog": "eeprom_catalog",
    "output": "output",
}


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: the model, the answers file, overrides of [prepare], output format."""
    parser.add_argument("--model", choices=MODEL_KEYS, help="the Pi model to prepare")
    parser.add_argument("--list", action="store_true", help="list the models and what each needs")
    parser.add_argument("--answers", type=Path, metavar="FILE", help="answers file")
    parser.add_argument(
        "--boot-order", metavar="ORDER", help="BOOT_ORDER for Pi 4/5: 0xf21 or sd,network"
    )
    parser.add_argument("--tftp-ip", metavar="IP", help="TFTP_IP for Pi 4/5 cards")
    parser.add_argument(
        "--tftp-prefix", metavar="P", help="TFTP_PREFIX for Pi 4/5: serial, mac or a dir/"
    )
    parser.add_argument("--dhcp-timeout", type=int, metavar="MS", help="DHCP_TIMEOUT (ms)")
    parser.add_argument(
        "--card", choices=("once", "many"), help="EEPROM card for one Pi (once) or many"
    )
    parser.add_argument(
        "--eeprom-mirror",
        action="append",
        metavar="URL|DIR",
        help="where the EEPROM firmware comes from (repeatable; replaces the answers' list)",
    )
    parser.add_argument("--eeprom-catalog", metavar="FILE", help="firmware catalog (JSON)")
    parser.add_argument("--output", metavar="DIR", help="where the cards are written")
    parser.add_argument("--json", action="store_true", help="JSON lines on stdout")
    parser.add_argument("--dry-run", action="store_true", help="say what would be written")


def with_overrides(answers: Answers, args: argparse.Namespace) -> Answers:
    """``answers`` with the flags given applied to ``[prepare]``, validated like the file.

    Raises:
        UsageError: a flag's value is invalid (the message names the flag).
    """
    data = answers.model_dump(mode="python")
    given: dict[str, str] = {}
    for flag, key in OVERRIDES.items():
        value = getattr(args, flag, None)
        if value is not None:
            data["prepare"][key] = value
            given[f"prepare.{key}"] = "--" + flag.replace("_", "-")
    try:
        return parse_answers(data)
    except AnswersError as exc:
        if exc.key in given:
            message = exc.message.split(": ", 1)[-1]
            raise UsageError(f"{given[exc.key]}: {message}", fix=exc.fix) from None
        raise


def _list(out: Renderer) -> int:
    lines: list[str] = []
    for key, info in MODELS.items():
        lines += [f"{key:7} {info.title}: {info.action}", f"        {why(info)}"]
        if info.note:
            lines.append(f"        {info.note}")
    models = {k: {"title": i.title, "action": i.action} for k, i in MODELS.items()}
    out.answer({"models": models}, lines)
    return 0


def card_lines(card: PreparedCard) -> list[str]:
    """What prepare made and what to do with it, for a person."""
    lines = ["", card.title, f"  {card.why}"]
    if card.note:
        lines.append(f"  Note: {card.note}")
    if card.directory is not None:
        lines.append(f"  Card files: {card.directory}")
    if card.image is not None:
        lines += [f"  Card image: {card.image}", f"  sha256:     {card.sha256}"]
    lines += [f"  {key}={value}" for key, value in card.settings.items()]
    lines += ["", "What to do:"]
    lines += [f"  {n}. {step}" for n, step in enumerate(card.instructions, 1)]
    lines.append(f"Check: {card.check}")
    return lines


def run(args: argparse.Namespace) -> int:
    """Make the card; print what to do with it."""
    from steps.base import StepContext
    from wizard.headless import run_steps

    if args.list:
        with make_renderer(json_lines=args.json) as out:
            return _list(out)
    if not args.model:
        raise UsageError("--model is required", fix=f"choose one of {', '.join(MODEL_KEYS)}")
    answers = load_answers(args.answers) if args.answers else default_answers()
    answers = with_overrides(answers, args)
    ctx = StepContext(answers=answers, dry_run=args.dry_run)
    out = make_renderer(json_lines=args.json)
    code = int(run_steps([PrepareStep(args.model)], ctx, out))
    card = ctx.results.get(PreparedCard)
    if code == 0 and card is not None and not args.json:
        out.answer(card.to_data(), card_lines(card))  # --json: the step's result has it all
    return code
