"""The wheels step: real pip, offline, against a local wheelhouse of wheels built here."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from steps.answers import default_answers
from steps.artifacts import Extension, ExtensionSet
from steps.base import StepContext
from steps.errors import AnswersError, Cancelled
from steps.events import Event, LogLine, drive
from steps.picore.wheels import (
    WheelError,
    WheelSet,
    install,
    missing_libraries,
    python_version,
    target_for,
)
from tests.support.elf import shared_object
from tests.support.wheelhouse import (
    PI_AARCH64_311,
    PI_ARMV7_38,
    PI_ARMV7_311,
    X86_64_311,
    make_wheel,
)


@pytest.fixture
def wheelhouse(tmp_path: Path) -> Path:
    wh = tmp_path / "wheelhouse"
    # purelib needs fastcalc everywhere, and backport only on Python < 3.9
    make_wheel(wh, "purelib", requires=["fastcalc", 'backport; python_version < "3.9"'])
    make_wheel(wh, "backport")
    make_wheel(wh, "fastcalc", tag=PI_ARMV7_311)
    make_wheel(wh, "fastcalc", tag=PI_AARCH64_311)
    make_wheel(wh, "fastcalc", tag=PI_ARMV7_38)
    make_wheel(wh, "nativeonly", tag=X86_64_311)
    return wh


def installed(ws: WheelSet) -> dict[str, str]:
    """dist name → the wheel Tag recorded in its installed WHEEL file."""
    out = {}
    for dist in ws.site_packages.glob("*.dist-info"):
        wheel = (dist / "WHEEL").read_text()
        tag = next(line.split(": ", 1)[1] for line in wheel.splitlines() if line.startswith("Tag"))
        out[dist.name.split("-")[0]] = tag
    return out


def exts(*names: str, requested: tuple[str, ...] = ()) -> ExtensionSet:
    return ExtensionSet(
        requested=requested or names, packages=tuple(Extension(n, (), (n,)) for n in names)
    )


def test_platform_tags_per_arch() -> None:
    assert target_for("armv6", "3.8").platforms == ("linux_armv6l",)
    armhf = target_for("armhf", "3.11", glibc=(2, 36))
    assert armhf.platform == "manylinux2014_armv7l"
    assert "manylinux_2_17_armv7l" in armhf.platforms and "linux_armv7l" in armhf.platforms
    assert not any("aarch64" in p for p in armhf.platforms)
    assert target_for("armv7l", "3.11").platforms == target_for("armv7", "3.11").platforms
    arm64 = target_for("aarch64", "3.11")
    assert arm64.platform == "manylinux2014_aarch64" and arm64.machine == "aarch64"


def test_manylinux_tags_follow_the_releases_own_glibc() -> None:
    """PEP 600: manylinux_2_N needs glibc ≥ 2.N — the release's libc.so.6 says which N."""
    tags = target_for("armhf", "3.11", glibc=(2, 36)).platforms
    assert "manylinux_2_36_armv7l" in tags and "manylinux_2_37_armv7l" not in tags
    assert "manylinux_2_28_armv7l" not in target_for("armhf", "3.11", glibc=(2, 27)).platforms
    unknown = target_for("armhf", "3.11").platforms  # no libc.so.6 read: manylinux2014 only
    assert unknown == ("manylinux2014_armv7l", "manylinux_2_17_armv7l", "linux_armv7l")


@pytest.mark.parametrize("board", ["pi0", "pi1"])
def test_armhf_serving_an_armv6_board_takes_only_armv6l_or_pure_wheels(
    tmp_path: Path, wheelhouse: Path, board: str
) -> None:
    """From 15.x one armhf rootfs also boots the ARMv6 Pi Zero/1, where armv7l code faults."""
    target = target_for("armhf", "3.11", glibc=(2, 36), boards=["pi3", board])
    assert target.platforms == ("linux_armv6l",) and target.armv6_boards == (board,)
    ctx = StepContext(default_answers())
    with pytest.raises(WheelError) as err:  # fastcalc exists only for armv7l/aarch64
        drive(install("app", ctx, ["purelib"], target, tmp_path / "c", wheelhouse))
    assert err.value.package == "fastcalc" and f"includes {board} (ARMv6)" in err.value.message
    assert f"remove {board} from release.boards" in err.value.fix
    make_wheel(wheelhouse, "fastcalc", "1.0", "cp311-cp311-linux_armv6l")
    ws = drive(install("app", ctx, ["purelib"], target, tmp_path / "c2", wheelhouse))
    assert installed(ws)["fastcalc"] == "cp311-cp311-linux_armv6l"


def test_missing_libraries_are_read_from_dt_needed(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    (site / "fastcalc").mkdir(parents=True)
    (site / "fastcalc.libs").mkdir()
    (site / "fastcalc" / "_core.cpython-311-arm-linux-gnueabihf.so").write_bytes(
        shared_object(["libstdc++.so.6", "libc.so.6", "libopenblas-1a2b.so.0"])
    )
    (site / "fastcalc.libs" / "libopenblas-1a2b.so.0").write_bytes(shared_object(["libm.so.6"]))
    (site / "fastcalc" / "pure.py").write_text("x = 1\n")
    base = {"libc.so.6", "libm.so.6", "ld-linux-armhf.so.3"}
    missing = missing_libraries(site, base)
    assert [(m.soname, m.needed_by) for m in missing] == [
        ("libstdc++.so.6", ("fastcalc/_core.cpython-311-arm-linux-gnueabihf.so",))
    ]
    assert missing_libraries(site, base | {"libstdc++.so.6"}) == []


def test_python_version_from_the_extension_closure() -> None:
    assert python_version(exts("openssh.tcz", "python3.11.tcz")) == "3.11"
    both = exts("python3.8.tcz", "python3.11.tcz", requested=("python3.8.tcz",))
    assert python_version(both) == "3.8"  # the requested one wins over a dependency
    with pytest.raises(AnswersError) as err:
        python_version(exts("openssh.tcz"))
    assert err.value.key == "extensions.names"
    assert "python3.11.tcz" in err.value.fix


def test_armv7l_311_picks_the_pi_wheels_and_records_sha256(
    tmp_path: Path, wheelhouse: Path
) -> None:
    ctx = StepContext(default_answers())
    target = target_for("armhf", "3.11", glibc=(2, 36))
    events: list[Event] = []
    ws = drive(install("app", ctx, ["purelib"], target, tmp_path / "c", wheelhouse), events.append)
    assert installed(ws) == {"purelib": "py3-none-any", "fastcalc": PI_ARMV7_311}
    assert (
        ws.site_packages / "fastcalc" / "__init__.py"
    ).read_text() == f"TAG = {PI_ARMV7_311!r}\n"
    name = f"fastcalc-1.0-{PI_ARMV7_311}.whl"
    assert ws.wheels[name] == hashlib.sha256((wheelhouse / name).read_bytes()).hexdigest()
    assert set(ws.wheels) == {name, "purelib-1.0-py3-none-any.whl"}
    assert not ws.cached
    assert any(isinstance(e, LogLine) and e.stream == "cmd" for e in events)
    assert not list(ws.site_packages.rglob("*.pyc"))  # nothing compiled for the wrong Python


def test_python38_gets_dependencies_whose_markers_hold_only_on_the_pi(
    tmp_path: Path, wheelhouse: Path
) -> None:
    ctx = StepContext(default_answers())
    target = target_for("armv7", "3.8", glibc=(2, 31))
    ws = drive(install("app", ctx, ["purelib"], target, tmp_path / "c", wheelhouse))
    # pip evaluated `python_version < "3.9"` for this 3.11 host; the step re-checked for 3.8
    assert installed(ws) == {
        "purelib": "py3-none-any",
        "fastcalc": PI_ARMV7_38,
        "backport": "py3-none-any",
    }


def test_aarch64_picks_the_aarch64_wheel(tmp_path: Path, wheelhouse: Path) -> None:
    ctx = StepContext(default_answers())
    target = target_for("aarch64", "3.11", glibc=(2, 38))
    ws = drive(install("app", ctx, ["purelib"], target, tmp_path / "c", wheelhouse))
    assert installed(ws)["fastcalc"] == PI_AARCH64_311


def test_a_package_without_a_pi_wheel_is_named_with_the_fix(
    tmp_path: Path, wheelhouse: Path
) -> None:
    ctx = StepContext(default_answers())
    target = target_for("armhf", "3.11", glibc=(2, 36))
    with pytest.raises(WheelError) as err:
        drive(install("app", ctx, ["purelib", "nativeonly"], target, tmp_path / "c", wheelhouse))
    assert err.value.package == "nativeonly"
    assert "nativeonly has no wheel for the Pi (CPython 3.11 on manylinux2014_armv7l)" in str(
        err.value.message
    )
    assert "app.wheelhouse" in err.value.fix and "pure-Python" in err.value.fix
    assert err.value.exit_code == 1
    assert not list((tmp_path / "c" / "wheels").iterdir())  # no half-built cache entry


def test_the_installed_tree_is_cached_by_its_inputs(tmp_path: Path, wheelhouse: Path) -> None:
    ctx = StepContext(default_answers())
    target = target_for("armhf", "3.11", glibc=(2, 36))
    cache = tmp_path / "c"
    first = drive(install("app", ctx, ["purelib"], target, cache, wheelhouse))
    events: list[Event] = []
    again = drive(install("app", ctx, ["purelib"], target, cache, wheelhouse), events.append)
    assert again.cached and again.site_packages == first.site_packages
    assert again.wheels == first.wheels
    assert not any(isinstance(e, LogLine) and e.stream == "cmd" for e in events)  # no pip run
    make_wheel(wheelhouse, "fastcalc", "1.1", PI_ARMV7_311)  # wheelhouse content changed
    newer = drive(install("app", ctx, ["purelib"], target, cache, wheelhouse))
    assert not newer.cached and newer.key != first.key
    assert f"fastcalc-1.1-{PI_ARMV7_311}.whl" in newer.wheels


def test_bad_wheelhouse_and_cancel(tmp_path: Path, wheelhouse: Path) -> None:
    ctx = StepContext(default_answers())
    target = target_for("armhf", "3.11", glibc=(2, 36))
    with pytest.raises(AnswersError) as err:
        drive(install("app", ctx, ["purelib"], target, tmp_path / "c", tmp_path / "missing"))
    assert err.value.key == "app.wheelhouse"
    ctx.cancel.set()
    with pytest.raises(Cancelled):
        drive(install("app", ctx, ["purelib"], target, tmp_path / "c", wheelhouse))
    assert not (tmp_path / "c" / "wheels").exists() or not any(
        (tmp_path / "c" / "wheels").iterdir()
    )
