"""The Extensions step: resolve the requested TCZs for the target kernels, fetch and verify them.

It reads the release's extension repo (``<major>.x/<arch>/tcz/``): the index for names and
sizes, each package's ``.tcz.dep`` (recursively, as piCore's loader does; ``KERNEL`` expands to
every target board's kernel release, see ``steps.picore.deps``), ``.tcz.md5.txt`` and ``.tcz.list``
(what each installs: the app step checks the wheels' libraries against it); then downloads
every ``.tcz`` of the closure into the verified cache. Unknown requested names are an answers
error with close matches. A dry run stops before the ``.tcz`` downloads: it reports the closure
with the reason each package is in, the sizes, and which files would be downloaded from where.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator, Iterator

from steps.artifacts import Extension, ExtensionSet, ReleaseArtifact
from steps.base import StepContext
from steps.errors import AnswersError, DownloadError
from steps.events import Event, LogLine, Planned, Result
from steps.fetch.download import Downloader, Got, Want, parse_md5
from steps.paths import cache_dir
from steps.picore.deps import Closure, expand, needed, resolve
from steps.picore.tcz import TczIndex, load_index, repo_path
from steps.units import human_size

#: Index files the step needs (names and sizes); search in the wizard reads the others too.
STEP_INDEX_FILES = ("info.lst.gz", "sizelist.gz")


def check_names(requested: list[str], kernels: list[str], index: TczIndex) -> None:
    """Every requested name (KERNEL expanded) must be in the repo's index.

    Raises:
        AnswersError: ``extensions.names``, naming the unknown extension and close matches.
    """
    if not index.names:
        return  # no index on this mirror: unknown names surface as a missing .md5.txt
    for req in requested:
        for name, _ in expand(req, kernels):
            if name in index:
                continue
            close = index.close_matches(name)
            where = index.mirror or "the mirror"
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            raise AnswersError(
                "extensions.names",
                f"unknown extension {name!r}: not in {index.repo} on {where}",
                fix=f"{hint}(if it was added recently, run with FIRECORE_REFRESH=1 to re-read "
                "the index)",
            )


def why_text(ext: Extension) -> str:
    """``"requested"`` or ``"openssh.tcz → openssl.tcz"``."""
    return "requested" if len(ext.why) == 1 else " → ".join(ext.why)


def resolve_closure(
    dl: Downloader, repo: str, requested: list[str], kernels: list[str], index: TczIndex
) -> Generator[Event, None, Closure]:
    """The dependency closure of ``requested``: ``.dep`` files are fetched a round at a time.

    ``kernels`` expand ``KERNEL`` in names; ``index`` gives the sizes, and (when the repo
    publishes one) which dependencies exist. The step and the wizard's Extensions screen both
    resolve through here.
    """
    available = index if index.names else None
    texts: dict[str, str | None] = {}
    while todo := needed(requested, texts, kernels, available):
        got = yield from dl.meta_many(
            [repo + name + ".dep" for name in todo], missing_ok=True, phase="deps"
        )
        for name in todo:
            data = got.get(repo + name + ".dep")
            texts[name] = data.decode("utf-8", "replace") if data is not None else None
    return resolve(requested, texts, kernels, index.sizes, available)


class ExtensionsStep:
    """Resolve, download and verify the extensions and their dependencies."""

    name = "extensions"
    title = "Extensions"

    def run(self, ctx: StepContext) -> Iterator[Event]:
        """Yield progress; put an ``ExtensionSet`` in ``ctx.results``."""
        release = ctx.results.need(ReleaseArtifact, by="the extensions step")
        answers = ctx.answers
        requested = list(answers.extensions.names)
        boards = [b for b in answers.release.boards if b in release.kernels]
        kernels = list(dict.fromkeys(release.kernels[b] for b in boards))
        repo = repo_path(release.ref.version, release.ref.arch)
        cache = cache_dir(answers, ctx.cache_dir)
        with Downloader(answers.release.mirrors, cache, cancel=ctx.cancel, step=self.name) as dl:
            if release.mirror in dl.mirrors:
                dl.prefer(release.mirror)
            yield LogLine(self.name, f"reading the extension index {repo}")
            index = yield from load_index(dl, repo, STEP_INDEX_FILES)
            if not index.names:
                yield LogLine(self.name, f"{repo} publishes no index; names are not checked")
            check_names(requested, kernels, index)
            ctx.check_cancel()
            closure = yield from resolve_closure(dl, repo, requested, kernels, index)
            for name, why in closure.missing:
                yield LogLine(
                    self.name,
                    f"{name} (needed by {' → '.join(why[:-1])}) is not in {repo}; piCore's "
                    "loader skips missing dependencies too",
                    "warning",
                )
            ctx.check_cancel()
            packages = yield from self._md5s(dl, repo, closure)
            lists = yield from self._lists(dl, repo, packages)
            for ext in packages:
                kernel = f", for {ext.kernel}" if ext.kernel else ""
                yield Planned(
                    self.name, "include", ext.name,
                    f"{human_size(ext.size)}{kernel}; {why_text(ext)}",
                )  # fmt: skip
            wants = [Want(repo + p.name, p.md5, p.size) for p in packages]
            cached = {w.path: dl.cached(w) for w in wants}
            for want in wants:
                hit = cached[want.path]
                action = "cached" if hit else "download"
                source = "already verified" if hit else f"md5 {want.md5}"
                yield Planned(
                    self.name, action, dl.url(dl.mirrors[0], want.path),
                    f"{human_size(want.size)}; {source}",
                )  # fmt: skip
            got: dict[str, Got] = {}
            if not ctx.dry_run:
                got = yield from dl.fetch(wants, phase="download")
            yield from dl.drain()
            files = {p.name: got[repo + p.name].file for p in packages if repo + p.name in got}
            mirror = dl.sources.get(repo + "info.lst.gz", "") or index.mirror or dl.mirrors[0]
            result = ExtensionSet(tuple(requested), tuple(packages), files, mirror, lists)
            ctx.results.put(result)
            yield self._result(ctx, result, closure, kernels, repo, got, cached, dl)

    def _md5s(
        self, dl: Downloader, repo: str, closure: Closure
    ) -> Generator[Event, None, list[Extension]]:
        paths = [repo + p.name + ".md5.txt" for p in closure.packages]
        sums = yield from dl.meta_many(paths, missing_ok=True, phase="md5")
        packages: list[Extension] = []
        for ext in closure.packages:
            data = sums.get(repo + ext.name + ".md5.txt")
            md5 = parse_md5(data.decode("utf-8", "replace"), ext.name) if data else None
            if md5 is None and len(ext.why) == 1 and data is None:
                raise AnswersError(
                    "extensions.names",
                    f"unknown extension {ext.name!r}: {repo}{ext.name}.md5.txt does not exist",
                    fix="check the name against the mirror's tcz/ directory",
                )
            if md5 is None:
                needed_by = f" (needed by {' → '.join(ext.why[:-1])})" if len(ext.why) > 1 else ""
                raise DownloadError(
                    f"{ext.name}{needed_by}: {repo}{ext.name}.md5.txt is missing or has no md5 "
                    "on the mirror, so the extension cannot be verified",
                    fix="check the extension name (extensions.names) or use another mirror",
                )
            packages.append(dataclasses.replace(ext, md5=md5))
        return packages

    def _lists(
        self, dl: Downloader, repo: str, packages: list[Extension]
    ) -> Generator[Event, None, dict[str, tuple[str, ...]]]:
        """Each package's ``.tcz.list`` (the app step checks wheels' libraries against them)."""
        paths = [repo + p.name + ".list" for p in packages]
        got = yield from dl.meta_many(paths, missing_ok=True, phase="lists")
        out: dict[str, tuple[str, ...]] = {}
        for p in packages:
            data = got.get(repo + p.name + ".list")
            if data is not None:
                text = data.decode("utf-8", "replace")
                out[p.name] = tuple(ln.strip() for ln in text.splitlines() if ln.strip())
        return out

    def _result(
        self,
        ctx: StepContext,
        result: ExtensionSet,
        closure: Closure,
        kernels: list[str],
        repo: str,
        got: dict[str, Got],
        cached: dict[str, Got | None],
        dl: Downloader,
    ) -> Result:
        mode = ctx.answers.extensions.mode
        size = closure.download_bytes
        ram = closure.ram_bytes(mode)
        ram_how = (
            "the .tcz files stay compressed in RAM (builtin mode)"
            if mode == "builtin"
            else "estimated as 3 x the .tcz sizes once unpacked (extracted mode)"
        )
        todo = sum(1 for hit in cached.values() if hit is None)
        fetched = f"{todo} to download" if ctx.dry_run else f"{todo} downloaded"
        deps = sum(1 for p in result.packages if len(p.why) > 1)
        summary = (
            f"{len(result.packages)} extension{'s' if len(result.packages) != 1 else ''} "
            f"({len(result.packages) - deps} requested, "
            f"{deps} {'dependency' if deps == 1 else 'dependencies'}): "
            f"{human_size(size)} download ({fetched}), about {human_size(ram)} RAM"
        )
        packages = []
        for ext in result.packages:
            item = ext.to_data()
            path = repo + ext.name
            hit = cached.get(path)
            source = got.get(path)
            item["cached"] = hit is not None
            item["mirror"] = source.mirror if source else (hit.mirror if hit else "")
            item["file"] = str(result.files[ext.name]) if ext.name in result.files else None
            packages.append(item)
        return Result(
            self.name,
            summary,
            {
                "repo": repo,
                "mirror": result.mirror,
                "kernels": kernels,
                "requested": list(result.requested),
                "packages": packages,
                "missing": [{"name": n, "why": list(w)} for n, w in closure.missing],
                "download_bytes": size,
                "unknown_sizes": closure.unknown_sizes,
                "ram_bytes": ram,
                "ram_estimate": ram_how,
                "dry_run": ctx.dry_run,
                "requests": dl.requests,
            },
        )
