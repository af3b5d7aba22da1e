"""Status of the running Pis: found over mDNS, checked over HTTP, compared with the deployment.

Every Pi's app announces ``_firecore._tcp.local.`` (TXT serial, model, build, port) from a
process separate from its HTTP service. Anyone on the LAN can announce that too, so nothing an
announcement or an HTTP answer says is trusted: every string is made printable and bounded
before it is shown (``_clean``), and the bearer token is never sent — ``/info`` is read with a
signed, single-use request (``firecore_app.sigauth``) that a stranger cannot reuse.
``StatusStep`` browses for those announcements for a fixed window, then polls each Pi's
``/health`` (and ``/info``, signed when a token is configured) with httpx: short timeouts, a
few attempts with backoff, all Pis in parallel. A Pi that is announced but does not answer
``/health`` with 200 is *unhealthy* (its app crashed or hangs); one that does not announce
itself at all is not listed (gone). The build id each Pi
reports is compared with ``build_id`` of the deployed manifest
(``<network.tftp_root>/current/manifest.json``, or an explicit file): a different one is an
*old build*.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from steps.answers import load_secrets, resolve_path
from steps.base import StepContext
from steps.errors import Cancelled, UsageError
from steps.events import Event, LogLine, Progress, Result
from steps.picore.appbundle import sigauth
from steps.textsafe import printable

SERVICE_TYPE = "_firecore._tcp.local."
HTTP_TIMEOUT = 2.0
ATTEMPTS = 3
BACKOFF = 0.25


@dataclass(frozen=True)
class Announcement:
    """One resolved mDNS service instance."""

    name: str
    server: str
    addresses: tuple[str, ...]
    port: int
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PiStatus:
    """What status knows about one Pi."""

    name: str
    serial: str | None
    hostname: str | None
    model: str | None
    ip: str | None
    """The address that answered (else the first announced one)."""
    port: int
    addresses: tuple[str, ...]
    build_id: str | None
    deployed_build: str | None
    current: bool | None
    """True: runs the deployed build; False: an old build; None: unknown."""
    healthy: bool
    error: str | None = None
    """Why it is unhealthy (timeout, refused, HTTP 500 …)."""
    uptime: float | None = None
    """Seconds since the Pi booted (from /info), else the app's uptime (from /health)."""
    info_error: str | None = None
    """Why /info could not be read (e.g. a token is required), when health is fine."""
    netboot: bool | None = None
    """Network boot enabled, as the Pi itself reports it (/info netboot); None: unknown."""
    netboot_reason: str | None = None
    """What the Pi read to say so ("OTP 17:3020000a (bit 29 set)", "BOOT_ORDER=0xf21 …")."""

    def to_data(self) -> dict[str, Any]:
        """JSON-able form (one object per Pi in ``status --json``)."""
        data = asdict(self)
        data["addresses"] = list(self.addresses)
        data["health"] = "ok" if self.healthy else "unhealthy"
        data["netboot_text"] = netboot_text(self)
        return data


@dataclass(frozen=True)
class StatusReport:
    """The outcome of one status run."""

    pis: tuple[PiStatus, ...]
    waited: float
    deployed_build: str | None
    manifest: str | None

    @property
    def healthy(self) -> int:
        return sum(1 for p in self.pis if p.healthy)

    @property
    def old_builds(self) -> int:
        return sum(1 for p in self.pis if p.current is False)

    def ok(self, *, require_current: bool = False) -> bool:
        """At least one Pi found and every one healthy (and current, if required)."""
        if not self.pis or self.healthy != len(self.pis):
            return False
        return not (require_current and self.old_builds)

    def summary(self, *, require_current: bool = False) -> dict[str, Any]:
        """The final ``{"type": "summary", ...}`` object of ``status --json``."""
        return {
            "found": len(self.pis),
            "healthy": self.healthy,
            "unhealthy": len(self.pis) - self.healthy,
            "old_build": self.old_builds,
            "deployed_build": self.deployed_build,
            "manifest": self.manifest,
            "waited": self.waited,
            "ok": self.ok(require_current=require_current),
        }


def deployed_build(manifest: Path) -> str | None:
    """``build_id`` of a manifest file; None when the file is absent."""
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"cannot read the manifest {manifest}: {exc}",
            fix="point --manifest at the manifest.json of a build or deployment",
        ) from None
    value = data.get("build_id") if isinstance(data, dict) else None
    if not value:
        raise UsageError(
            f"{manifest} has no build_id", fix="use the manifest.json written by the remaster step"
        )
    return str(value)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")


def _clean(value: Any, limit: int = 120) -> str:
    """A string from the network, safe to show: printable, bounded (see steps.textsafe)."""
    return printable(_text(value), limit)


def browse(step: str, wait: float, cancel: threading.Event) -> Iterator[Event | list[Announcement]]:
    """Browse for ``wait`` seconds; yields Progress, then the list of resolved announcements."""
    from zeroconf import (
        InterfaceChoice,
        IPVersion,
        ServiceBrowser,
        ServiceStateChange,
        Zeroconf,
    )

    names: dict[str, bool] = {}
    lock = threading.Lock()

    def on_change(
        zeroconf: Any, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        with lock:
            names[name] = state_change is not ServiceStateChange.Removed

    zc = Zeroconf(interfaces=InterfaceChoice.All, ip_version=IPVersion.V4Only)
    try:
        browser = ServiceBrowser(zc, SERVICE_TYPE, handlers=[on_change])
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < wait:
            if cancel.is_set():
                browser.cancel()
                raise Cancelled()
            with lock:
                seen = sum(1 for alive in names.values() if alive)
            yield Progress(step, "browse", round(elapsed, 1), wait, "steps", f"{seen} found")
            cancel.wait(min(0.25, max(0.0, wait - elapsed)))
        browser.cancel()
        with lock:
            alive = sorted(n for n, ok in names.items() if ok)
        found: list[Announcement] = []
        for name in alive:
            info = zc.get_service_info(SERVICE_TYPE, name, timeout=1500)
            if info is None or not info.port:
                continue
            props = {
                _clean(k, 40): _clean(v) for k, v in list((info.properties or {}).items())[:32]
            }
            found.append(
                Announcement(
                    name=_clean(name, 255),
                    server=_clean(info.server or "", 255),
                    addresses=tuple(info.parsed_addresses()),
                    port=int(info.port),
                    properties=props,
                )
            )
        yield Progress(step, "browse", wait, wait, "steps", f"{len(found)} found")
        yield found
    finally:
        zc.close()


def _get(
    client: httpx.Client,
    url: str,
    headers: dict[str, str],
    cancel: threading.Event,
    attempts: int,
) -> httpx.Response | str:
    """GET with a few attempts and backoff; the response, or the last error as text."""
    error = ""
    for attempt in range(attempts):
        if attempt and cancel.wait(BACKOFF * 2 ** (attempt - 1)):
            return "cancelled"
        try:
            response = client.get(url, headers=headers)
        except httpx.TimeoutException:
            error = "timed out"
            continue
        except httpx.HTTPError as exc:
            error = _short(exc)
            continue
        if response.status_code >= 500:
            error = f"HTTP {response.status_code}"
            continue
        return response
    return error


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "refused" in text.lower():
        return "connection refused"
    return printable(text.splitlines()[0] if text.splitlines() else text, 120)


def _signed_headers(
    client: httpx.Client, base: str, seed: bytes, cancel: threading.Event, path: str
) -> dict[str, str] | str:
    """The Authorization header of a signed GET ``path`` (a fresh nonce from the Pi), or why
    there is none. The token itself is never sent: see ``firecore_app.sigauth``."""
    got = _get(client, f"{base}/firecore/challenge", {}, cancel, 1)
    if isinstance(got, str):
        return got
    if got.status_code == 404:
        return (
            "this Pi's build cannot check signed requests (it predates them), and the token is "
            "never sent: rebuild and deploy"
        )
    try:
        body = got.json()
        nonce = str(body["nonce"])
        serial = str(body.get("serial") or "")
        build = str(body.get("build_id") or "")
        int(nonce, 16)
    except (ValueError, KeyError, TypeError):
        return "/firecore/challenge did not answer a nonce"
    if len(nonce) != 32 or len(serial) > 64 or len(build) > 64:
        return "/firecore/challenge did not answer a nonce"
    auth = sigauth()
    return {"Authorization": auth.header(seed, nonce.lower(), "GET", path, serial, build)}


def poll(
    ann: Announcement,
    token: str,
    deployed: str | None,
    cancel: threading.Event,
    *,
    timeout: float = HTTP_TIMEOUT,
    attempts: int = ATTEMPTS,
) -> PiStatus:
    """Check one Pi's /health (then /info) on each announced address until one answers.

    With a ``token``, /info is read with a request signed for this Pi's nonce (the token never
    leaves this machine); without one, /info is asked for anyway and reports "token required".
    """
    seed = sigauth().seed_of(token) if token else None
    props = ann.properties
    health: dict[str, Any] | None = None
    info: dict[str, Any] | None = None
    error = "no address announced"
    info_error: str | None = None
    used: str | None = ann.addresses[0] if ann.addresses else None
    with httpx.Client(timeout=timeout, trust_env=False) as client:
        for ip in ann.addresses:
            base = f"http://{_host(ip)}:{ann.port}"
            got = _get(client, f"{base}/health", {}, cancel, attempts)
            if isinstance(got, str):
                error = got
                continue
            used = ip
            if got.status_code != 200:
                error = f"/health answered HTTP {got.status_code}"
                break
            try:
                body = got.json()
                health = body if isinstance(body, dict) else {}
            except ValueError:
                health = {}
            error = ""
            headers: dict[str, str] | str = {}
            if seed is not None:
                headers = _signed_headers(client, base, seed, cancel, "/info")
            if isinstance(headers, str):
                info_error = headers
                break
            got_info = _get(client, f"{base}/info", headers, cancel, 1)
            if isinstance(got_info, str):
                info_error = got_info
            elif got_info.status_code == 401:
                info_error = (
                    "the Pi refused the signed request (another token?)"
                    if seed is not None
                    else "token required (set app.secrets_file in --answers, or FIRECORE_TOKEN)"
                )
            elif got_info.status_code != 200:
                info_error = f"/info answered HTTP {got_info.status_code}"
            else:
                try:
                    body = got_info.json()
                    info = body if isinstance(body, dict) else None
                except ValueError:
                    info_error = "/info is not JSON"
            break
    healthy = health is not None and not error
    health = health or {}
    info = info or {}
    build = _clean(health.get("build_id") or props.get("build") or "", 64) or None
    if build == "unknown":
        build = None
    uptime = info.get("uptime", health.get("app_uptime"))
    current = None if deployed is None or build is None else build == deployed
    raw = info.get("netboot")
    nb: dict[str, Any] = raw if isinstance(raw, dict) else {}
    enabled = nb.get("enabled")
    return PiStatus(
        name=_clean(ann.name.removesuffix("." + SERVICE_TYPE), 255),
        serial=_clean(info.get("serial") or health.get("serial") or props.get("serial") or "", 40)
        or None,
        hostname=_clean(
            info.get("hostname") or health.get("hostname") or props.get("hostname") or "", 255
        )
        or None,
        model=_clean(info.get("model") or props.get("model") or "", 200) or None,
        ip=used,
        port=ann.port,
        addresses=ann.addresses,
        build_id=build,
        deployed_build=deployed,
        current=current,
        healthy=healthy,
        error=error or None,
        uptime=float(uptime) if isinstance(uptime, int | float) else None,
        info_error=info_error if not error else None,
        netboot=enabled if isinstance(enabled, bool) else None,
        netboot_reason=str(nb["reason"]) if nb.get("reason") else None,
    )


def _host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def find_token(secrets_file: str) -> str:
    """The bearer token: FIRECORE_TOKEN, else the answers' secrets file, else ""."""
    env = os.environ.get("FIRECORE_TOKEN", "")
    if env:
        return env
    if secrets_file:
        return load_secrets(resolve_path(secrets_file)).token
    return ""


class StatusStep:
    """Find the Pis over mDNS and report their health and build."""

    name = "status"
    title = "Status"

    def __init__(
        self,
        wait: float = 3.0,
        manifest: Path | None = None,
        token: str | None = None,
        attempts: int = ATTEMPTS,
    ) -> None:
        self.wait = wait
        self.manifest = manifest
        self.token = token
        self.attempts = attempts

    def _deployed(self, ctx: StepContext) -> tuple[str | None, str | None]:
        if self.manifest is not None:
            if not self.manifest.is_file():
                raise UsageError(
                    f"manifest {self.manifest} does not exist",
                    fix="point --manifest at a build's or deployment's manifest.json",
                )
            return deployed_build(self.manifest), str(self.manifest)
        path = resolve_path(ctx.answers.network.tftp_root) / "current" / "manifest.json"
        build = deployed_build(path)
        return build, str(path) if build is not None else None

    def run(self, ctx: StepContext) -> Iterator[Event]:
        """Browse, poll, compare; Result data has ``pis`` and ``summary``."""
        deployed, manifest = self._deployed(ctx)
        if deployed:
            yield LogLine(self.name, f"deployed build {deployed} (from {manifest})")
        else:
            yield LogLine(self.name, "no deployed manifest found: build ids are not compared")
        token = self.token if self.token is not None else find_token(ctx.answers.app.secrets_file)
        yield LogLine(self.name, f"browsing {SERVICE_TYPE} for {self.wait:g} s")
        found: list[Announcement] = []
        for item in browse(self.name, self.wait, ctx.cancel):
            if isinstance(item, list):
                found = item
            else:
                yield item
        ctx.check_cancel()
        pis: list[PiStatus] = []
        if found:
            with ThreadPoolExecutor(max_workers=min(16, len(found))) as pool:
                pis = list(
                    pool.map(
                        lambda a: poll(a, token, deployed, ctx.cancel, attempts=self.attempts),
                        found,
                    )
                )
        ctx.check_cancel()
        pis.sort(key=lambda p: (p.serial or "", p.name))
        for pi in pis:
            yield LogLine(self.name, describe(pi), "info" if pi.healthy else "warning")
        report = StatusReport(tuple(pis), self.wait, deployed, manifest)
        ctx.results.put(report)
        yield Result(
            self.name,
            summary_line(report),
            {"pis": [p.to_data() for p in pis], "summary": report.summary()},
        )


def describe(pi: PiStatus) -> str:
    """One human line for a Pi."""
    state = "healthy" if pi.healthy else f"UNHEALTHY ({pi.error})"
    build = pi.build_id or "?"
    if pi.current is False:
        build += f" OLD BUILD (deployed {pi.deployed_build})"
    return (
        f"{pi.serial or '?'} {pi.hostname or pi.name} {pi.ip}:{pi.port} build {build}: {state}; "
        f"netboot {netboot_text(pi)}"
    )


def netboot_text(pi: PiStatus) -> str:
    """Network boot as the Pi reports it: "on (OTP 17:3020000a …)", "OFF (…)", "?"."""
    word = {True: "on", False: "OFF", None: "?"}[pi.netboot]
    return f"{word} ({pi.netboot_reason})" if pi.netboot_reason else word


def summary_line(report: StatusReport) -> str:
    """One line for the whole run."""
    if not report.pis:
        return f"no Pi announced itself within {report.waited:g} s"
    parts = [f"{len(report.pis)} Pi(s) found", f"{report.healthy} healthy"]
    if report.healthy != len(report.pis):
        parts.append(f"{len(report.pis) - report.healthy} unhealthy")
    if report.old_builds:
        parts.append(f"{report.old_builds} running an old build")
    return ", ".join(parts)


def table(pis: Sequence[PiStatus]) -> str:
    """A fixed-width table of the Pis for the terminal."""
    rows = [("SERIAL", "HOSTNAME", "ADDRESS", "BUILD", "UPTIME", "NETBOOT", "HEALTH")]
    for p in pis:
        build = (p.build_id or "?") + (" (old)" if p.current is False else "")
        health = "ok" if p.healthy else f"UNHEALTHY: {p.error}"
        rows.append(
            (
                p.serial or "?",
                p.hostname or p.name,
                f"{p.ip}:{p.port}",
                build,
                _uptime(p.uptime),
                netboot_text(p),
                health,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    return "\n".join(
        "  ".join(c.ljust(widths[i]) for i, c in enumerate(r[:6])) + "  " + r[6] for r in rows
    )


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(seconds)
    if s >= 86400:
        return f"{s // 86400}d{(s % 86400) // 3600:02d}h"
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s"
