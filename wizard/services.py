"""The screens' window onto the domain: lookups and step factories, imported lazily.

Screens ask ``Services`` for what they show (host check, releases on the mirrors, the TCZ index,
the dependency closure, app checks, interfaces, preflight findings, the dnsmasq preview, releases
in the TFTP root, Pis on the LAN) and for the steps they run. Every call happens in a worker
thread (``StepRunner.load``/``start``) and returns the small records of ``wizard.views``, so
screens never depend on a domain module's internals and tests can hand the app a fake
``Services`` with fixed data. The translation lives in ``wizard.adapters``, which imports each
domain module only when called: the first frame never waits for httpx, psutil or zeroconf.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from steps.answers import Answers
from steps.base import Step
from steps.errors import FirecoreError
from wizard import adapters
from wizard.views import (
    CardTarget,
    Check,
    Closure,
    DnsmasqPreview,
    ExtensionInfo,
    Finding,
    HostCheck,
    InterfaceRow,
    ReleaseListing,
    TftpState,
)


# ---------------------------------------------------------------------------- the gateway
@dataclass
class Services:
    """Real lookups and steps; tests replace methods or pass a subclass with fixed data."""

    fixed_steps: dict[str, Step] = field(default_factory=dict)
    """Steps to run instead of the plan's, by name (``make_app(steps=...)``; tests)."""

    # ---- welcome
    def host_checks(self) -> list[HostCheck]:
        """Tools, privileges and Python packaging the job needs, with the fix for each."""
        from steps.host.hostcheck import check_host

        return [HostCheck(n.item, n.ok, n.detail, n.fix, n.needed_for) for n in check_host()]

    # ---- release / extensions / app
    def releases(self, answers: Answers, cancel: threading.Event) -> ReleaseListing:
        """Every release on the first mirror that answers, or the offline catalog."""
        return adapters.mirror_listing(answers, cancel)

    def extension_index(self, answers: Answers, cancel: threading.Event) -> list[ExtensionInfo]:
        """The TCZ index of the chosen release/arch (names, sizes, descriptions)."""
        return adapters.tcz_index(answers, cancel)

    def closure(self, answers: Answers, cancel: threading.Event) -> Closure:
        """The dependency closure of ``extensions.names`` for the chosen boards."""
        return adapters.tcz_closure(answers, cancel)

    def app_checks(self, answers: Answers, cancel: threading.Event) -> list[Check]:
        """Entry point found, wheels available for the Pi, secrets file usable."""
        return adapters.app_checks(answers, cancel)

    # ---- network
    def interfaces(self, answers: Answers) -> list[InterfaceRow]:
        """The host's interfaces with kind, carrier and warnings."""
        return adapters.interfaces(answers)

    def preflight(self, answers: Answers, cancel: threading.Event) -> list[Finding]:
        """Conflicts on the chosen interface (other DHCP servers, ports, firewall)."""
        return adapters.preflight(answers, cancel)

    def dnsmasq_preview(self, answers: Answers) -> DnsmasqPreview:
        """The dnsmasq drop-in the network step would install, and the installed one."""
        return adapters.dnsmasq_preview(answers)

    def router_preview(self, answers: Answers) -> DnsmasqPreview:
        """Router mode: the DHCP server's config now and as router mode leaves it (over ssh)."""
        return adapters.router_preview(answers)

    # ---- deploy / status
    def tftp_state(self, answers: Answers) -> TftpState:
        """Release directories in the TFTP root and which one is live."""
        return adapters.tftp_state(answers)

    def rollback(self, answers: Answers) -> str:
        """Switch the TFTP root back to the previous release; returns a summary."""
        return adapters.rollback(answers)

    def status_step(self, answers: Answers, wait: float) -> Step:
        """The status step (mDNS browse + health) as the status command runs it."""
        if "status" in self.fixed_steps:
            return self.fixed_steps["status"]
        return adapters.status_step(answers, wait)

    # ---- steps
    def steps(self, names: Sequence[str], answers: Answers) -> list[Step]:
        """The plan's steps called ``names``, in plan order (same classes as headless)."""
        if self.fixed_steps:
            return [self.fixed_steps[n] for n in names if n in self.fixed_steps]
        from steps.plan import build_plan

        plan = build_plan(answers, only=list(names))
        found = [s.name for s in plan]
        lacking = [n for n in names if n not in found]
        if lacking:
            raise FirecoreError(
                f"step(s) {', '.join(lacking)} are not in this install's plan",
                title="Not available",
                fix="update firecore-wizard (`make setup`)",
            )
        return plan

    # ---- prepare / write-image
    def prepare_step(self, answers: Answers, model: str) -> Step:
        """The prepare step for one model (as ``firecore-wizard prepare --model``)."""
        if "prepare" in self.fixed_steps:
            return self.fixed_steps["prepare"]
        return adapters.prepare_step(model)

    def write_image_step(self, image: str, device: str, *, force: bool) -> Step:
        """The write-image step (as ``firecore-wizard write-image``)."""
        if "write_image" in self.fixed_steps:
            return self.fixed_steps["write_image"]
        return adapters.write_image_step(image, device, force=force)

    def card_target(self, image: str, device: str) -> CardTarget:
        """What a device is, and why writing ``image`` to it would be unsafe."""
        return adapters.card_target(image, device)

    def card_devices(self) -> list[CardTarget]:
        """Removable disks to offer in the write dialog."""
        return adapters.card_devices()

    def selftest(self, answers: Answers, model: str, serial: str, *, rehearse: bool) -> Step:
        """The virtual-Pi self-test as a step (``rehearse``: against a private server copy)."""
        if "selftest" in self.fixed_steps:
            return self.fixed_steps["selftest"]
        return adapters.selftest_step(answers, model, serial, rehearse=rehearse)
