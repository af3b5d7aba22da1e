"""Issue 2 end to end: `firecore-wizard --answers … [--dry-run]` runs Release and Extensions
against the fixture mirror served over real HTTP, with faults injected through the server.

Only this issue's two steps are in the plan here (the later steps have their own end-to-end
tests); everything else is the real CLI, the real headless runner and the real cache.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from steps import plan
from steps.answers import load_answers
from steps.answers_toml import dump_answers
from steps.base import StepContext
from steps.demo.factory import Mirror
from steps.demo.server import Corrupt, Delay, Drop, MirrorServer, Status
from steps.events import Progress
from steps.fetch.catalog import OFFLINE_NOTE
from steps.release import ReleaseStep
from tests.conftest import ROOT
from wizard.cli import main
from wizard.exit_codes import ExitCode
from wizard.headless import run_steps
from wizard.render import Renderer


@pytest.fixture(autouse=True)
def only_release_and_extensions(monkeypatch: pytest.MonkeyPatch) -> None:
    keep = [entry for entry in plan.PLAN if entry.name in ("release", "extensions")]
    assert [entry.name for entry in keep] == ["release", "extensions"]
    monkeypatch.setattr(plan, "PLAN", keep)


@pytest.fixture
def backup_server(fake_mirror: Mirror) -> Any:
    with MirrorServer(fake_mirror.root) as server:
        yield server


def answers_file(tmp_path: Path, mirrors: list[str], **release: Any) -> Path:
    """assets/answers.example.toml pointed at the test mirrors, cache and output in tmp_path."""
    answers = load_answers(ROOT / "assets" / "answers.example.toml")
    answers.release.mirrors = mirrors
    for key, value in release.items():
        if key == "names":
            answers.extensions.names = value
        else:
            setattr(answers.release, key, value)
    answers.build.cache = str(tmp_path / "cache")
    answers.build.output = str(tmp_path / "out")
    path = tmp_path / "answers.toml"
    path.write_text(dump_answers(answers))
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


def result(objs: list[dict[str, Any]], step: str) -> dict[str, Any]:
    data: dict[str, Any] = next(o for o in objs if o["type"] == "result" and o["step"] == step)[
        "data"
    ]
    return data


def cache_objects(tmp_path: Path) -> dict[str, Path]:
    """name → file of every verified object; asserts each sits under its own md5."""
    found = {}
    for obj in (tmp_path / "cache" / "downloads" / "objects").rglob("*"):
        if obj.is_file():
            assert hashlib.md5(obj.read_bytes()).hexdigest() == obj.parent.name, obj
            found[obj.name] = obj
    partial = tmp_path / "cache" / "downloads" / "partial"
    assert not partial.exists() or not any(partial.iterdir())
    return found


def test_dry_run_prints_the_release_the_closure_with_reasons_and_the_download_plan(
    fake_mirror: Mirror, mirror_server: MirrorServer, tmp_path: Path, capsys: Any
) -> None:
    f = answers_file(tmp_path, [mirror_server.url])
    code, out, err = run(capsys, "--answers", str(f), "--dry-run")
    assert code == ExitCode.OK, err
    rel = fake_mirror.release("15.0.0", "armhf")
    repo = fake_mirror.repos["15.x/armhf/tcz"]
    url = mirror_server.url
    assert f"  download {url}{rel.path}  (" in out
    kernels = f"pi3 {rel.kernels['pi3']}, pi4 {rel.kernels['pi4']}"
    assert f"✓ piCore 15.0.0 (armhf) {rel.filename} from {url}; kernels: {kernels}" in out
    assert "  include openssh.tcz  (" in out and "; requested)" in out
    assert "; openssh.tcz → openssl.tcz)" in out
    for line in out.splitlines():
        if line.startswith("  include python3.11.tcz"):
            assert line.endswith("; requested)")
    # the download plan: every package of the closure, with its size and published md5
    planned = [
        line for line in out.splitlines() if line.startswith(f"  download {url}15.x/armhf/tcz/")
    ]
    names = [line.split()[1].rsplit("/", 1)[1] for line in planned]
    assert "openssl.tcz" in names and "python3.11.tcz" in names
    for line, name in zip(planned, names, strict=True):
        assert f"md5 {repo.packages[name].md5}" in line
    assert "extensions (2 requested" in out and "to download" in out
    # dry run: only the release file was fetched (to read config.txt), no .tcz, no output
    assert mirror_server.count("*.tcz") == 0
    assert not (tmp_path / "out").exists()
    assert set(cache_objects(tmp_path)) == {rel.filename}
    assert "* Release" in err and "* Extensions" in err


def test_json_dry_run_carries_the_closure_reasons_sizes_and_sources(
    fake_mirror: Mirror, mirror_server: MirrorServer, tmp_path: Path, capsys: Any
) -> None:
    f = answers_file(
        tmp_path, [mirror_server.url], version="12.0", arch="armv7", names=["myapp.tcz"]
    )
    code, out, err = run(capsys, "--answers", str(f), "--json", "--dry-run")
    assert code == ExitCode.OK, err
    objs = json_lines(out)
    assert objs[-1] == {"type": "done", "exit_code": 0}
    rel = fake_mirror.release("12.0", "armv7")
    release = result(objs, "release")
    assert release["kernels"] == {"pi3": rel.kernels["pi3"], "pi4": rel.kernels["pi4"]}
    assert release["published_md5"] == rel.md5 and release["md5"] == rel.md5
    assert release["demo"] is True and release["mirror"] == mirror_server.url
    ext = result(objs, "extensions")
    by = {p["name"]: p for p in ext["packages"]}
    # KERNEL → the module extension of every target board's kernel (Pi 3 v7, Pi 4 v7l)
    for board in ("pi3", "pi4"):
        name = f"w1-{rel.kernels[board]}.tcz"
        assert by[name]["kernel"] == rel.kernels[board]
        assert by[name]["why"] == ["myapp.tcz", name]
    assert f"w1-{rel.kernels['pi0']}.tcz" not in by  # pi0 is not a target
    repo = fake_mirror.repos["12.x/armv7/tcz"]
    for name, pkg in by.items():
        assert pkg["size"] == repo.packages[name].size
        assert pkg["md5"] == repo.packages[name].md5
        assert pkg["cached"] is False and pkg["file"] is None
    assert ext["download_bytes"] == sum(repo.packages[n].size for n in by)
    assert ext["ram_bytes"] == ext["download_bytes"] and "builtin" in ext["ram_estimate"]
    names = list(by)
    for name, pkg in by.items():  # load order: dependencies first
        assert all(names.index(d) < names.index(name) for d in pkg["deps"] if d in by)
    plans = [o for o in objs if o["type"] == "plan" and o["step"] == "extensions"]
    assert {p["target"].rsplit("/", 1)[1] for p in plans if p["action"] == "download"} == set(by)


def test_a_real_run_verifies_everything_and_a_warm_run_makes_no_request(
    fake_mirror: Mirror, mirror_server: MirrorServer, tmp_path: Path, capsys: Any
) -> None:
    f = answers_file(tmp_path, [mirror_server.url])
    code, out, err = run(capsys, "--answers", str(f), "--json")
    assert code == ExitCode.OK, err
    ext = result(json_lines(out), "extensions")
    objects = cache_objects(tmp_path)
    repo = fake_mirror.repos["15.x/armhf/tcz"]
    for pkg in ext["packages"]:
        assert Path(pkg["file"]) == objects[pkg["name"]]
        assert (
            objects[pkg["name"]].read_bytes()
            == fake_mirror.path(f"{repo.path}/{pkg['name']}").read_bytes()
        )
    # a package without a .dep file: the 404 means "no dependencies"
    no_dep = [p for p in ext["packages"] if repo.packages[p["name"]].dep_text is None]
    assert no_dep, "the fixture closure should include a package without .dep"
    for pkg in no_dep:
        assert pkg["deps"] == []
        dep_requests = [r for r in mirror_server.requests if r.path.endswith(pkg["name"] + ".dep")]
        assert [r.status for r in dep_requests] == [404]

    mirror_server.reset_counts()
    code, out, err = run(capsys, "--answers", str(f), "--json")
    assert code == ExitCode.OK, err
    assert mirror_server.count() == 0, mirror_server.requests
    objs = json_lines(out)
    assert result(objs, "release")["cached"] is True
    assert all(p["cached"] for p in result(objs, "extensions")["packages"])


def test_unknown_extension_exits_2_with_close_matches(
    mirror_server: MirrorServer, tmp_path: Path, capsys: Any
) -> None:
    f = answers_file(tmp_path, [mirror_server.url], names=["opensh.tcz"])
    code, _out, err = run(capsys, "--answers", str(f), "--dry-run")
    assert code == ExitCode.USAGE
    assert "extensions.names: unknown extension 'opensh.tcz'" in err
    assert "did you mean openssh.tcz" in err


def test_unknown_answers_key_exits_2_naming_it(tmp_path: Path, capsys: Any) -> None:
    f = tmp_path / "answers.toml"
    f.write_text('version = 1\n[release]\nversoin = "15.0.0"\n')
    code, _out, err = run(capsys, "--answers", str(f), "--dry-run")
    assert code == ExitCode.USAGE
    assert "release.versoin" in err and "did you mean release.version" in err


@pytest.mark.parametrize(
    ("release", "key", "hint"),
    [
        ({"version": "15.1.0"}, "release.version", "15.0.0"),
        ({"version": "16.0.0", "arch": "armhf"}, "release.arch", "aarch64"),
        ({"version": "12.0", "arch": "armv7", "boards": ["pi3", "pi5"]}, "release.boards", "pi4"),
    ],
)
def test_a_release_the_mirror_cannot_give_exits_2_naming_the_key(
    mirror_server: MirrorServer, tmp_path: Path, capsys: Any, release: Any, key: str, hint: str
) -> None:
    f = answers_file(tmp_path, [mirror_server.url], **release)
    code, _out, err = run(capsys, "--answers", str(f), "--dry-run")
    assert code == ExitCode.USAGE, err
    line = next(x for x in err.splitlines() if x.startswith("ERROR"))
    assert f"{key}: " in line
    assert hint in err


def test_no_mirror_answering_falls_back_to_the_offline_catalog_and_says_so(
    fake_mirror: Mirror, tmp_path: Path, capsys: Any
) -> None:
    dead = MirrorServer(fake_mirror.root)
    url = dead.url
    dead.stop()
    f = answers_file(tmp_path, [url])
    code, out, _err = run(capsys, "--answers", str(f), "--json", "--dry-run")
    assert code == ExitCode.STEP_FAILED
    objs = json_lines(out)
    warnings = [o["text"] for o in objs if o["type"] == "log" and o["stream"] == "warning"]
    assert OFFLINE_NOTE in warnings
    plan_ = next(o for o in objs if o["type"] == "plan")
    assert plan_["target"] == "15.x/armhf/releases/RPi/piCore-15.0.0.zip"  # from the catalog
    error = next(o for o in objs if o["type"] == "error")
    assert error["step"] == "release" and "no mirror answered" in error["message"]
    assert "piCore-15.0.0.zip" in error["message"]


def test_a_dead_first_mirror_fails_over_and_the_result_names_the_server(
    fake_mirror: Mirror, mirror_server: MirrorServer, tmp_path: Path, capsys: Any
) -> None:
    dead = MirrorServer(fake_mirror.root)
    url = dead.url
    dead.stop()
    f = answers_file(tmp_path, [url, mirror_server.url])
    code, out, err = run(capsys, "--answers", str(f), "--json")
    assert code == ExitCode.OK, err
    objs = json_lines(out)
    assert result(objs, "release")["mirror"] == mirror_server.url
    assert {p["mirror"] for p in result(objs, "extensions")["packages"]} == {mirror_server.url}
    assert any(o["type"] == "log" and url in o["text"] for o in objs)


def test_server_errors_then_success(
    fake_mirror: Mirror, mirror_server: MirrorServer, tmp_path: Path, capsys: Any
) -> None:
    rel = fake_mirror.release("15.0.0", "armhf")
    mirror_server.fault("/" + rel.path, Status(500), Status(502))
    mirror_server.fault("*/openssl.tcz", Status(503))
    f = answers_file(tmp_path, [mirror_server.url])
    code, out, err = run(capsys, "--answers", str(f), "--json")
    assert code == ExitCode.OK, err
    statuses = [r.status for r in mirror_server.requests if r.path == "/" + rel.path]
    assert statuses == [500, 502, 200]
    assert [r.status for r in mirror_server.requests if r.path.endswith("/openssl.tcz")] == [
        503,
        200,
    ]
    assert sum("retrying in" in o.get("text", "") for o in json_lines(out)) == 3


def test_a_connection_dropped_mid_file_resumes_with_range(
    fake_mirror: Mirror, mirror_server: MirrorServer, tmp_path: Path, capsys: Any
) -> None:
    rel = fake_mirror.release("15.0.0", "armhf")
    cut = rel.size // 2
    mirror_server.fault("/" + rel.path, Drop(after=cut))
    f = answers_file(tmp_path, [mirror_server.url])
    code, _out, err = run(capsys, "--answers", str(f), "--dry-run")
    assert code == ExitCode.OK, err
    reqs = [(r.status, r.range) for r in mirror_server.requests if r.path == "/" + rel.path]
    assert reqs == [(200, None), (206, f"bytes={cut}-")]
    assert f"resuming at byte {cut}" in err
    assert (
        cache_objects(tmp_path)[rel.filename].read_bytes()
        == fake_mirror.path(rel.path).read_bytes()
    )


def test_a_corrupt_release_is_fetched_again_from_the_next_mirror(
    fake_mirror: Mirror,
    mirror_server: MirrorServer,
    backup_server: MirrorServer,
    tmp_path: Path,
    capsys: Any,
) -> None:
    rel = fake_mirror.release("15.0.0", "armhf")  # no published md5: the zip's own is checked
    mirror_server.fault("/" + rel.path, Corrupt())
    f = answers_file(tmp_path, [mirror_server.url, backup_server.url])
    code, out, err = run(capsys, "--answers", str(f), "--json", "--dry-run")
    assert code == ExitCode.OK, err
    objs = json_lines(out)
    warning = next(o["text"] for o in objs if o["type"] == "log" and "retrying once" in o["text"])
    assert rel.filename in warning and backup_server.url in warning
    assert result(objs, "release")["url"] == backup_server.url + rel.path
    assert result(objs, "release")["md5"] == rel.md5
    cache_objects(tmp_path)


def test_a_tcz_corrupt_on_every_mirror_fails_naming_file_and_sums(
    fake_mirror: Mirror,
    mirror_server: MirrorServer,
    backup_server: MirrorServer,
    tmp_path: Path,
    capsys: Any,
) -> None:
    mirror_server.fault("*/openssl.tcz", Corrupt(offset=100))
    backup_server.fault("*/openssl.tcz", Corrupt(offset=200))
    expected = fake_mirror.repos["15.x/armhf/tcz"].packages["openssl.tcz"].md5
    f = answers_file(tmp_path, [mirror_server.url, backup_server.url])
    code, _out, err = run(capsys, "--answers", str(f))
    assert code == ExitCode.STEP_FAILED
    error = next(x for x in err.splitlines() if x.startswith("ERROR"))
    assert error.startswith("ERROR Checksum mismatch in step extensions: openssl.tcz from ")
    assert f"expected {expected}" in error and "md5 is " in error
    objects = cache_objects(tmp_path)  # every object verified, nothing partial
    assert "openssl.tcz" not in objects


def test_a_slow_mirror_times_out_to_the_next(
    fake_mirror: Mirror,
    mirror_server: MirrorServer,
    backup_server: MirrorServer,
    tmp_path: Path,
    capsys: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FIRECORE_HTTP_TIMEOUT", "2")
    mirror_server.fault("*", Delay(600), repeat_last=True)  # stalled: only a timeout gets past it
    f = answers_file(tmp_path, [mirror_server.url, backup_server.url])
    code, out, err = run(capsys, "--answers", str(f), "--json")
    assert code == ExitCode.OK, err
    objs = json_lines(out)
    assert result(objs, "release")["mirror"] == backup_server.url
    assert any(o["type"] == "log" and "timed out" in o["text"] for o in objs)


def test_ctrl_c_during_the_download_exits_130_and_leaves_nothing_half_written(
    fake_mirror: Mirror, mirror_server: MirrorServer, tmp_path: Path
) -> None:
    rel = fake_mirror.release("15.0.0", "armhf")
    mirror_server.fault("/" + rel.path, Delay(600, after=rel.size // 3))
    answers = load_answers(answers_file(tmp_path, [mirror_server.url]))
    ctx = StepContext(answers=answers)

    class CancelOnProgress(Renderer):
        def progress(self, event: Progress) -> None:
            if event.phase == "download" and event.done > 0:
                threading.Timer(0.1, ctx.cancel.set).start()

    import io

    start = time.monotonic()
    code = run_steps([ReleaseStep()], ctx, CancelOnProgress(io.StringIO(), io.StringIO()))
    assert code == ExitCode.INTERRUPTED
    assert time.monotonic() - start < 300  # cancelled mid-stall, not after the 600 s delay
    assert cache_objects(tmp_path) == {}


def test_without_an_index_names_are_checked_against_the_md5_files(
    mirror_server: MirrorServer, tmp_path: Path, capsys: Any
) -> None:
    mirror_server.fault("/15.x/armhf/tcz/*.gz", Status(404), repeat_last=True)
    f = answers_file(tmp_path, [mirror_server.url], names=["openssh.tcz"])
    code, out, err = run(capsys, "--answers", str(f), "--dry-run")
    assert code == ExitCode.OK, err
    assert "publishes no index; names are not checked" in err
    assert "  include openssl.tcz  (" in out
    f = answers_file(tmp_path, [mirror_server.url], names=["nothere.tcz"])
    code, out, err = run(capsys, "--answers", str(f), "--dry-run")
    assert code == ExitCode.USAGE
    assert "extensions.names: unknown extension 'nothere.tcz'" in err


def test_the_closure_matches_the_fixture_graph_with_cycle_diamond_comments_and_kernel(
    fake_mirror: Mirror, mirror_server: MirrorServer, tmp_path: Path, capsys: Any
) -> None:
    requested = ["avahi.tcz", "nano.tcz", "alsa.tcz", "python3.11.tcz"]
    f = answers_file(tmp_path, [mirror_server.url], names=requested)
    code, out, err = run(capsys, "--answers", str(f), "--json", "--dry-run")
    assert code == ExitCode.OK, err
    rel = fake_mirror.release("15.0.0", "armhf")
    kernels = [rel.kernels["pi3"], rel.kernels["pi4"]]
    repo = fake_mirror.repos["15.x/armhf/tcz"]

    def expanded(name: str, scope: list[str]) -> list[str]:
        return [name.replace("KERNEL", k) for k in scope] if "KERNEL" in name else [name]

    # the expected closure, from the factory's own record of each package's deps
    expected: dict[str, list[str]] = {}
    todo = [(n, kernels) for n in requested]
    while todo:
        name, scope = todo.pop()
        if name in expected:
            continue
        kernel = next((k for k in kernels if k in name), None)
        inner = [kernel] if kernel else scope
        deps = [d for dep in repo.packages[name].deps for d in expanded(dep, inner)]
        expected[name] = deps
        todo += [(d, inner) for d in deps]
    by = {p["name"]: p for p in result(json_lines(out), "extensions")["packages"]}
    assert set(by) == set(expected)
    for name, deps in expected.items():
        assert by[name]["deps"] == list(dict.fromkeys(deps)), name
        assert by[name]["dep_text"] == (repo.packages[name].dep_text or "")
    assert by["dbus.tcz"]["why"] == ["avahi.tcz", "dbus.tcz"]  # the cycle avahi ↔ dbus
    assert by["ncursesw.tcz"]["why"] == ["nano.tcz", "ncursesw.tcz"]  # diamond, shortest chain
    assert {by[f"alsa-modules-{k}.tcz"]["kernel"] for k in kernels} == set(kernels)
