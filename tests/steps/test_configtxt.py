"""config.txt / cmdline.txt models: byte-exact round trips, per-board queries, minimal patches."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from steps.demo.factory import Mirror
from steps.errors import RemasterError
from steps.picore.configtxt import Cmdline, ConfigTxt

# piCore 12.0's config.txt as quoted in reference/picore.md §2.3 (CS@b247d20), verbatim.
PICORE_12 = (
    (
        "# For more options and information see \n"  # sic: the template has a trailing blank
    )
    + """\
# http://www.raspberrypi.org/documentation/configuration/config-txt.md
# Some settings may impact device functionality. See link above for details
#
# For Device-tree overlays, please reference overlays/README on the boot partition.
#

[PI0]
initramfs rootfs-piCore-12.0.gz,modules-5.4.51-piCore.gz followkernel
kernel kernel5451.img

[PI1]
initramfs rootfs-piCore-12.0.gz,modules-5.4.51-piCore.gz followkernel
kernel kernel5451.img

[PI2]
initramfs rootfs-piCore-12.0.gz,modules-5.4.51-piCore-v7.gz followkernel
kernel kernel5451v7.img

[PI3]
initramfs rootfs-piCore-12.0.gz,modules-5.4.51-piCore-v7.gz followkernel
kernel kernel5451v7.img

[PI4]
initramfs rootfs-piCore-12.0.gz,modules-5.4.51-piCore-v7l.gz followkernel
kernel kernel5451v7l.img

[ALL]
cmdline cmdline.txt

# [... ~45 lines of commented-out RPi defaults: hdmi_safe, overscan_*, framebuffer_*,
#      hdmi_force_hotplug, hdmi_group/mode, hdmi_drive, config_hdmi_boost, sdtv_mode,
#      arm_freq, dtparam=i2c_arm/i2s/spi, gpio-ir overlays ...]

# Enable audio (loads snd_bcm2835)
dtparam=audio=on

[PI3]
# Enable DRM VC4 V3D driver on top of the dispmanx display stack
#dtoverlay=vc4-kms-v3d

[PI4]
# Enable DRM VC4 V3D driver on top of the dispmanx display stack
#dtoverlay=vc4-kms-v3d-pi4
max_framebuffers=2

[all]
#dtoverlay=vc4-fkms-v3d
"""
)

CMDLINE_12 = (
    "zswap.compressor=lz4 zswap.zpool=z3fold console=tty1 root=/dev/ram0 elevator=deadline "
    "rootwait quiet nortc loglevel=3 noembed\n"
)


def _variants(text: str) -> list[str]:
    return [
        text,
        text.replace("\n", "\r\n"),
        text.rstrip("\n"),
        "\ufeff" + text,
        text.replace("[PI3]\n", "[PI3]\r\n", 1),  # mixed endings
        text + "\n\n   \n",
        "",
        "\n",
    ]


@pytest.mark.parametrize("variant", range(8))
def test_round_trip_is_byte_identical(variant: int) -> None:
    text = _variants(PICORE_12)[variant]
    config = ConfigTxt.parse(text)
    assert config.text == text
    assert ConfigTxt.from_bytes(text.encode()).to_bytes() == text.encode()


def test_round_trip_keeps_bytes_that_are_not_utf8() -> None:
    data = PICORE_12.encode().replace(b"# Enable audio", b"# Audio \xe9\xff")
    assert ConfigTxt.from_bytes(data).to_bytes() == data
    assert ConfigTxt.from_bytes(data).boot_for("pi3").kernel_release == "5.4.51-piCore-v7"


def test_round_trip_of_every_fixture_config(fake_mirror: Mirror) -> None:
    for rel in fake_mirror.releases:
        config = ConfigTxt.parse(rel.config_txt)
        assert config.text == rel.config_txt
        assert config.with_initramfs("overlay.gz").text != rel.config_txt


@pytest.mark.parametrize(
    ("board", "release", "kernel"),
    [
        ("pi0", "5.4.51-piCore", "kernel5451.img"),
        ("pi1", "5.4.51-piCore", "kernel5451.img"),
        ("pi2", "5.4.51-piCore-v7", "kernel5451v7.img"),
        ("pi3", "5.4.51-piCore-v7", "kernel5451v7.img"),
        ("pi4", "5.4.51-piCore-v7l", "kernel5451v7l.img"),
        # 12.0 has no [PI02]: a Zero 2 W also matches [pi0] (firmware docs), so it gets PI0's
        ("pi02", "5.4.51-piCore", "kernel5451.img"),
    ],
)
def test_picore_12_boards(board: str, release: str, kernel: str) -> None:
    boot = ConfigTxt.parse(PICORE_12).boot_for(board)
    assert boot.kernel_release == release
    assert boot.kernel == kernel
    assert boot.initramfs == ("rootfs-piCore-12.0.gz", f"modules-{release}.gz")
    assert boot.modules == f"modules-{release}.gz"
    assert boot.cmdline == "cmdline.txt"
    assert not boot.arm_64bit


def test_picore_12_sections_for_pi4_in_order() -> None:
    config = ConfigTxt.parse(PICORE_12)
    assert config.applying_sections("pi4") == ["", "[PI4]", "[ALL]", "[PI4]", "[all]"]
    assert config.applying_sections("pi3") == ["", "[PI3]", "[ALL]", "[PI3]", "[all]"]
    settings = dict(config.settings("pi4"))
    assert settings["max_framebuffers"] == "2"
    assert "max_framebuffers" not in dict(config.settings("pi3"))


def test_board_without_section_is_a_clear_error() -> None:
    with pytest.raises(RemasterError) as err:
        ConfigTxt.parse(PICORE_12, "piCore-12.0.img:config.txt").boot_for("pi5")
    assert "piCore-12.0.img:config.txt" in err.value.message
    assert "pi5" in err.value.message and "initramfs" in err.value.message
    assert "release.boards" in err.value.fix


def test_unknown_board_is_rejected() -> None:
    with pytest.raises(RemasterError, match="unknown board"):
        ConfigTxt.parse(PICORE_12).boot_for("pi9")


def test_fixture_kernel_releases(fake_mirror: Mirror) -> None:
    c15 = ConfigTxt.parse(fake_mirror.release("15.0.0").config_txt)
    assert c15.boot_for("pi4").kernel_release == "6.6.47-piCore-v8"
    assert c15.boot_for("pi4").arm_64bit
    assert c15.boot_for("pi4").kernel == "kernel6647v8.img"
    assert c15.boot_for("pi5").kernel_release == "6.6.47-piCore-v8"
    assert c15.boot_for("pi3").kernel_release == "6.6.47-piCore-v7"
    assert not c15.boot_for("pi3").arm_64bit
    # [PI02] comes after [PI0], which also matches a Zero 2 W: the later lines win
    assert c15.boot_for("pi02").kernel_release == "6.6.47-piCore-v7"
    assert c15.boot_for("pi0").kernel_release == "6.6.47-piCore"
    assert c15.applying_sections("pi02")[:3] == ["", "[PI0]", "[PI02]"]

    c64 = ConfigTxt.parse(fake_mirror.release("16.0.0").config_txt)
    assert c64.kernel_releases(["pi3", "pi4", "pi5"]) == {
        "pi3": "6.12.25-piCore-v8",
        "pi4": "6.12.25-piCore-v8",
        "pi5": "6.12.25-piCore-v8-16k",
    }
    assert c64.boot_for("pi3").arm_64bit  # from [ALL]
    assert c64.boot_for("pi4").initramfs[0] == "rootfs-piCore64-16.0.gz"
    with pytest.raises(RemasterError, match="pi1"):
        c64.boot_for("pi1")
    for rel in fake_mirror.releases:
        assert ConfigTxt.parse(rel.config_txt).kernel_releases(rel.kernels) == rel.kernels


def test_filter_semantics() -> None:
    text = (
        "[pi4]\ninitramfs a.gz,modules-1.0-piCore-v8.gz followkernel\nkernel k8.img\n"
        "[tryboot]\nkernel tryboot.img\n"  # combines with [pi4]: not a normal boot
        "[all]\n[none]\nkernel never.img\n"
        "[EDID=VSC-TD2220]\nkernel edid.img\n"
        "[all]\n[0x1234abcd]\nkernel serial.img\n"
        "[pi3]\nkernel serial-pi3.img\n"  # the serial filter stays: both must match
        "[ALL]\n[CM4]\nkernel cm4.img\n"
        "[all]\n"
    )
    config = ConfigTxt.parse(text)
    assert config.boot_for("pi4").kernel == "k8.img"
    assert config.boot_for("pi4", serial="1234abcd").kernel == "serial.img"
    assert config.boot_for("pi4", serial="0x1234ABCD").kernel == "serial.img"
    assert config.boot_for("pi4", serial="99999999").kernel == "k8.img"
    with pytest.raises(RemasterError):
        config.boot_for("pi3")  # no initramfs applies to pi3
    text3 = text.replace("[pi4]", "[all]")
    assert ConfigTxt.parse(text3).boot_for("pi3", serial="1234abcd").kernel == "serial-pi3.img"
    assert ConfigTxt.parse(text3).boot_for("pi4", serial="1234abcd").kernel == "serial.img"


def test_equals_syntax_and_dashed_kernel_names() -> None:
    text = "kernel=kernel-5.10.16-piCore-v7.img\ninitramfs rootfs-piCore-13.0.3.gz\n"
    boot = ConfigTxt.parse(text).boot_for("pi3")
    assert boot.kernel == "kernel-5.10.16-piCore-v7.img"
    assert boot.initramfs == ("rootfs-piCore-13.0.3.gz",)
    assert boot.kernel_release == "5.10.16-piCore-v7"
    boot = ConfigTxt.parse("initramfs=a.gz,modules-6.1.25-piCore-v7l.gz\nkernel k.img").boot_for(
        "pi4"
    )
    assert boot.kernel_release == "6.1.25-piCore-v7l"


def test_release_that_cannot_be_told_is_an_error() -> None:
    with pytest.raises(RemasterError, match="cannot tell the kernel release"):
        ConfigTxt.parse("initramfs rootfs.gz followkernel\nkernel kernel5451.img\n").boot_for("pi3")
    with pytest.raises(RemasterError, match="no `kernel` line"):
        ConfigTxt.parse("initramfs rootfs.gz,modules-1-piCore.gz followkernel\n").boot_for("pi3")


def test_with_initramfs_matches_firecores_sed_and_changes_nothing_else(tmp_path: Path) -> None:
    config = ConfigTxt.parse(PICORE_12)
    patched = config.with_initramfs("overlay.gz")
    src = tmp_path / "config.txt"
    src.write_text(PICORE_12)
    # fireCore's Makefile does exactly this (picore.md §2.3): an independent oracle
    sed = subprocess.run(
        ["sed", r"s/\(initramfs [^ ]*\)/\1,overlay.gz/g", str(src)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert patched.text == sed
    before, after = PICORE_12.splitlines(), patched.text.splitlines()
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert changed == config.initramfs_lines()
    assert len(changed) == 5
    for i in changed:
        assert after[i].startswith("initramfs ")
        assert after[i].endswith(",overlay.gz followkernel")
    assert patched.boot_for("pi4").initramfs[-1] == "overlay.gz"
    assert patched.with_initramfs("overlay.gz") == patched  # idempotent


def test_with_initramfs_keeps_line_endings_and_variants() -> None:
    text = "[pi4]\r\ninitramfs=a.gz,b.gz\r\nkernel=k.img\r\n[all]\r\ninitramfs c.gz followkernel"
    patched = ConfigTxt.parse(text).with_initramfs("overlay.gz").text
    assert patched == (
        "[pi4]\r\ninitramfs=a.gz,b.gz,overlay.gz\r\nkernel=k.img\r\n[all]\r\n"
        "initramfs c.gz,overlay.gz followkernel"
    )


def test_with_initramfs_without_any_initramfs_line() -> None:
    with pytest.raises(RemasterError, match="no `initramfs` line") as err:
        ConfigTxt.parse("kernel kernel.img\n", "x.img:config.txt").with_initramfs()
    assert "x.img:config.txt" in err.value.message
    with pytest.raises(ValueError):
        ConfigTxt.parse(PICORE_12).with_initramfs("a,b")


def test_with_lines_appends_under_all_once() -> None:
    config = ConfigTxt.parse(PICORE_12.replace("\n", "\r\n").rstrip("\r\n"))
    extra = ["dtoverlay=w1-gpio", "kernel kernel-9.9.9-piCore-v7.img"]
    patched = config.with_lines(extra)
    assert patched.text.startswith(config.text + "\r\n")
    assert patched.text.endswith("\r\ndtoverlay=w1-gpio\r\nkernel kernel-9.9.9-piCore-v7.img\r\n")
    assert "[all]" not in patched.text[len(config.text) :]  # the file already ends under [all]
    assert patched.with_lines(extra) == patched
    assert patched.boot_for("pi3").kernel == "kernel-9.9.9-piCore-v7.img"
    ends_in_pi4 = ConfigTxt.parse("[pi4]\nx=1\n").with_lines(["y=2"])
    assert ends_in_pi4.text == "[pi4]\nx=1\n[all]\ny=2\n"
    assert ConfigTxt.parse("[pi4]\n").with_lines(["z=1"], section="pi4").text == "[pi4]\nz=1\n"


def test_referenced_files() -> None:
    files = ConfigTxt.parse(PICORE_12).referenced_files()
    assert files == [
        "rootfs-piCore-12.0.gz",
        "modules-5.4.51-piCore.gz",
        "kernel5451.img",
        "modules-5.4.51-piCore-v7.gz",
        "kernel5451v7.img",
        "modules-5.4.51-piCore-v7l.gz",
        "kernel5451v7l.img",
    ]


def test_cmdline_flags() -> None:
    cmd = Cmdline(CMDLINE_12)
    assert cmd.flags[0] == "zswap.compressor=lz4"
    assert cmd.get("root") == "/dev/ram0"
    assert cmd.get("nortc") == ""
    assert cmd.get("host") is None
    assert cmd.with_flags("nortc", "noembed") is cmd  # already there: same bytes
    patched = cmd.with_flags("nortc", "host=pi-a", "norestore")
    assert patched.text == CMDLINE_12[:-1] + " host=pi-a norestore\n"
    assert patched.with_flags("host=pi-a", "norestore").text == patched.text
    again = patched.with_flags("host=pi-b")
    assert again.text == CMDLINE_12[:-1] + " host=pi-b norestore\n"
    assert again.flags.count("host=pi-b") == 1
    # console may repeat: it is added, never replaced
    assert Cmdline("console=tty1 quiet").with_flags("console=serial0,115200").flags == [
        "console=tty1",
        "quiet",
        "console=serial0,115200",
    ]


def test_cmdline_keeps_everything_else() -> None:
    assert Cmdline("a  b\r\nsecond line\n").with_flags("c").text == "a  b c\r\nsecond line\n"
    assert Cmdline("a b").with_flags("c").text == "a b c"
    assert Cmdline("").with_flags("nortc").text == "nortc"
    assert Cmdline("root=/dev/ram0 quiet ").with_flags("root=/dev/ram1").text == (
        "root=/dev/ram1 quiet "
    )
    data = b"quiet \xff\n"
    assert Cmdline.from_bytes(data).to_bytes() == data
    with pytest.raises(ValueError):
        Cmdline("x").with_flags("two words")


def test_firmware_limits_line_length_and_4096_bytes() -> None:
    """98 characters per line (what_is_config_txt.adoc), 4096 bytes on a netbooted Pi 4."""
    long_comment = "# " + "c" * 120
    exact = "dtparam=" + "a" * 90  # 98 characters: read whole
    cfg = ConfigTxt.parse(f"{long_comment}\n{exact}\n[pi4]\ndtoverlay={'b' * 95}\n")
    assert cfg.overlong() == [3] and cfg.line_length(1) == 98
    filler = "".join(f"# filler line {i:04d} " + "f" * 40 + "\n" for i in range(68))
    text = filler + "enable_uart=1\n"
    # the setting's last character sits at byte 4095 (kept) or 4096 (lost, firmware #1575)
    pad = 4096 - len(text.encode())
    kept = ConfigTxt.parse(filler + "#" * pad + "\n" + "enable_uart=1\n")
    assert kept.to_bytes().index(b"=1\n") + 1 == 4095 and kept.past() == []
    lost = ConfigTxt.parse(filler + "#" * (pad + 1) + "\n" + "enable_uart=1\n")
    assert [lost.lines[i].text for i in lost.past()] == ["enable_uart=1"]


def test_changed_from_names_patched_and_appended_lines() -> None:
    base = ConfigTxt.parse(PICORE_12)
    patched = base.with_initramfs("overlay.gz").with_lines(["dtoverlay=disable-bt"])
    changed = patched.changed_from(base)
    assert all(
        patched.lines[i].text.startswith(("initramfs", "[all]", "dtoverlay")) for i in changed
    )
    assert patched.lines[changed[-1]].text == "dtoverlay=disable-bt"
    assert base.changed_from(base) == []
