"""Paths are not trusted (issue 10, root cause 3, and the faults around build.output).

build.output is replaced as a whole, so it must be new, empty or a previous build, and apart
from the cache and the TFTP root; two runs on one output do not interleave; a killed run's
staging tree is cleaned up. In the TFTP root (written as root, served to the LAN) deploy follows
no link it did not make and removes nothing outside the root.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from steps import deploy
from steps.answers import Answers
from steps.base import StepContext
from steps.demo.factory import Mirror
from steps.errors import AnswersError, FirecoreError
from steps.events import Progress
from steps.remaster import RemasterStep
from tests.support import remaster_support as rs
from tests.support.boot_tree import make_build
from tests.test_remaster import Build


def _run(b: Build) -> None:
    list(RemasterStep().run(rs.context(b.answers, b.tmp / "cache", *b.inputs())))


def test_a_directory_with_the_users_files_is_not_replaced(
    fake_mirror: Mirror, tmp_path: Path
) -> None:
    b = Build(fake_mirror, "15.0.0", tmp_path)
    b.out.mkdir(parents=True)
    (b.out / "thesis.tex").write_text("two years of work")
    with pytest.raises(AnswersError) as err:
        _run(b)
    assert err.value.key == "build.output"
    assert (b.out / "thesis.tex").read_text() == "two years of work"
    assert sorted(p.name for p in b.out.iterdir()) == ["thesis.tex"]


@pytest.mark.parametrize("where", ["cache", "inside-cache", "tftp", "parent-of-tftp"])
def test_output_overlapping_the_cache_or_the_tftp_root_is_refused(
    fake_mirror: Mirror, tmp_path: Path, where: str
) -> None:
    b = Build(fake_mirror, "15.0.0", tmp_path)
    b.answers.network.tftp_root = str(tmp_path / "srv" / "tftp")
    b.answers.build.output = str(
        {
            "cache": tmp_path / "cache",
            "inside-cache": tmp_path / "cache" / "boot",
            "tftp": tmp_path / "srv" / "tftp",
            "parent-of-tftp": tmp_path / "srv",
        }[where]
    )
    with pytest.raises(AnswersError) as err:
        _run(b)
    assert err.value.key == "build.output"
    assert "overlaps" in err.value.message


def test_a_second_run_on_the_same_output_fails_clearly_while_the_first_writes(
    fake_mirror: Mirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import steps.remaster as remaster

    monkeypatch.setattr(remaster, "_LOCK_WAIT", 0.2)
    first = Build(fake_mirror, "15.0.0", tmp_path)
    gen = RemasterStep().run(rs.context(first.answers, tmp_path / "cache", *first.inputs()))
    for event in gen:  # run 1 stops in the middle of writing the tree, holding the output
        if isinstance(event, Progress) and event.phase == "write":
            break
    second = Build(fake_mirror, "15.0.0", tmp_path)
    second.bundle = rs.app_bundle(second.app_dir, message="run two")
    with pytest.raises(FirecoreError, match="another build"):
        _run(second)
    list(gen)  # run 1 finishes undisturbed
    assert (first.out / "manifest.json").is_file()


def test_staging_left_by_a_killed_run_is_removed(fake_mirror: Mirror, tmp_path: Path) -> None:
    b = Build(fake_mirror, "15.0.0", tmp_path)
    left = b.out.parent / f".{b.out.name}.staging-kill9"
    (left / "sub").mkdir(parents=True)
    (left / "sub" / "overlay.gz").write_bytes(b"half")
    _run(b)
    assert not left.exists()
    assert (b.out / "manifest.json").is_file()


@pytest.fixture
def deploy_setup(answers: Answers, tmp_path: Path) -> tuple[Answers, Path]:
    answers.network.tftp_root = str(tmp_path / "tftp")
    make_build(Path(answers.build.output))
    (tmp_path / "tftp").mkdir()
    return answers, tmp_path / "tftp"


def test_a_planted_lock_symlink_is_not_followed(
    deploy_setup: tuple[Answers, Path], tmp_path: Path
) -> None:
    answers, root = deploy_setup
    victim = tmp_path / "shadow"
    victim.write_text("root:x:0:0\n")
    os.symlink(victim, root / ".deploy.lock")
    with pytest.raises(FirecoreError, match="symlink"):
        list(deploy.DeployStep().run(StepContext(answers=answers)))
    assert victim.read_text() == "root:x:0:0\n"


def test_a_planted_releases_symlink_is_refused_and_nothing_outside_is_touched(
    deploy_setup: tuple[Answers, Path], tmp_path: Path
) -> None:
    answers, root = deploy_setup
    elsewhere = tmp_path / "precious"
    (elsewhere / "20000101T000000.000000Z-old").mkdir(parents=True)
    (elsewhere / "20000101T000000.000000Z-old" / "data").write_text("keep me")
    os.symlink(elsewhere, root / "releases")
    answers.deploy.keep = 1
    with pytest.raises(FirecoreError, match="symlink"):
        list(deploy.DeployStep().run(StepContext(answers=answers)))
    assert sorted(p.name for p in elsewhere.iterdir()) == ["20000101T000000.000000Z-old"]
    assert (elsewhere / "20000101T000000.000000Z-old" / "data").read_text() == "keep me"


def test_a_releases_directory_owned_by_someone_else_is_refused(
    deploy_setup: tuple[Answers, Path],
) -> None:
    answers, root = deploy_setup
    (root / "releases").mkdir()
    os.chown(root / "releases", 4242, 4242)
    with pytest.raises(FirecoreError, match="owned by uid 4242"):
        list(deploy.DeployStep().run(StepContext(answers=answers)))
