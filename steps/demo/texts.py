"""Text files of the fake releases: config.txt, cmdline.txt, piCore's default boot scripts.

config.txt follows piCore's templates (picore.md §2.3, Core-scripts ``boot-partition/``): the
12.0 sections verbatim, the 15.0 layout with ``[PI02]``/``[PI5]`` and a 64-bit v8 kernel for
Pi 4/5, and the piCore64 layout. The long block of commented-out Raspberry Pi defaults is the
usual one, so parsers meet real-looking comments.
"""

from __future__ import annotations

from steps.demo.specs import ReleaseSpec

HEADER = (
    (
        "# For more options and information see \n"  # sic: piCore's template has the blank
    )
    + """\
# http://www.raspberrypi.org/documentation/configuration/config-txt.md
# Some settings may impact device functionality. See link above for details
#
# For Device-tree overlays, please reference overlays/README on the boot partition.
#
"""
)

RPI_DEFAULTS = """\
# uncomment if you get no picture on HDMI for a default "safe" mode
#hdmi_safe=1

# uncomment this if your display has a black border of unused pixels visible
# and your display can output without overscan
#disable_overscan=1

# uncomment the following to adjust overscan. Use positive numbers if console
# goes off screen, and negative if there is too much border
#overscan_left=16
#overscan_right=16
#overscan_top=16
#overscan_bottom=16

# uncomment to force a console size. By default it will be display's size minus
# overscan.
#framebuffer_width=1280
#framebuffer_height=720

# uncomment if hdmi display is not detected and composite is being output
#hdmi_force_hotplug=1

# uncomment to force a specific HDMI mode (this will force VGA)
#hdmi_group=1
#hdmi_mode=1

# uncomment to force a HDMI mode rather than DVI. This can make audio work in
# DMT (computer monitor) modes
#hdmi_drive=2

# uncomment to increase signal to HDMI, if you have interference, blanking, or
# no display
#config_hdmi_boost=4

# uncomment for composite PAL
#sdtv_mode=2

#uncomment to overclock the arm. 700 MHz is the default.
#arm_freq=800

# Uncomment some or all of these to enable the optional hardware interfaces
#dtparam=i2c_arm=on
#dtparam=i2s=on
#dtparam=spi=on

# Uncomment this to enable infrared communication.
#dtoverlay=gpio-ir,gpio_pin=17
#dtoverlay=gpio-ir-tx,gpio_pin=18
"""


def _boot_block(spec: ReleaseSpec, section: str, suffix: str, extra: str = "") -> str:
    return (
        f"[{section}]\n"
        f"initramfs {spec.rootfs},modules-{spec.kernel}-piCore{suffix}.gz followkernel\n"
        f"kernel {spec.kernel_file(suffix)}\n"
        f"{extra}"
        "\n"
    )


def config_txt(spec: ReleaseSpec) -> str:
    """The release's config.txt."""
    if spec.style == "12":
        text = _config_12(spec)
    elif spec.style == "15":
        text = _config_15(spec)
    else:
        text = _config_64(spec)
    return text if spec.final_newline else text.rstrip("\n")


def _config_12(spec: ReleaseSpec) -> str:
    blocks = "".join(
        _boot_block(spec, s, suffix)
        for s, suffix in (("PI0", ""), ("PI1", ""), ("PI2", "-v7"), ("PI3", "-v7"), ("PI4", "-v7l"))
    )
    return (
        HEADER
        + "\n"
        + blocks
        + "[ALL]\ncmdline cmdline.txt\n\n"
        + RPI_DEFAULTS
        + "\n# Enable audio (loads snd_bcm2835)\ndtparam=audio=on\n\n"
        + "[PI3]\n# Enable DRM VC4 V3D driver on top of the dispmanx display stack\n"
        + "#dtoverlay=vc4-kms-v3d\n\n"
        + "[PI4]\n# Enable DRM VC4 V3D driver on top of the dispmanx display stack\n"
        + "#dtoverlay=vc4-kms-v3d-pi4\nmax_framebuffers=2\n\n"
        + "[all]\n#dtoverlay=vc4-fkms-v3d\n"
    )


def _config_15(spec: ReleaseSpec) -> str:
    blocks = "".join(
        _boot_block(spec, s, suffix, extra)
        for s, suffix, extra in (
            ("PI0", "", ""),
            ("PI02", "-v7", ""),
            ("PI1", "", ""),
            ("PI2", "-v7", ""),
            ("PI3", "-v7", ""),
            ("PI4", "-v8", "arm_64bit=1\n"),
            ("PI5", "-v8", "arm_64bit=1\n"),
        )
    )
    return (
        HEADER
        + "\n"
        + blocks
        + "[ALL]\ncmdline cmdline.txt\narm_boost=1\n\n"
        + RPI_DEFAULTS
        + "\n# Enable audio (loads snd_bcm2835)\ndtparam=audio=on\n\n"
        + "[PI4]\n# Enable DRM VC4 V3D driver on top of the dispmanx display stack\n"
        + "dtoverlay=vc4-kms-v3d-pi4\nmax_framebuffers=2\ndisable_fw_kms_setup=1\n\n"
        + "[PI5]\ndtoverlay=vc4-kms-v3d\nmax_framebuffers=2\n\n"
        + "[all]\n#dtoverlay=vc4-fkms-v3d\n"
    )


def _config_64(spec: ReleaseSpec) -> str:
    blocks = "".join(
        _boot_block(spec, s, suffix)
        for s, suffix in (("PI02", "-v8"), ("PI3", "-v8"), ("PI4", "-v8"), ("PI5", "-v8-16k"))
    )
    return (
        HEADER
        + "\n"
        + blocks
        + "[CM4]\notg_mode=1\n\n"
        + "[cm5]\ndtoverlay=dwc2,dr_mode=host\n\n"
        + "[ALL]\ncmdline cmdline.txt\narm_64bit=1\narm_boost=1\n\n"
        + RPI_DEFAULTS
        + "\n# Enable audio (loads snd_bcm2835)\ndtparam=audio=on\n\n"
        + "[PI4]\n# Enable DRM VC4 V3D driver on top of the dispmanx display stack\n"
        + "dtoverlay=vc4-kms-v3d-pi4\nmax_framebuffers=2\n\n"
        + "[all]\n#dtoverlay=vc4-fkms-v3d\n"
    )


CMDLINES: dict[str, str] = {
    "12": "zswap.compressor=lz4 zswap.zpool=z3fold console=tty1 root=/dev/ram0 "
    "elevator=deadline rootwait quiet nortc loglevel=3 noembed",
    "15": "zswap.compressor=lz4 zswap.zpool=z3fold dwc_otg.fiq_fsm_mask=0xF "
    "dwc_otg.lpm_enable=0 console=tty1 root=/dev/ram0 rootwait quiet nortc loglevel=3 noembed",
    "16": "dwc_otg.fiq_fsm_mask=0xF dwc_otg.lpm_enable=0 console=tty1 root=/dev/ram0 rootwait "
    "quiet nortc loglevel=3 noembed",
}


def cmdline_txt(spec: ReleaseSpec) -> str:
    """The release's cmdline.txt (one line, newline-terminated)."""
    key = "12" if spec.major == "12" else ("16" if int(spec.major) >= 16 else "15")
    return CMDLINES[key] + "\n"


BOOTSYNC = (
    """\
#!/bin/sh
# put other system startup commands here, the boot process will wait until they complete.
"""
    + (
        "# Use bootlocal.sh for system startup commands that can run in the background \n"  # sic
    )
    + """\
# and therefore not slow down the boot process.
/usr/bin/sethostname box
/opt/bootlocal.sh &
"""
)

BOOTLOCAL = """\
#!/bin/sh

# To start serial terminal /w console
# Add the following to the cmdline.txt console=serial0,115200
# Reference https://www.raspberrypi.org/documentation/configuration/uart.md for UART configuration
# Uncomment the next line
# /usr/sbin/startserialtty &

# Set CPU frequency governor to ondemand (default is performance)
echo ondemand > /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor

# Load modules - i2c-dev needs manually loaded even if enabled in config.txt
#/sbin/modprobe i2c-dev

# Start openssh daemon
/usr/local/etc/init.d/openssh start

# ------ Put other system startup commands below this line
"""


def os_release(spec: ReleaseSpec) -> str:
    v = spec.short_version
    return (
        "NAME=piCore\n"
        f'VERSION="{v}"\n'
        "ID=tinycore\n"
        f"VERSION_ID={v}\n"
        f'PRETTY_NAME="{spec.flavour} {spec.version} (firecore demo)"\n'
        'ANSI_COLOR="0;34"\n'
        f'CPE_NAME="cpe:/o:tinycore:tinycore_linux:{v}"\n'
        'HOME_URL="http://tinycorelinux.net/"\n'
        'SUPPORT_URL="http://forum.tinycorelinux.net/"\n'
        'BUG_REPORT_URL="http://forum.tinycorelinux.net/"\n'
    )


def release_readme(spec: ReleaseSpec) -> str:
    """README in the release zip (the real one explains the partitions)."""
    return (
        f"{spec.flavour} {spec.version} — FIRECORE DEMO RELEASE\n\n"
        "This image was generated by firecore-wizard's demo factory. It has piCore's layout\n"
        "(a FAT boot partition with config.txt, cmdline.txt, kernels, rootfs and modules, and a\n"
        "small ext4 partition with tce/) but its kernels and firmware are dummy bytes:\n"
        "it does NOT boot real hardware.\n\n"
        "The first partition holds the boot files; the second partition is a small partition\n"
        "with no free space that holds the tce directory with preinstalled extensions.\n"
    )


DEMO_NOTE = (
    "Generated by firecore-wizard's demo factory (steps/demo/factory.py).\n"
    "Layouts, file names and formats are piCore's; kernels, firmware and programs are dummy\n"
    "bytes. Nothing built from this mirror boots real hardware.\n"
)
