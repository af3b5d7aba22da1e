"""What is already done for a set of answers, read from the world — never remembered.

A saved answers file says what the user wants, not what exists. Reopening it must not show a
build, a network or a deploy as done unless the files on this machine say so:

* **build**: ``build.output/manifest.json`` records the ``build_digest`` of the answers it was
  built from; it must equal these answers' digest.
* **network**: the dnsmasq drop-in at ``network.dnsmasq_conf`` carries the ``network_digest`` of
  the answers it was rendered from in its header; it must equal these answers' digest.
* **deploy**: ``<tftp_root>/current`` must point at a release of exactly that build, with the
  same device map.

Each check reads a few small files (no network, no subprocess), so a front end can call
``what_is_done`` whenever the answers change.
"""

from __future__ import annotations

from dataclasses import dataclass

from steps.answers import Answers, build_digest, resolve_path
from steps.errors import FirecoreError
from steps.host.dnsmasq import network_digest, parse_header, read_installed
from steps.host.tftproot import MANIFEST, RELEASES, current_release, read_manifest, tftp_root


@dataclass(frozen=True)
class Fact:
    """Whether one part of the job is done for the answers, and what was found."""

    done: bool
    why: str
    """One line naming what was looked at, e.g. "nothing built in build/boot yet"."""


@dataclass(frozen=True)
class Done:
    """The three parts of the job that leave something in the world."""

    build: Fact
    network: Fact
    deploy: Fact


def built(answers: Answers) -> tuple[Fact, str]:
    """Whether ``build.output`` holds a tree built from these answers; and its build id."""
    out = resolve_path(answers.build.output)
    manifest = read_manifest(out / MANIFEST)
    if manifest is None:
        return Fact(False, f"nothing built in {out} yet"), ""
    build_id = str(manifest.get("build_id", ""))
    if manifest.get("answers_digest") != build_digest(answers):
        return (
            Fact(False, f"{out} holds build {build_id}, made from other answers: Build again"),
            build_id,
        )
    return Fact(True, f"{out} holds build {build_id}, made from these answers"), build_id


def network_applied(answers: Answers) -> Fact:
    """Whether the installed dnsmasq drop-in was rendered from these answers."""
    path = resolve_path(answers.network.dnsmasq_conf)
    try:
        text = read_installed(answers)
    except FirecoreError as exc:
        return Fact(False, exc.message)
    if text is None:
        return Fact(False, f"no dnsmasq config at {path} yet")
    header = parse_header(text)
    if header is None:
        return Fact(False, f"{path} was not written by firecore-wizard")
    if header.digest != network_digest(answers):
        return Fact(False, f"{path} was made from other network answers: Apply again")
    return Fact(True, f"{path} is the config for these answers")


def deployed(answers: Answers, build_id: str, build_ok: bool) -> Fact:
    """Whether ``<tftp_root>/current`` serves build ``build_id`` with these answers' devices."""
    root = tftp_root(answers)
    live = current_release(root)
    if live is None:
        return Fact(False, f"nothing deployed in {root} yet")
    manifest = read_manifest(root / RELEASES / live / MANIFEST) or {}
    serving = str(manifest.get("build_id", ""))
    if not build_ok or serving != build_id:
        return Fact(False, f"{root}/current serves build {serving or '?'}, not these answers'")
    info = manifest.get("deploy") if isinstance(manifest.get("deploy"), dict) else {}
    devices = info.get("devices", {}) if isinstance(info, dict) else {}
    if dict(devices) != dict(answers.deploy.devices):
        return Fact(False, f"{root}/current has another device map: Deploy again")
    return Fact(True, f"{root}/current serves build {serving}")


def what_is_done(answers: Answers) -> Done:
    """Read the build tree, the installed dnsmasq config and the TFTP root for ``answers``."""
    build, build_id = built(answers)
    return Done(build, network_applied(answers), deployed(answers, build_id, build.done))
