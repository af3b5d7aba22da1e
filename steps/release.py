"""The Release step: find the chosen piCore release, download and verify it, read its kernels.

It resolves ``release.version``/``release.arch`` on the mirrors (cached after the first run; the
offline catalog when none answers), downloads the release file into the content-addressed cache
(checked against ``<file>.md5.txt`` when the mirror publishes one, and always against the image's
own ``<img>.md5.txt`` inside the zip / the gzip CRC), extracts the boot partition once
(``steps.picore.image.unpack_boot``) and reads each target board's kernel release from
``config.txt``, and the glibc version and library names of the base archives those boards load
(``steps.picore.syslibs``: the app step's wheels are checked against them).
The result is a ``ReleaseArtifact`` for the extensions and remaster steps.
The offline catalog and the archive checks of a fresh download are imported where they are used:
a rerun whose release file is cached needs neither.

In a dry run the release file is still downloaded into the cache (the cache is not an output):
the kernel releases that ``KERNEL`` in .dep files expands to can only be read from the image.
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from steps.answers import BOARDS
from steps.artifacts import ReleaseArtifact
from steps.base import StepContext
from steps.errors import AnswersError, ChecksumError, DownloadError, RemasterError
from steps.events import Event, LogLine, Planned, Result
from steps.fetch.download import Downloader, Want, parse_md5
from steps.fetch.mirror import Resolved, resolve_release
from steps.paths import cache_dir
from steps.picore.configtxt import ConfigTxt
from steps.picore.image import BootTree, unpack_boot
from steps.picore.syslibs import SystemLibraries, read_system
from steps.units import human_size

if TYPE_CHECKING:
    import zipfile


def _md5_member(zf: zipfile.ZipFile, member: str) -> str:
    digest = hashlib.md5()
    with zf.open(member) as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def check_release_file(path: Path, name: str) -> None:
    """Content check of a downloaded release file (before it enters the cache).

    A zip must hold an ``.img`` whose md5 matches the ``<img>.md5.txt`` next to it in the zip
    (zipfile also checks every CRC); an ``.img.gz`` must gunzip cleanly (gzip's CRC and length).

    Raises:
        ChecksumError: naming the file, what was expected and what was found.
    """
    import gzip
    import zipfile
    import zlib

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                members = zf.namelist()
                images = [m for m in members if m.endswith(".img")]
                if not images:
                    raise ChecksumError(name, "a zip holding a piCore .img", "no .img inside")
                image = images[0]
                actual = _md5_member(zf, image)
                if image + ".md5.txt" in members:
                    published = parse_md5(zf.read(image + ".md5.txt").decode("utf-8", "replace"))
                    if published and published != actual:
                        raise ChecksumError(f"{name}:{image}", published, actual)
            return
        with gzip.open(path, "rb") as fh:
            while fh.read(1 << 20):
                pass
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        kind = "zip" if name.endswith(".zip") else "gzip"
        raise ChecksumError(name, f"an intact {kind} file", f"corrupt ({exc})") from None


def _resolve(dl: Downloader, version: str, arch: str) -> Generator[Event, None, Resolved]:
    """Where the release is: a mirror, or the offline catalog (saying so) when none answered."""
    found = yield from resolve_release(dl, version, arch)
    if found is not None:
        return found
    from steps.fetch.catalog import OFFLINE_NOTE, catalog_entries, offline_resolved

    yield LogLine(dl.step, OFFLINE_NOTE, "warning")
    offline = offline_resolved(version, arch)
    if offline is None:
        known = ", ".join(
            sorted({e.ref.version for e in catalog_entries() if e.ref.arch == arch}) or ["none"]
        )
        raise AnswersError(
            "release.version",
            f"piCore {version} ({arch}) is not in the offline catalog, and no mirror answered",
            fix=f"the catalog knows for {arch}: {known}; check the network and release.mirrors",
        )
    return offline


class ReleaseStep:
    """Resolve, download, verify and inspect the chosen piCore release."""

    name = "release"
    title = "Release"

    def run(self, ctx: StepContext) -> Iterator[Event]:
        """Yield progress; put a ``ReleaseArtifact`` in ``ctx.results``."""
        answers = ctx.answers.release
        cache = cache_dir(ctx.answers, ctx.cache_dir)
        with Downloader(answers.mirrors, cache, cancel=ctx.cancel, step=self.name) as dl:
            found = yield from _resolve(dl, answers.version, answers.arch)
            ref = found.ref
            if found.offline:
                yield Planned(self.name, "download", ref.path, "from the first mirror that answers")
                raise DownloadError(
                    f"cannot download {ref.filename}: no mirror answered ({', '.join(dl.mirrors)})",
                    fix="check the network and release.mirrors (or try `firecore-wizard --demo`)",
                )
            ctx.check_cancel()
            dl.prefer(found.mirror)
            md5 = None
            if found.md5_path:
                text = dl.meta(found.md5_path, missing_ok=True)
                md5 = parse_md5(text.decode("utf-8", "replace"), ref.filename) if text else None
            want = Want(ref.path, md5, ref.size, check_release_file)
            hit = dl.cached(want)
            url = dl.url(found.mirror, ref.path)
            size = human_size(hit.size if hit else ref.size)
            verify = f"md5 {md5}" if md5 else "md5 of the image inside"
            yield Planned(
                self.name,
                "cached" if hit else "download",
                url,
                f"{size}; {'already verified' if hit else 'verify ' + verify}",
            )
            got = (yield from dl.fetch([want], phase="download"))[ref.path]
            yield from dl.drain()

        ctx.check_cancel()
        tree = yield from unpack_boot(self.name, got.file, cache, ctx.cancel, sha256=got.sha256)
        config = tree.config_txt()
        kernels = _kernels(config, answers.boards, ref.version, ref.arch)
        system = _system(tree, config, answers.boards)
        demo = tree.demo
        artifact = ReleaseArtifact(
            ref=ref,
            url=got.url or url,
            mirror=got.mirror or found.mirror,
            file=got.file,
            sha256=got.sha256,
            image_name=tree.image_name,
            image_md5=tree.image_md5 if tree.image_md5_verified else "",
            config_txt=config.text,
            kernels=kernels,
            demo=demo,
            glibc=system.glibc_text,
            libraries=tuple(sorted(system.libraries)),
        )
        ctx.results.put(artifact)
        if demo:
            yield LogLine(
                self.name, "DEMO release: built from the demo mirror, it will not boot a real Pi",
                "warning",
            )  # fmt: skip
        kernel_text = ", ".join(f"{b} {k}" for b, k in kernels.items())
        origin = "from the cache" if got.cached else f"from {artifact.mirror}"
        yield Result(
            self.name,
            f"piCore {ref.version} ({ref.arch}) {ref.filename} {origin}; kernels: {kernel_text}",
            {
                **artifact.to_data(),
                "cached": got.cached,
                "size": got.size,
                "md5": got.md5,
                "published_md5": md5,
                "requests": dl.requests,
            },
        )


def _system(tree: BootTree, config: ConfigTxt, boards: Sequence[str]) -> SystemLibraries:
    """The glibc and libraries of the base archives the boards load (``steps.picore.syslibs``)."""
    archives: list[Path] = []
    for board in boards:
        for name in config.boot_for(board).initramfs:
            found = tree.find(name)
            if found is not None and found not in archives:
                archives.append(found)
    return read_system(archives)


def _kernels(config: ConfigTxt, boards: Sequence[str], version: str, arch: str) -> dict[str, str]:
    """Board → kernel release; a board the release cannot boot is an answers error."""
    kernels: dict[str, str] = {}
    for board in boards:
        try:
            kernels[board] = config.boot_for(board).kernel_release
        except RemasterError as exc:
            supported = []
            for other in BOARDS:
                try:
                    config.boot_for(other)
                except RemasterError:
                    continue
                supported.append(other)
            raise AnswersError(
                "release.boards",
                f"piCore {version} ({arch}) cannot boot {board}: {exc.message}",
                fix=f"boards this release boots: {', '.join(supported) or 'none'}",
            ) from None
    return kernels
