"""The Remaster step: a verified piCore release + extensions + app → a TFTP-ready boot tree.

Rootless: no mounts, loop devices, binfmt or chroot. The boot partition comes from the cached
extraction in ``steps/picore/image.py``; every boot file is copied byte-identically,
``config.txt`` gets
``overlay.gz`` appended to every ``initramfs`` line (nothing else changes), ``cmdline.txt`` gets
the flags a diskless netboot needs, and ``overlay.gz`` (``steps/picore/overlay.py``) carries the
extensions, the app, the boot glue and ``/opt/firecore/build.json``. ``manifest.json`` lists every
file's sha256 and size and the inputs. Per-device profiles get ``profiles/<name>/`` with their own
config.txt, cmdline.txt and a small ``pi.gz`` (a short name: config.txt lines are cut at 98
characters, and piCore64's ``[PI5]`` line already names two long archives).

Before anything is written the tree is checked against what the Pis' boot code can read
(sources next to each check): no config.txt line we write over 98 characters, config.txt past
4096 bytes, files too big for the TFTP block counter of the model that reads them
(``steps.wire.pimodels``), and the Pi 5's needs (its D0 device tree, 4-byte aligned initramfs
files).

The tree is built in a staging directory and swapped in only when complete, so a failure or Ctrl-C
leaves the previous output exactly as it was. The build id is a short hash of the inputs (it is
known before packing, so it can go into the overlay). A rebuild whose build id matches the tree
already in place (and whose files still match its manifest) writes nothing; otherwise unchanged
files are hard-linked from the previous tree and only what changed is written anew. Whether a
file still matches is answered from ``fsutil.KnownDigests`` (``paths.digests_file``) when the
file is the very one this tool wrote or read last time; otherwise it is read again.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from steps import __version__
from steps.answers import Answers, build_digest, resolve_path
from steps.artifacts import AppBundle, BuildResult, ExtensionSet, ReleaseArtifact
from steps.base import StepContext
from steps.errors import AnswersError, ChecksumError, FirecoreError, RemasterError, StepError
from steps.events import Event, LogLine, Planned, Progress, Result, Unit
from steps.fetch.download import evict
from steps.fsutil import (
    KnownDigests,
    atomic_write,
    clean_staging,
    disk_error,
    hold_lock,
    md5_file,
    overlaps,
    replacing_dir,
    settle,
    sha256_file,
)
from steps.paths import cache_dir, digests_file
from steps.picore import bootcodes, image, overlay
from steps.picore.appbundle import bundle_digest, render_env
from steps.picore.configtxt import (
    MAX_LINE,
    NETBOOT_READ_LIMIT,
    BoardBoot,
    Cmdline,
    ConfigTxt,
)
from steps.picore.rootfs import BOOTLOCAL, BaseRootfs, read_base
from steps.relay import relay
from steps.wire.pimodels import PI_MODELS, size_findings

NAME = "remaster"
MANIFEST = "manifest.json"
OVERLAY = "overlay.gz"
PROFILE_GZ = "pi.gz"
PROFILES_DIR = "profiles"
MANIFEST_FORMAT = 1
#: Flags every netboot cmdline gets (docs/remaster.md "Boot codes"): no RTC wait, no mydata restore,
#: and ``base``: piCore's tce-setup loads /tmp/builtin (our extensions) *before* it checks
#: ``base``, which then only skips scanning disks for a tce/ directory (Core-scripts picore
#: usr/bin/tce-setup) — so a USB stick with a tce/ folder cannot add extensions to a netbooted Pi.
NETBOOT_FLAGS = ("nortc", "norestore", "base")
#: Bumped when the tree's layout changes for the same inputs (2: base, pi.gz, padded archives).
LAYOUT = 2
_KEEP_OVERLAYS = 4
_CHUNK = 1 << 20
#: How long a second run on the same build.output waits for the first before failing.
_LOCK_WAIT = 10.0


def tool_version() -> str:
    """firecore-wizard's version (recorded in manifests; part of the build id)."""
    return __version__


def source_date(release: ReleaseArtifact) -> int:
    """The fixed mtime of every overlay entry: SOURCE_DATE_EPOCH, else the release date, else 0."""
    env = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if env:
        try:
            return int(env)
        except ValueError:
            raise RemasterError(
                f"SOURCE_DATE_EPOCH={env!r} is not a whole number of seconds",
                fix="unset it or set it to e.g. `date +%s`",
            ) from None
    if release.ref.date:
        try:
            when = datetime.fromisoformat(release.ref.date.replace("Z", "+00:00"))
        except ValueError:
            return 0
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0, int(when.timestamp()))
    return 0


def app_digest(bundle: AppBundle) -> str:
    """The bundle's digest (``steps.app.bundle_digest``, computed here for a bundle without)."""
    if bundle.digest:
        return bundle.digest
    try:
        return bundle_digest(bundle.files)
    except OSError as exc:
        raise RemasterError(
            f"app file {exc.filename} does not exist or cannot be read ({exc.strerror})",
            fix="check app.path and run the build again",
        ) from None


def build_inputs(
    answers: Answers, release: ReleaseArtifact, extset: ExtensionSet, bundle: AppBundle, mtime: int
) -> dict[str, Any]:
    """Everything the boot tree's bytes depend on (not where it is written): the build id's source.

    Mirrors, output and cache paths, network and deploy targets are left out on purpose: the
    same release bytes from another mirror build the same tree.
    """
    packages = []
    for pkg in extset.packages:
        md5 = pkg.md5
        if not md5 and pkg.name in extset.files:
            md5 = md5_file(Path(extset.files[pkg.name]))
        packages.append([pkg.name, md5 or "", pkg.dep_text])
    return {
        "tool": tool_version(),
        "format": MANIFEST_FORMAT,
        "layout": LAYOUT,
        "release": {"sha256": release.sha256, "file": release.ref.filename},
        "boards": list(answers.release.boards),
        "extensions": {
            "mode": answers.extensions.mode,
            "requested": list(extset.requested),
            "packages": packages,
        },
        "app": {
            "digest": app_digest(bundle),
            "bootlocal": bundle.bootlocal,
            "wheels": dict(sorted(bundle.wheels.items())),
        },
        "hostname": answers.app.hostname,
        "ssh_authorized_keys": list(answers.app.ssh_authorized_keys),
        "cmdline_extra": list(answers.build.cmdline_extra),
        "profiles": {k: v.model_dump(mode="json") for k, v in answers.deploy.profiles.items()},
        "mtime": mtime,
        "demo": release.demo,
    }


def build_id_of(inputs: Mapping[str, Any]) -> str:
    """12 hex digits of the sha256 of the canonical inputs."""
    canon = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:12]


@dataclass
class _Phase:
    """Emits Progress events for one phase, at most every 1 % (keeps the event stream small)."""

    phase: str
    total: float | None
    unit: Unit = "bytes"
    message: str = ""

    def __post_init__(self) -> None:
        self.events: list[Progress] = []
        self._last = -1.0

    def __call__(self, done: float) -> None:
        step = (self.total or 0) / 100
        if self.total is None or done >= (self.total or 0) or done - self._last >= step:
            self._last = done
            self.events.append(
                Progress(NAME, self.phase, done, self.total, self.unit, self.message)
            )

    def drain(self) -> list[Progress]:
        out, self.events = self.events, []
        return out


class RemasterStep:
    """Build ``build.output`` from the release, the extension closure and the app bundle."""

    name = NAME
    title = "Remaster"

    def run(self, ctx: StepContext) -> Iterator[Event]:
        """Run the phases download … write; see the module docstring.

        ``build.output`` is checked first (``check_output``), then locked for the whole run
        (a lock file in the cache): a second run on the same output waits, then fails
        clearly; staging trees a killed run left beside it are removed under the lock.
        """
        out = resolve_path(ctx.answers.build.output)
        self._digests = KnownDigests(digests_file(cache_dir(ctx.answers, ctx.cache_dir)))
        try:
            check_output(ctx.answers, out, cache_dir(ctx.answers, ctx.cache_dir))
            if ctx.dry_run:
                yield from self._run(ctx)
                return
            out.parent.mkdir(parents=True, exist_ok=True)

            def busy(holder: str) -> StepError:
                return StepError(
                    f"another build (pid {holder}) is writing {out}",
                    fix="wait for it to finish, or give this run another build.output",
                )

            # the lock lives in the cache (ours), keyed by the output's real path: nothing is
            # left beside the user's output
            locks = cache_dir(ctx.answers, ctx.cache_dir) / "locks"
            locks.mkdir(parents=True, exist_ok=True)
            key = hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:24]
            with hold_lock(locks / f"output-{key}.lock", wait=_LOCK_WAIT, busy=busy,
                           cancel=ctx.cancel):  # fmt: skip
                for left in clean_staging(out):
                    yield LogLine(NAME, f"removed {left} (left by an interrupted build)")
                yield from self._run(ctx)
        except FirecoreError:
            raise
        except OSError as exc:
            where = exc.filename2 or exc.filename or resolve_path(ctx.answers.build.output)
            raise disk_error(where, exc) from None
        finally:
            self._digests.save()

    # ------------------------------------------------------------------ the phases

    def _run(self, ctx: StepContext) -> Iterator[Event]:
        answers = ctx.answers
        release = ctx.results.need(ReleaseArtifact, by="remaster")
        extset = ctx.results.need(ExtensionSet, by="remaster")
        bundle = ctx.results.need(AppBundle, by="remaster")
        out = resolve_path(answers.build.output)
        cache_root = cache_dir(answers, ctx.cache_dir)
        work = cache_root / "remaster"
        mtime = source_date(release)
        if release.demo:
            yield LogLine(
                NAME, "DEMO build: made from the demo mirror, it will not boot a Pi", "warning"
            )

        for warning in _check_answers(answers):
            yield LogLine(NAME, warning, "warning")
        inputs = build_inputs(answers, release, extset, bundle, mtime)
        build_id = build_id_of(inputs)
        yield LogLine(NAME, f"build id {build_id}")

        # ---- nothing changed? then write nothing at all
        if not ctx.dry_run:
            same = yield from self._unchanged(out, build_id, answers)
            if same is not None:
                card = yield from self._sd_image(ctx, out)
                yield from self._finish(ctx, same, changed=False, sd_image=card)
                return

        # ---- download (the release step fetched it; the cache may have been cleaned since)
        rfile = Path(release.file)
        if not rfile.is_file():
            if ctx.dry_run:
                yield from self._plan_without_release(out, answers, build_id)
                return
            raise RemasterError(
                f"the release file {rfile} is no longer in the download cache",
                fix="run the whole plan again (the release step downloads it)",
            )
        size = rfile.stat().st_size
        yield Progress(NAME, "download", size, size, "bytes", f"{rfile.name} (in cache)")

        # ---- verify: the cached file is the one the release step verified
        ph = _Phase("verify", size, message=rfile.name)
        digest = self._digests.sha256(rfile, progress=ph)
        yield from ph.drain()
        if digest != release.sha256:
            removed = evict(rfile, cache_root)
            raise RemasterError(
                f"{rfile} changed since the release step verified it (sha256 {digest[:12]}…, "
                f"expected {release.sha256[:12]}…)",
                fix="run again: the damaged copy was removed from the cache and is downloaded "
                "afresh"
                if removed
                else f"delete {rfile} and run again to download it afresh",
            )
        ctx.check_cancel()

        # ---- extract (cached by image.py: a rebuild extracts nothing)
        tree = yield from image.unpack_boot(NAME, rfile, cache_root, ctx.cancel, sha256=digest)
        boot = Path(tree.path)
        ctx.check_cancel()
        config_name = _find(boot, "config.txt")
        config = ConfigTxt.from_bytes(
            (boot / config_name).read_bytes(), source=f"{rfile.name}:{config_name}"
        )
        overlaid = config.with_initramfs(OVERLAY)  # no initramfs line → RemasterError
        for warning in _check_config(config_name, config, overlaid):
            yield LogLine(NAME, warning, "warning")
        boots: dict[str, BoardBoot] = {b: config.boot_for(b) for b in answers.release.boards}
        cmdline_name = _find(boot, next(iter(boots.values())).cmdline)
        cmdline = Cmdline.from_bytes((boot / cmdline_name).read_bytes())
        archives: list[str] = []
        for b in boots.values():
            archives.extend(f for f in b.initramfs if f not in archives)
        base = read_base([boot / _find(boot, f) for f in archives])

        boot_files = _list_files(boot)
        out_files: dict[str, _Out] = {}
        sums = tree.sums or _boot_sums(work, release.sha256, boot, boot_files)
        for rel in boot_files:
            out_files[rel] = _Out(source=boot / rel, sha256=sums[rel][1], size=sums[rel][0])
        netboot = cmdline.with_flags(
            *NETBOOT_FLAGS, f"host={answers.app.hostname}", *answers.build.cmdline_extra
        )
        out_files[config_name] = _Out.of(overlaid.to_bytes())
        out_files[cmdline_name] = _Out.of(netboot.to_bytes())

        if ctx.dry_run:
            yield from self._plan(out, out_files, answers, config_name, cmdline_name, build_id)
            return

        # ---- overlay: cached by a hash of its inputs
        key = hashlib.sha256(json.dumps([inputs, archives], sort_keys=True).encode()).hexdigest()
        cached = work / "overlays" / f"{key[:32]}.gz"
        info = {
            "build_id": build_id,
            "release": release.ref.version,
            "arch": release.ref.arch,
            "flavour": release.ref.flavour,
            "boards": list(answers.release.boards),
            "demo": release.demo,
            "built": mtime,
        }
        drops_mnt = "noembed" in netboot.flags
        overlay_sum = _cached_overlay(cached)
        if overlay_sum is not None:
            yield LogLine(NAME, f"overlay unchanged: reusing {cached.name} from the cache")
            os.utime(cached)  # most recently used: kept by the pruning below
        else:
            if cached.exists():
                yield LogLine(
                    NAME, f"cached {cached.name} failed its check: removed, built again", "warning"
                )
            _drop_overlay(cached)
            try:
                yield from self._build_overlay(
                    ctx, base, extset, bundle, info, cached, mtime, work, drops_mnt
                )
            except ChecksumError as exc:
                if exc.source and evict(Path(exc.source), cache_root):
                    exc.fix = (
                        f"run again: the damaged copy of {exc.name} was removed from the cache "
                        "and is downloaded afresh"
                    )
                raise
            overlay_sum = (sha256_file(cached), cached.stat().st_size)
            atomic_write(_overlay_sum_file(cached), json.dumps(list(overlay_sum)))
        out_files[OVERLAY] = _Out(source=cached, sha256=overlay_sum[0], size=overlay_sum[1])

        # ---- per-device profiles
        for pname, profile in sorted(answers.deploy.profiles.items()):
            host = profile.hostname or answers.app.hostname
            env = {"FIRECORE_PROFILE": pname, "FIRECORE_HOSTNAME": host, **profile.env}
            pov = overlay.Overlay(base, drops_mnt=drops_mnt)
            pov.add_dir(overlay.FIRECORE_DIR, 0o755, origin=f"profile {pname}")
            pov.add_file(
                f"{overlay.FIRECORE_DIR}/profile.env",
                0o644,
                data=render_env(env),
                origin=f"profile {pname}",
            )
            pgz = overlay.packed(pov, mtime)
            pconfig = overlaid.with_initramfs(PROFILE_GZ).with_lines(profile.config_txt)
            prefix = f"{PROFILES_DIR}/{pname}"
            for warning in _check_config(f"{prefix}/{config_name}", config, pconfig):
                yield LogLine(NAME, warning, "warning")
            pcmd = netboot.with_flags(f"host={host}", *profile.cmdline_extra)
            out_files[f"{prefix}/{config_name}"] = _Out.of(pconfig.to_bytes())
            out_files[f"{prefix}/{cmdline_name}"] = _Out.of(pcmd.to_bytes())
            out_files[f"{prefix}/{PROFILE_GZ}"] = _Out.of(pgz)

        for warning in _check_served(answers, boots, out_files, boot_files):
            yield LogLine(NAME, warning, "warning")
        manifest = self._manifest(
            answers, release, extset, bundle, inputs, build_id, out_files, boots
        )
        previous = (_read_manifest(out) or {}).get("sd_image") or {}
        try:
            yield from self._write(ctx, out, out_files, _list_dirs(boot), manifest)
        except _Damaged as exc:
            if exc.path == cached:
                _drop_overlay(cached)
            else:
                image.evict(tree)
            raise RemasterError(
                f"the cached {exc.path.name} changed after it was checked ({exc.path})",
                fix="run again: the damaged copy was removed from the cache",
            ) from None
        _prune(work / "overlays", _KEEP_OVERLAYS)
        card = yield from self._sd_image(ctx, out, str(previous.get("file", "")))
        yield from self._finish(
            ctx,
            _Done(out, build_id, out_files, release.demo, tuple(sorted(answers.deploy.profiles))),
            changed=True,
            sd_image=card,
        )

    # ------------------------------------------------------------------ overlay

    def _build_overlay(
        self,
        ctx: StepContext,
        base: BaseRootfs,
        extset: ExtensionSet,
        bundle: AppBundle,
        info: Mapping[str, Any],
        dest: Path,
        mtime: int,
        work: Path,
        drops_mnt: bool,
    ) -> Iterator[Event]:
        answers = ctx.answers
        ov = overlay.Overlay(base, drops_mnt=drops_mnt)
        pre: list[str] = []
        scratch: Path | None = None
        try:
            total_tcz = sum(Path(p).stat().st_size for p in extset.files.values())
            yield Progress(
                NAME,
                "extensions",
                0,
                total_tcz,
                "bytes",
                f"{len(extset.packages)} extensions ({answers.extensions.mode})",
            )
            if answers.extensions.mode == "extracted":
                work.mkdir(parents=True, exist_ok=True)
                scratch = Path(tempfile.mkdtemp(prefix="unsquash-", dir=work))
                names = overlay.add_extracted(ov, extset, scratch, ctx.cancel)
                ov.add_dir(overlay.FIRECORE_DIR, 0o755, origin="firecore")
                ov.add_file(
                    overlay.TCE_RUNNER, 0o755, data=overlay.tce_runner(names), origin="firecore"
                )
                pre.append(f"/{overlay.TCE_RUNNER}")
            else:
                overlay.add_builtin(ov, extset)
            yield Progress(NAME, "extensions", total_tcz, total_tcz, "bytes")
            ctx.check_cancel()

            app_files = [f for f in bundle.files if "site-packages/" not in f.path]
            wheel_files = [f for f in bundle.files if "site-packages/" in f.path]
            roots = [cache_dir(answers, ctx.cache_dir)]
            if answers.app.path:
                roots.append(resolve_path(answers.app.path))
            for phase, files in (("app", app_files), ("wheels", wheel_files)):
                part = AppBundle(tuple(files), "", bundle.python, bundle.platform)
                overlay.add_app(ov, part, roots)
                nbytes = sum(_size(f.source, f.data) for f in files)
                yield Progress(NAME, phase, nbytes, nbytes, "bytes", f"{len(files)} files")
                ctx.check_cancel()

            perm, uid, gid = overlay.bootlocal_meta(base)
            ov.add_dir("opt", 0o755, origin="bootlocal.sh")
            ov.add_file(
                BOOTLOCAL,
                perm,
                uid,
                gid,
                data=overlay.bootlocal(base, bundle.bootlocal, pre),
                origin="bootlocal.sh",
            )
            overlay.add_ssh_keys(ov, answers.app.ssh_authorized_keys)
            ov.add_dir(overlay.FIRECORE_DIR, 0o755, origin="firecore")
            ov.add_file(
                overlay.BUILD_JSON, 0o644, data=overlay.json_bytes(info), origin="build.json"
            )

            ph = _Phase("pack", ov.payload_bytes(), message=f"{len(ov)} entries")
            packer = _Packer(ov, dest, mtime, ctx, ph)
            yield from packer.run()
        finally:
            if scratch is not None:
                overlay.remove_tree(scratch)

    # ------------------------------------------------------------------ output

    def _write(
        self,
        ctx: StepContext,
        out: Path,
        files: Mapping[str, _Out],
        dirs: list[str],
        manifest: Mapping[str, Any],
    ) -> Iterator[Event]:
        previous = _read_manifest(out)
        prev_files: Mapping[str, Any] = previous.get("files", {}) if previous else {}
        total = sum(o.size for o in files.values())
        ph = _Phase("write", total, message=str(out))
        done = 0
        linked = 0
        try:
            with replacing_dir(out) as stage:
                for rel in sorted(files):
                    ctx.check_cancel()
                    o = files[rel]
                    dest = stage / rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    old = prev_files.get(rel)
                    try:
                        if (
                            old
                            and old.get("sha256") == o.sha256
                            and self._same_file(out / rel, o.size, o.sha256)
                        ):
                            os.link(out / rel, dest)  # unchanged: keep the very same file
                            linked += 1
                        elif o.source is not None:
                            _copy_checked(o.source, dest, o.sha256)
                        else:
                            dest.write_bytes(o.data)
                    except OSError as exc:
                        raise disk_error(out / rel, exc) from None
                    done += o.size
                    ph(done)
                    yield from ph.drain()
                for d in dirs:
                    (stage / d).mkdir(parents=True, exist_ok=True)
                ctx.check_cancel()
                (stage / MANIFEST).write_bytes(overlay.json_bytes(manifest))
                settle(time.time_ns())  # the digests recorded below are trusted by the next run
                os.chmod(stage, 0o755)
        except OSError as exc:
            raise disk_error(exc.filename or out, exc) from None
        self._digests.forget_under(out)
        for rel, o in files.items():
            self._digests.record(out / rel, o.sha256)
        yield LogLine(
            NAME,
            f"wrote {len(files) - linked} files, kept {linked} unchanged (hard links), in {out}",
        )

    def _same_file(self, path: Path, size: int, sha256: str) -> bool:
        try:
            st = path.lstat()
        except OSError:
            return False
        if not stat.S_ISREG(st.st_mode) or st.st_size != size:
            return False
        return self._digests.sha256(path) == sha256

    def _unchanged(
        self, out: Path, build_id: str, answers: Answers
    ) -> Generator[Event, None, _Done | None]:
        """The finished tree if ``out`` already holds build ``build_id`` intact, else None."""
        prev = _read_manifest(out)
        if not prev or prev.get("build_id") != build_id or prev.get("tool") != tool_version():
            return None
        files: Mapping[str, Any] = prev.get("files", {})
        total = sum(int(v.get("size", 0)) for v in files.values())
        ph = _Phase("verify", total, message=f"existing tree {out}")
        done = 0
        for rel, meta in sorted(files.items()):
            if not self._same_file(out / rel, int(meta.get("size", -1)), str(meta.get("sha256"))):
                yield LogLine(NAME, f"{out / rel} differs from its manifest: rebuilding")
                return None
            done += int(meta.get("size", 0))
            ph(done)
            yield from ph.drain()
        digest = build_digest(answers)
        if prev.get("answers_digest") != digest:
            # only answers outside the build inputs changed (e.g. the app token file's path)
            prev["answers_digest"] = digest
            atomic_write(out / MANIFEST, overlay.json_bytes(prev))
        yield LogLine(NAME, f"{out} already holds build {build_id}: nothing to do")
        return _Done(
            out,
            build_id,
            {k: _Out(None, b"", str(v["sha256"]), int(v["size"])) for k, v in files.items()},
            bool(prev.get("demo")),
            tuple(prev.get("profiles", ())),
        )

    def _sd_image(
        self, ctx: StepContext, out: Path, previous: str = ""
    ) -> Generator[Event, None, Path | None]:
        """``build.sd_image``: the tree as an SD-card image beside it (``sdcard.tree_image``)."""
        if not ctx.answers.build.sd_image:
            return None
        from steps.picore import sdcard  # card images only when asked for

        card = yield from sdcard.tree_image(NAME, out, previous=previous, cancel=ctx.cancel)
        return card

    def _finish(
        self, ctx: StepContext, done: _Done, *, changed: bool, sd_image: Path | None = None
    ) -> Iterator[Event]:
        result = BuildResult(
            output=done.out,
            manifest=done.out / MANIFEST,
            build_id=done.build_id,
            files=len(done.files),
            bytes=sum(o.size for o in done.files.values()),
            changed=changed,
            profiles=done.profiles,
            demo=done.demo,
            sd_image=sd_image,
        )
        ctx.results.put(result)
        what = "built" if changed else "unchanged"
        demo = " — DEMO build (will not boot a Pi)" if done.demo else ""
        summary = (
            f"boot tree {what}: {done.out} ({result.files} files, "
            f"{result.bytes / 1e6:.1f} MB), build {done.build_id}{demo}"
        )
        if sd_image is not None:
            summary += f"; SD image {sd_image}"
        yield Result(NAME, summary, result.to_data())

    def _manifest(
        self,
        answers: Answers,
        release: ReleaseArtifact,
        extset: ExtensionSet,
        bundle: AppBundle,
        inputs: Mapping[str, Any],
        build_id: str,
        files: Mapping[str, _Out],
        boots: Mapping[str, BoardBoot],
    ) -> dict[str, Any]:
        md5s = {p[0]: p[1] for p in inputs["extensions"]["packages"]}
        return {
            "format": MANIFEST_FORMAT,
            "tool": tool_version(),
            "build_id": build_id,
            "demo": release.demo,
            "built": inputs["mtime"],
            "answers_digest": build_digest(answers),
            "release": {
                "version": release.ref.version,
                "arch": release.ref.arch,
                "flavour": release.ref.flavour,
                "file": release.ref.filename,
                "url": release.url,
                "sha256": release.sha256,
                "image": release.image_name,
                "image_md5": release.image_md5,
            },
            "boards": {
                b: {
                    "kernel": v.kernel,
                    "kernel_release": v.kernel_release,
                    "initramfs": [*v.initramfs, OVERLAY],
                }
                for b, v in boots.items()
            },
            "extensions": {
                "mode": answers.extensions.mode,
                "requested": list(extset.requested),
                "packages": [
                    {"name": p.name, "md5": md5s.get(p.name, ""), "size": p.size}
                    for p in extset.packages
                ],
            },
            "app": {
                "digest": inputs["app"]["digest"],
                "python": bundle.python,
                "platform": bundle.platform,
                "wheels": dict(sorted(bundle.wheels.items())),
            },
            "profiles": sorted(answers.deploy.profiles),
            "files": {k: {"sha256": files[k].sha256, "size": files[k].size} for k in sorted(files)},
        }

    # ------------------------------------------------------------------ dry run

    def _plan(
        self,
        out: Path,
        files: Mapping[str, _Out],
        answers: Answers,
        config_name: str,
        cmdline_name: str,
        build_id: str,
    ) -> Iterator[Event]:
        for rel in sorted(files):
            detail = "boot partition file, byte-identical"
            if rel == config_name:
                detail = f"{OVERLAY} appended to every initramfs line"
            elif rel == cmdline_name:
                detail = "netboot flags added"
            yield Planned(NAME, "write", str(out / rel), detail)
        yield from self._plan_extra(out, answers, config_name, cmdline_name, build_id)

    def _plan_without_release(self, out: Path, answers: Answers, build_id: str) -> Iterator[Event]:
        yield LogLine(NAME, "the release is not downloaded yet (dry run): boot files not listed")
        yield Planned(NAME, "write", str(out / "*"), "every boot partition file, byte-identical")
        yield Planned(
            NAME, "write", str(out / "config.txt"), f"{OVERLAY} appended to every initramfs line"
        )
        yield Planned(NAME, "write", str(out / "cmdline.txt"), "netboot flags added")
        yield from self._plan_extra(out, answers, "config.txt", "cmdline.txt", build_id)

    def _plan_extra(
        self, out: Path, answers: Answers, config_name: str, cmdline_name: str, build_id: str
    ) -> Iterator[Event]:
        yield Planned(
            NAME,
            "write",
            str(out / OVERLAY),
            f"extensions ({answers.extensions.mode}), app, bootlocal.sh, build.json",
        )
        for pname in sorted(answers.deploy.profiles):
            for rel in (config_name, cmdline_name, PROFILE_GZ):
                yield Planned(
                    NAME, "write", str(out / PROFILES_DIR / pname / rel), f"profile {pname}"
                )
        yield Planned(NAME, "write", str(out / MANIFEST), "sha256 and size of every file")
        if answers.build.sd_image:
            from steps.picore import sdcard

            yield Planned(
                NAME,
                "write",
                str(out.parent / sdcard.image_name(build_id)),
                "SD-card image: MBR + FAT32 partition holding the boot files",
            )


# ---------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class _Out:
    """One output file: copied from ``source`` or written from ``data``."""

    source: Path | None = None
    data: bytes = b""
    sha256: str = ""
    size: int = 0

    @classmethod
    def of(cls, data: bytes) -> _Out:
        return cls(None, data, hashlib.sha256(data).hexdigest(), len(data))


@dataclass(frozen=True)
class _Done:
    out: Path
    build_id: str
    files: Mapping[str, _Out]
    demo: bool
    profiles: tuple[str, ...]


class _Packer:
    """Packs the overlay in a worker thread so Progress events flow while gzip runs."""

    def __init__(
        self, ov: overlay.Overlay, dest: Path, mtime: int, ctx: StepContext, phase: _Phase
    ) -> None:
        self.ov, self.dest, self.mtime, self.ctx, self.phase = ov, dest, mtime, ctx, phase

    def run(self) -> Iterator[Event]:
        def pack(emit: Callable[[int], None]) -> None:
            overlay.write_gz(self.ov, self.dest, self.mtime, self.ctx.cancel, emit)

        try:
            for done in relay(pack, "remaster-pack"):
                self.phase(done)
                yield from self.phase.drain()
        except OSError as exc:
            raise disk_error(exc.filename or self.dest, exc) from None
        self.phase(self.phase.total or 0)
        yield from self.phase.drain()
        size = self.dest.stat().st_size
        yield LogLine(NAME, f"{OVERLAY}: {len(self.ov)} entries, {size / 1e6:.1f} MB")


def _check_answers(answers: Answers) -> list[str]:
    """Kernel flags and profile config.txt lines the Pi would misread (warnings; errors raise).

    Raises:
        AnswersError: a ``lst=`` flag (``steps.picore.bootcodes``) or a profile config.txt line
            over the firmware's 98 characters.
    """
    warnings = bootcodes.check_flags(answers.build.cmdline_extra, "build.cmdline_extra")
    for name, profile in sorted(answers.deploy.profiles.items()):
        key = f"deploy.profiles.{name}"
        warnings += bootcodes.check_flags(profile.cmdline_extra, f"{key}.cmdline_extra")
        for i, line in enumerate(profile.config_txt):
            length = len(line.encode())
            if length > MAX_LINE:
                raise AnswersError(
                    f"{key}.config_txt[{i}]",
                    f"{line[:40]!r}… is {length} characters; the Pi's firmware ignores every "
                    f"character of a config.txt line past the {MAX_LINE}th",
                    fix="shorten the line (file names, or split the settings)",
                )
    return warnings


def _check_config(name: str, original: ConfigTxt, served: ConfigTxt) -> list[str]:
    """A served config.txt against the firmware's limits (``steps.picore.configtxt``).

    A line we wrote over 98 characters is an error (its end, ``followkernel`` on an initramfs
    line, would be cut); a release's own over-long line and content past byte 4096 are warnings.

    Raises:
        RemasterError: a line this build wrote is longer than the firmware reads.
    """
    ours = set(served.changed_from(original))
    warnings: list[str] = []
    for i in served.overlong():
        text = served.lines[i].text
        length = served.line_length(i)
        if i in ours:
            raise RemasterError(
                f"{name} line {i + 1} would be {length} characters: {text!r}; the Pi's firmware "
                f"ignores every character past the {MAX_LINE}th, which would cut this line",
                fix="the release's initramfs file names leave no room for overlay.gz"
                + (f" and {PROFILE_GZ} (a device profile)" if PROFILE_GZ in text else "")
                + "; remove the device profiles, or report the release's line",
            )
        warnings.append(
            f"{name} line {i + 1} of the release is {length} characters; the firmware ignores "
            f"what lies past character {MAX_LINE}: {text[MAX_LINE:]!r}"
        )
    late = served.past()
    if late:
        size = len(served.to_bytes())
        first, last = served.lines[late[0]].stripped, served.lines[late[-1]].stripped
        span = f"{first!r}" if len(late) == 1 else f"{first!r} … {last!r}"
        warnings.append(
            f"{name} is {size} bytes: a netbooted Pi 4 ignores what lies past byte "
            f"{NETBOOT_READ_LIMIT} (raspberrypi/firmware #1012, #1575), here {len(late)} "
            f"line(s) from line {late[0] + 1} on: {span}"
        )
    return warnings


def _check_served(
    answers: Answers,
    boots: Mapping[str, BoardBoot],
    files: Mapping[str, _Out],
    boot_files: list[str],
) -> list[str]:
    """What the boards' boot code may fail to read in the finished tree (warnings).

    Files reaching the TFTP block-counter limit of the model reading them
    (``steps.wire.pimodels``); on a Pi 5: the D0 device tree, and initramfs files whose sizes are
    not multiples of 4 before the last (bootloaders before 2023-11-20 fail on them,
    raspberrypi/firmware #1843; ours are padded).
    """
    sizes = {rel: o.size for rel, o in files.items()}
    reads: dict[str, list[str]] = {
        board: [b.kernel, *b.initramfs, OVERLAY] for board, b in boots.items()
    }
    for pname in answers.deploy.profiles:
        for board in reads:
            reads[board].append(f"{PROFILES_DIR}/{pname}/{PROFILE_GZ}")
    warnings = [f.message() for f in size_findings(sizes, reads)]
    pi5 = boots.get("pi5")
    if pi5 is not None:
        dtb = PI_MODELS["pi5"].dtb("d0")
        if not any(f.lower() == dtb for f in boot_files):
            warnings.append(
                f"the release has no {dtb}: Pi 5 boards with the D0 stepping of the BCM2712 "
                "(2 GB models, newer 4/8 GB boards, Pi 500) load that device tree"
            )
        odd = [f for f in pi5.initramfs if sizes.get(f, 0) % 4]
        if odd:
            warnings.append(
                f"{', '.join(odd)} (Pi 5 initramfs) {'is' if len(odd) == 1 else 'are'} not a "
                "multiple of 4 bytes long: Pi 5 bootloaders before 2023-11-20 fail with "
                '"BOOT ERROR: code 45" (raspberrypi/firmware #1843); update the EEPROM'
            )
    return warnings


def is_build(out: Path) -> bool:
    """True when ``out`` holds a manifest.json written by the remaster step."""
    manifest = _read_manifest(out)
    return bool(
        manifest
        and isinstance(manifest.get("format"), int)
        and isinstance(manifest.get("build_id"), str)
        and isinstance(manifest.get("files"), dict)
    )


def check_output(answers: Answers, out: Path, cache_root: Path) -> None:
    """Refuse a ``build.output`` whose replacement would lose something.

    The output is replaced as a whole on every build, so it must be new, empty, or a previous
    build (its manifest says so); and it must not overlap the cache or the TFTP root (a build
    into either would delete them, or serve half a cache).

    Raises:
        AnswersError: naming build.output (or build.cache) and why.
    """
    from steps.host.tftproot import tftp_root

    tftp = tftp_root(answers)
    fix = "give the boot tree, the cache and the TFTP root separate directories"
    if overlaps(out, cache_root):
        raise AnswersError("build.output", f"{out} overlaps the cache {cache_root}", fix=fix)
    if overlaps(out, tftp):
        raise AnswersError("build.output", f"{out} overlaps network.tftp_root {tftp}", fix=fix)
    if overlaps(cache_root, tftp):
        raise AnswersError("build.cache", f"{cache_root} overlaps network.tftp_root", fix=fix)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise AnswersError(
            "build.output", f"{out} is not a directory", fix="name a new or empty directory"
        )
    try:
        empty = not out.exists() or next(out.iterdir(), None) is None
    except OSError as exc:
        raise disk_error(out, exc) from None
    if not empty and not is_build(out):
        raise AnswersError(
            "build.output",
            f"{out} is not empty and holds no firecore build (no manifest.json of one); "
            "a build replaces the whole directory",
            fix="name a new or empty directory (a previous build there is replaced)",
        )


def _find(root: Path, name: str) -> str:
    """``name`` as it is spelled on the (case-insensitive) FAT partition."""
    if (root / name).is_file():
        return name
    lower = name.lower()
    parent = Path(name).parent
    folder = root / parent
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.name.lower() == Path(lower).name and entry.is_file():
                return str(parent / entry.name) if str(parent) != "." else entry.name
    raise RemasterError(
        f"{name} is named by config.txt but is not on the release's boot partition",
        fix="the release image is incomplete; download it again or pick another release",
    )


def _list_files(root: Path) -> list[str]:
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            full = Path(dirpath) / name
            if full.is_file() and not full.is_symlink():
                out.append(full.relative_to(root).as_posix())
    return out


def _list_dirs(root: Path) -> list[str]:
    """Every directory below ``root`` (so empty ones, e.g. ``overlays/``, are kept too)."""
    out: list[str] = []
    for dirpath, dirnames, _ in os.walk(root):
        dirnames.sort()
        out.extend((Path(dirpath) / d).relative_to(root).as_posix() for d in dirnames)
    return out


def _size(source: Path | None, data: bytes | None) -> int:
    if source is not None:
        try:
            return source.stat().st_size
        except OSError:
            return 0
    return len(data or b"")


def _read_manifest(out: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _boot_sums(work: Path, release_sha: str, boot: Path, files: list[str]) -> dict[str, Any]:
    """(size, sha256) per boot file, cached per release (the extraction is immutable)."""
    path = work / "bootsums" / f"{release_sha}.json"
    try:
        cached = json.loads(path.read_text())
        if isinstance(cached, dict) and sorted(cached) == sorted(files):
            return cached
    except (OSError, ValueError):
        pass
    sums = {rel: [(boot / rel).stat().st_size, sha256_file(boot / rel)] for rel in files}
    atomic_write(path, json.dumps(sums, sort_keys=True))
    return sums


def _prune(folder: Path, keep: int) -> None:
    """Keep the ``keep`` most recently used cached overlays."""
    try:
        items = sorted(folder.glob("*.gz"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    for old in items[keep:]:
        _drop_overlay(old)


class _Damaged(Exception):
    """A cached source's bytes are not those its sum says (found while copying it)."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path


def _copy_checked(src: Path, dest: Path, sha256: str) -> None:
    """Copy ``src`` to ``dest`` (0644), hashing on the way; _Damaged when it is not ``sha256``.

    The manifest records ``sha256``: a cache file damaged since it was summed must not be
    published under a sum it does not have (the tree would fail its own manifest forever).
    """
    h = hashlib.sha256()
    with src.open("rb") as fin, dest.open("xb") as fout:
        while chunk := fin.read(_CHUNK):
            h.update(chunk)
            fout.write(chunk)
    os.chmod(dest, 0o644)
    if h.hexdigest() != sha256:
        raise _Damaged(src)


def _overlay_sum_file(cached: Path) -> Path:
    return cached.with_name(cached.name + ".sum.json")


def _cached_overlay(cached: Path) -> tuple[str, int] | None:
    """(sha256, size) of a cached overlay that still matches what was recorded when it was
    packed; None when it is missing, unrecorded or damaged (then it is built again)."""
    try:
        digest, size = json.loads(_overlay_sum_file(cached).read_text())
        if cached.stat().st_size != size or sha256_file(cached) != digest:
            return None
    except (OSError, ValueError, TypeError):
        return None
    return str(digest), int(size)


def _drop_overlay(cached: Path) -> None:
    cached.unlink(missing_ok=True)
    _overlay_sum_file(cached).unlink(missing_ok=True)
