"""Dependency resolution on hand-written graphs: piCore's .dep rules, cycles, diamonds, KERNEL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from steps.picore.deps import expand, needed, parse_dep, resolve

V7 = "6.6.47-piCore-v7"
V8 = "6.6.47-piCore-v8"


def walk(
    graph: Mapping[str, str | None],
    requested: Sequence[str],
    kernels: Sequence[str] = (V7,),
    available: set[str] | None = None,
):
    """Resolve like the step does: fetch what ``needed`` asks for, round by round."""
    texts: dict[str, str | None] = {}
    rounds = 0
    while todo := needed(requested, texts, kernels, available):
        rounds += 1
        assert rounds < 50, "the walk does not terminate"
        for name in todo:
            assert name not in texts, f"{name} asked for twice"
            texts[name] = graph.get(name)
    return resolve(requested, texts, kernels, {n: 1000 for n in graph}, available)


def test_dep_lines_are_read_like_the_loader() -> None:
    text = (
        "# a comment\n"
        "; another comment\n"
        "\n"
        "   openssl.tcz   \n"
        "open ssl.tcz\n"  # blanks inside are removed (tce-load's awk)
        "\tncursesw.tcz\r\n"
        "x.tcz\n"  # 5 chars: kept
        ".tcz\n"  # 4 chars: skipped
        "readme.txt\n"  # not .tcz: skipped
        "openssl.tcz\n"  # duplicate
        "w1-KERNEL.tcz\n"
    )
    assert parse_dep(text) == ["openssl.tcz", "ncursesw.tcz", "x.tcz", "w1-KERNEL.tcz"]
    assert parse_dep(None) == []
    assert parse_dep("") == []


def test_missing_dep_file_means_no_deps() -> None:
    closure = walk({"a.tcz": None}, ["a.tcz"])
    assert [p.name for p in closure.packages] == ["a.tcz"]
    assert closure.packages[0].deps == ()
    assert closure.packages[0].dep_text == ""


def test_chain_load_order_and_why() -> None:
    graph = {
        "python3.11-pip.tcz": "python3.11.tcz\n",
        "python3.11.tcz": "openssl.tcz\nlibffi.tcz\n",
        "openssl.tcz": "ca-certificates.tcz\n",
        "libffi.tcz": None,
        "ca-certificates.tcz": None,
    }
    closure = walk(graph, ["python3.11-pip.tcz"])
    names = [p.name for p in closure.packages]
    assert names == [
        "ca-certificates.tcz",
        "openssl.tcz",
        "libffi.tcz",
        "python3.11.tcz",
        "python3.11-pip.tcz",
    ]
    by = {p.name: p for p in closure.packages}
    assert by["ca-certificates.tcz"].why == (
        "python3.11-pip.tcz",
        "python3.11.tcz",
        "openssl.tcz",
        "ca-certificates.tcz",
    )
    assert by["python3.11-pip.tcz"].why == ("python3.11-pip.tcz",)
    assert by["python3.11.tcz"].deps == ("openssl.tcz", "libffi.tcz")
    assert by["python3.11.tcz"].dep_text == "openssl.tcz\nlibffi.tcz\n"
    assert closure.download_bytes == 5000
    assert closure.ram_bytes("builtin") == 5000
    assert closure.ram_bytes("extracted") == 15000


def test_diamond_is_included_once_with_the_shortest_reason() -> None:
    graph = {
        "app.tcz": "left.tcz\nright.tcz\n",
        "left.tcz": "base.tcz\n",
        "right.tcz": "mid.tcz\n",
        "mid.tcz": "base.tcz\n",
        "base.tcz": None,
    }
    closure = walk(graph, ["app.tcz"])
    names = [p.name for p in closure.packages]
    assert sorted(names) == sorted(graph)
    assert len(names) == len(set(names))
    assert names.index("base.tcz") < names.index("left.tcz")
    assert names.index("base.tcz") < names.index("mid.tcz") < names.index("right.tcz")
    assert names[-1] == "app.tcz"
    assert closure.packages[names.index("base.tcz")].why == ("app.tcz", "left.tcz", "base.tcz")


def test_cycle_terminates_and_keeps_every_member() -> None:
    graph = {"a.tcz": "b.tcz\n", "b.tcz": "c.tcz\n", "c.tcz": "a.tcz\nd.tcz\n", "d.tcz": None}
    closure = walk(graph, ["a.tcz"])
    names = [p.name for p in closure.packages]
    assert sorted(names) == ["a.tcz", "b.tcz", "c.tcz", "d.tcz"]
    assert names.index("d.tcz") < names.index("c.tcz") < names.index("b.tcz") < names.index("a.tcz")
    # a self-dependency too
    closure = walk({"self.tcz": "self.tcz\n"}, ["self.tcz"])
    assert [p.name for p in closure.packages] == ["self.tcz"]


def test_kernel_expands_for_every_target_board() -> None:
    graph = {
        "myapp.tcz": "python3.11.tcz\nw1-KERNEL.tcz\n",
        "python3.11.tcz": None,
        f"w1-{V7}.tcz": "i2c-KERNEL.tcz\n",
        f"w1-{V8}.tcz": "i2c-KERNEL.tcz\n",
        f"i2c-{V7}.tcz": None,
        f"i2c-{V8}.tcz": None,
    }
    closure = walk(graph, ["myapp.tcz"], kernels=[V7, V8])
    by = {p.name: p for p in closure.packages}
    assert set(by) == set(graph)
    assert by["myapp.tcz"].deps == ("python3.11.tcz", f"w1-{V7}.tcz", f"w1-{V8}.tcz")
    assert by[f"w1-{V7}.tcz"].kernel == V7
    assert by[f"w1-{V8}.tcz"].kernel == V8
    # inside a module extension KERNEL stays that extension's kernel
    assert by[f"w1-{V7}.tcz"].deps == (f"i2c-{V7}.tcz",)
    assert by[f"i2c-{V8}.tcz"].why == ("myapp.tcz", f"w1-{V8}.tcz", f"i2c-{V8}.tcz")
    assert by[f"w1-{V8}.tcz"].dep_text == "i2c-KERNEL.tcz\n"  # published text kept for staging
    assert by["python3.11.tcz"].kernel is None


def test_one_kernel_for_two_boards_expands_once() -> None:
    closure = walk({"a.tcz": "w1-KERNEL.tcz\n", f"w1-{V8}.tcz": None}, ["a.tcz"], [V8, V8])
    assert [p.name for p in closure.packages] == [f"w1-{V8}.tcz", "a.tcz"]


def test_requested_kernel_placeholder_and_expand() -> None:
    assert expand("w1-KERNEL.tcz", [V7, V8]) == [(f"w1-{V7}.tcz", V7), (f"w1-{V8}.tcz", V8)]
    assert expand("openssl.tcz", [V7, V8]) == [("openssl.tcz", None)]
    closure = walk({f"w1-{V7}.tcz": None}, ["w1-KERNEL.tcz"])
    assert [(p.name, p.why) for p in closure.packages] == [(f"w1-{V7}.tcz", (f"w1-{V7}.tcz",))]


def test_dependencies_missing_from_the_repo_are_reported_not_fetched() -> None:
    graph = {"a.tcz": "gone.tcz\nb.tcz\n", "b.tcz": "w1-KERNEL.tcz\n", f"w1-{V7}.tcz": None}
    available = {"a.tcz", "b.tcz", f"w1-{V7}.tcz"}
    closure = walk(graph, ["a.tcz"], kernels=[V7, V8], available=available)
    assert [p.name for p in closure.packages] == [f"w1-{V7}.tcz", "b.tcz", "a.tcz"]
    assert closure.missing == (
        ("gone.tcz", ("a.tcz", "gone.tcz")),
        (f"w1-{V8}.tcz", ("a.tcz", "b.tcz", f"w1-{V8}.tcz")),
    )


def test_resolution_is_deterministic() -> None:
    graph = {f"p{i}.tcz": "\n".join(f"p{j}.tcz" for j in range(i)) for i in range(12)}
    first = walk(graph, ["p11.tcz", "p3.tcz"])
    second = walk(graph, ["p11.tcz", "p3.tcz"])
    assert first == second
    assert [p.name for p in first.packages] == [f"p{i}.tcz" for i in range(12)]


def test_deep_chain_does_not_recurse() -> None:
    graph: dict[str, str | None] = {f"n{i}.tcz": f"n{i + 1}.tcz\n" for i in range(3000)}
    graph["n3000.tcz"] = None
    closure = resolve(["n0.tcz"], graph, [V7])
    assert closure.packages[0].name == "n3000.tcz"
    assert closure.packages[-1].name == "n0.tcz"
