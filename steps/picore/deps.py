"""Dependency resolution for TinyCore extensions, exactly as piCore's loader does it.

piCore reads ``NAME.tcz.dep`` recursively (tce-load, tce-bootload/tc.py): all blanks are removed
from each line; lines of four characters or fewer, lines starting with ``#`` or ``;`` and lines
not ending in ``.tcz`` are skipped; names are de-duplicated; a missing ``.dep`` means no deps; the
placeholder ``KERNEL`` is replaced by ``uname -r``. A netboot image serves several boards, each
with its own ``uname -r``, so here ``KERNEL`` expands to the kernel release of *every* target
board (a Pi 3 + Pi 4 build stages ``w1-…-v7.tcz`` and ``w1-…-v8.tcz``), except inside a package
that already belongs to one kernel, whose own ``KERNEL`` deps stay with that kernel.

The walk is split from fetching: ``needed`` says which ``.dep`` texts are still unknown, the
caller fetches them (in parallel, cached) and calls again; ``resolve`` then builds the closure
from the texts. Both are pure and deterministic: cycles and diamonds are visited once, "why"
is the shortest chain from a requested name (breadth-first, in file order), and the load order
puts dependencies before their dependants.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass

from steps.answers import is_extension_name
from steps.artifacts import Extension

#: RAM estimate for ``extensions.mode = "extracted"``: squashfs (xz/gzip) typically unpacks to
#: about three times the .tcz size.
EXTRACT_FACTOR = 3


def parse_dep(text: str | None) -> list[str]:
    """The dependency names in a ``.tcz.dep`` text, as the loader reads them (KERNEL kept).

    A line that is not an extension name (``../../x.tcz``, a control character: a hostile or
    tampered mirror) is dropped here, before the name can become a cache path or a URL.
    """
    out: dict[str, None] = {}
    for raw in (text or "").splitlines():
        line = "".join(raw.split())
        if len(line) <= 4 or line.startswith(("#", ";")) or not line.endswith(".tcz"):
            continue
        if is_extension_name(line.replace("KERNEL", "k")):
            out[line] = None
    return list(out)


def expand(name: str, kernels: Sequence[str]) -> list[tuple[str, str | None]]:
    """``w1-KERNEL.tcz`` → one (name, kernel) per kernel release; other names unchanged."""
    if "KERNEL" not in name:
        return [(name, None)]
    return [(name.replace("KERNEL", k), k) for k in kernels]


@dataclass(frozen=True)
class _Node:
    name: str
    kernel: str | None
    why: tuple[str, ...]


def _walk(
    requested: Sequence[str],
    texts: Mapping[str, str | None],
    kernels: Sequence[str],
    available: Container[str] | None,
) -> tuple[dict[str, _Node], dict[str, list[str]], list[_Node]]:
    """Breadth-first over what is known: nodes by name, expanded deps, missing names."""
    nodes: dict[str, _Node] = {}
    edges: dict[str, list[str]] = {}
    missing: list[_Node] = []
    todo: deque[_Node] = deque()
    for req in requested:
        for name, kernel in expand(req, kernels):
            todo.append(_Node(name, kernel, (name,)))
    while todo:
        node = todo.popleft()
        if node.name in nodes or any(m.name == node.name for m in missing):
            continue
        if available is not None and node.name not in available:
            missing.append(node)
            continue
        nodes[node.name] = node
        if node.name not in texts:
            continue
        scope = [node.kernel] if node.kernel is not None else list(kernels)
        edges[node.name] = []
        for dep in parse_dep(texts[node.name]):
            for name, kernel in expand(dep, scope):
                edges[node.name].append(name)
                todo.append(_Node(name, kernel, (*node.why, name)))
    for name, deps in edges.items():
        edges[name] = list(dict.fromkeys(d for d in deps))
    return nodes, edges, missing


def needed(
    requested: Sequence[str],
    texts: Mapping[str, str | None],
    kernels: Sequence[str],
    available: Container[str] | None = None,
) -> list[str]:
    """Names reachable so far whose ``.dep`` text is not in ``texts`` yet (fetch these next)."""
    nodes, _, _ = _walk(requested, texts, kernels, available)
    return [name for name in nodes if name not in texts]


@dataclass(frozen=True)
class Closure:
    """The resolved set: what to stage, in load order, and what could not be found."""

    packages: tuple[Extension, ...]
    missing: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(name, why) of dependencies the repo does not have (piCore's loader skips them too)."""

    @property
    def download_bytes(self) -> int:
        """Sum of the known .tcz sizes."""
        return sum(p.size or 0 for p in self.packages)

    @property
    def unknown_sizes(self) -> list[str]:
        """Packages the size list does not mention."""
        return [p.name for p in self.packages if p.size is None]

    def ram_bytes(self, mode: str = "builtin") -> int:
        """Estimated RAM the extensions take on the Pi.

        builtin: the .tcz files sit in the RAM-backed root as they are (squashfs is read in place
        through a loop mount; what it unpacks lands in reclaimable page cache), so their size.
        extracted: unpacked into the overlay, estimated as ``EXTRACT_FACTOR`` times their size.
        """
        total = self.download_bytes
        return total * EXTRACT_FACTOR if mode == "extracted" else total


def resolve(
    requested: Sequence[str],
    texts: Mapping[str, str | None],
    kernels: Sequence[str],
    sizes: Mapping[str, int] | None = None,
    available: Container[str] | None = None,
) -> Closure:
    """The closure of ``requested`` given every needed ``.dep`` text (None = no .dep file).

    Args:
        requested: names as the user gave them (may contain KERNEL).
        texts: name → .dep text (KERNEL kept), for every name ``needed`` asked for.
        kernels: kernel releases of the target boards, in board order, without duplicates.
        sizes: name → .tcz size (sizelist), for the totals.
        available: the repo's names; others become ``missing`` instead of packages.
    """
    kernels = list(dict.fromkeys(kernels))
    nodes, edges, missing = _walk(requested, texts, kernels, available)
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = in progress, 2 = placed

    def visit(name: str) -> None:
        # iterative DFS post-order (deep dep chains must not hit the recursion limit)
        stack: list[tuple[str, int]] = [(name, 0)]
        state[name] = 1
        while stack:
            current, i = stack.pop()
            deps = edges.get(current, [])
            while i < len(deps) and (deps[i] not in nodes or state.get(deps[i])):
                i += 1  # missing, placed, or a cycle back to an ancestor
            if i < len(deps):
                stack.append((current, i + 1))
                state[deps[i]] = 1
                stack.append((deps[i], 0))
            else:
                state[current] = 2
                order.append(current)

    for name in nodes:
        if nodes[name].why == (name,) and not state.get(name):
            visit(name)
    for name in nodes:  # anything left (cannot happen in a walk, kept for safety)
        if not state.get(name):
            visit(name)
    sizes = sizes or {}
    packages = tuple(
        Extension(
            name=name,
            deps=tuple(edges.get(name, [])),
            why=nodes[name].why,
            size=sizes.get(name),
            kernel=nodes[name].kernel,
            dep_text=texts.get(name) or "",
        )
        for name in order
    )
    return Closure(packages, tuple((m.name, m.why) for m in missing))
