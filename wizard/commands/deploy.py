"""``firecore-wizard deploy [--rollback | --to ID | --list]``: publish, switch back, or list.

Without an action it runs the deploy step alone (publish ``build.output`` as a new release).
With ``deploy.target = "ssh://user@host/path"`` every action works on that host's TFTP root.
``--rollback`` switches ``<tftp_root>/current`` back to the release that was live before it — one
rename, no copying — and ``--to ID`` to any kept release; ``--list`` shows the releases.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from steps.answers import Answers, default_answers, load_answers
from wizard.render import Renderer, make_renderer

HELP = "publish build.output to the TFTP root, roll back, or list releases"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: the answers file, one action, output format."""
    parser.add_argument(
        "--answers", metavar="FILE", type=Path, help="answers file (default: the defaults)"
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--rollback", action="store_true", help="switch back to the previously live release"
    )
    action.add_argument("--to", metavar="ID", help="switch to this kept release")
    action.add_argument("--list", action="store_true", help="list the releases in the TFTP root")
    parser.add_argument("--json", action="store_true", help="JSON on stdout")
    parser.add_argument(
        "--dry-run", action="store_true", help="show what a deploy would write; change nothing"
    )


def _answers(args: argparse.Namespace) -> Answers:
    return load_answers(args.answers) if args.answers else default_answers()


def run(args: argparse.Namespace) -> int:
    """Do the chosen action; exit 0 on success (errors are raised and mapped by the CLI)."""
    answers = _answers(args)
    if not (args.list or args.rollback or args.to):
        from steps.base import StepContext
        from steps.deploy import DeployStep
        from wizard.headless import run_steps

        ctx = StepContext(answers=answers, dry_run=args.dry_run)
        return int(run_steps([DeployStep()], ctx, make_renderer(json_lines=args.json)))
    with make_renderer(json_lines=args.json) as out:
        if args.list:
            _list(answers, out)
        else:
            _rollback(answers, args.to, out)
    return 0


def _rollback(answers: Answers, to: str | None, out: Renderer) -> None:
    from steps.deploy import rollback

    result = rollback(answers, to=to)
    out.answer(
        {"type": "rollback", **result.to_data()},
        [f"{result.where}/current → releases/{result.release} (was {result.previous})"],
    )


def _list(answers: Answers, out: Renderer) -> None:
    from steps.host.remotedeploy import RemoteDeploy
    from steps.host.sshrun import ssh_for
    from steps.host.tftproot import list_releases, tftp_root

    ssh = ssh_for(answers)
    if ssh is not None:
        root: object = ssh.target
        releases = RemoteDeploy(ssh).releases()
    else:
        root = tftp_root(answers)
        releases = list_releases(tftp_root(answers))
    lines = []
    for r in releases:
        mark = "*" if r.current else " "
        devices = f"  devices: {', '.join(sorted(r.devices))}" if r.devices else ""
        demo = "  DEMO" if r.demo else ""
        lines.append(f"{mark} {r.id}  build {r.build_id}  {r.deployed}{devices}{demo}")
    out.answer(
        {"tftp_root": str(root), "releases": [r.to_data() for r in releases]},
        lines or [f"no releases in {root}"],
    )
