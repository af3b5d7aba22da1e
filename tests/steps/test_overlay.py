"""Overlay composition on a small hand-made base rootfs, checked with cpio/gzip/unsquashfs."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import subprocess
from pathlib import Path

import pytest

from steps.artifacts import AppBundle, Extension, ExtensionSet, OverlayFile
from steps.errors import ChecksumError, RemasterError
from steps.picore import cpio
from steps.picore.appbundle import render_env
from steps.picore.overlay import (
    Overlay,
    add_app,
    add_builtin,
    add_extracted,
    add_ssh_keys,
    bootlocal,
    bootlocal_meta,
    squashfs_listing,
    tce_runner,
)
from steps.picore.rootfs import read_base

BOOTLOCAL = (
    b"#!/bin/sh\n# put other system startup commands below this line\n"
    b"/usr/local/etc/init.d/openssh start\n"
)


def make_base(tmp: Path) -> Path:
    """A rootfs like piCore's: /opt root:staff 0775, /tmp 1777, home/tc owned by tc."""
    entries = [
        cpio.directory("etc", 0o755),
        cpio.regular("etc/os-release", b"VERSION_ID=15.0\n"),
        cpio.directory("home", 0o755),
        cpio.directory("home/tc", 0o755, 1001, 50),
        cpio.directory("opt", 0o775, 0, 50),
        cpio.regular("opt/bootlocal.sh", BOOTLOCAL, 0o775, 0, 50),
        cpio.directory("tmp", 0o1777),
        cpio.directory("usr", 0o755),
        cpio.directory("usr/local", 0o755),
        cpio.directory("usr/local/tce.installed", 0o775, 0, 50),
        cpio.symlink("usr/local/etc", "/etc"),
        cpio.directory("var", 0o755),
    ]
    raw = io.BytesIO()
    cpio.write(cpio.sort_entries(entries), raw)
    path = tmp / "rootfs-piCore-15.0.gz"
    path.write_bytes(cpio.gzip_bytes(raw.getvalue()))
    return path


def make_modules(tmp: Path) -> Path:
    entries = [
        cpio.directory("lib", 0o755),
        cpio.directory("lib/modules", 0o755),
        cpio.directory("lib/modules/6.6.47-piCore-v7", 0o755),
        cpio.regular("lib/modules/6.6.47-piCore-v7/modules.dep", b""),
        cpio.directory("tmp", 0o1777),
    ]
    raw = io.BytesIO()
    cpio.write(cpio.sort_entries(entries), raw)
    path = tmp / "modules-6.6.47-piCore-v7.gz"
    path.write_bytes(cpio.gzip_bytes(raw.getvalue()))
    return path


def make_tcz(tmp: Path, name: str, files: dict[str, tuple[bytes, int]]) -> Path:
    root = tmp / f"src-{name}"
    for rel, (data, perm) in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.chmod(p, perm)
    out = tmp / name
    subprocess.run(
        [
            "mksquashfs",
            str(root),
            str(out),
            "-b",
            "4k",
            "-no-xattrs",
            "-all-root",
            "-noappend",
            "-quiet",
            "-no-progress",
            "-mkfs-time",
            "0",
            "-all-time",
            "0",
        ],
        check=True,
    )
    return out


def extset_of(tcz: dict[str, Path], requested: list[str], deps: dict[str, str]) -> ExtensionSet:
    pkgs = tuple(
        Extension(
            name,
            (),
            (name,),
            path.stat().st_size,
            hashlib.md5(path.read_bytes()).hexdigest(),
            None,
            deps.get(name, ""),
        )
        for name, path in tcz.items()
    )
    return ExtensionSet(tuple(requested), pkgs, dict(tcz))


def unpack(data: bytes) -> list[cpio.Entry]:
    return list(cpio.read(io.BytesIO(gzip.decompress(data))))


def packed(ov: Overlay, mtime: int = 1600560000) -> bytes:
    buf = io.BytesIO()
    ov.pack(buf, mtime)
    return buf.getvalue()


# ---------------------------------------------------------------------- rootfs


def test_read_base_merges_archives_and_keeps_bootlocal(tmp_path: Path) -> None:
    base = read_base([make_base(tmp_path), make_modules(tmp_path)])
    tmp = base.meta("tmp")
    assert tmp is not None and tmp.perm == 0o1777 and tmp.is_dir
    opt = base.meta("opt")
    assert opt is not None and (opt.perm, opt.uid, opt.gid) == (0o775, 0, 50)
    assert base.meta("lib/modules/6.6.47-piCore-v7") is not None
    assert base.text("opt/bootlocal.sh") == BOOTLOCAL
    assert base.sources == ("rootfs-piCore-15.0.gz", "modules-6.6.47-piCore-v7.gz")
    with pytest.raises(RemasterError, match="symlink there"):
        base.dir_meta("usr/local/etc")


def test_read_base_names_a_damaged_or_missing_archive(tmp_path: Path) -> None:
    bad = tmp_path / "rootfs-bad.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(RemasterError, match=r"rootfs-bad\.gz .*not a gzip'd newc"):
        read_base([bad])
    with pytest.raises(RemasterError, match=r"missing\.gz is named on an initramfs line"):
        read_base([tmp_path / "missing.gz"])


# ---------------------------------------------------------------------- composing


def test_existing_dirs_keep_base_metadata_and_no_dot_entry(tmp_path: Path) -> None:
    base = read_base([make_base(tmp_path)])
    ov = Overlay(base)
    ov.add_file("tmp/builtin/onboot.lst", data=b"openssh.tcz\n")
    ov.add_dir("opt/firecore", 0o755)
    ov.add_file("opt/firecore/build.json", data=b"{}\n")
    entries = unpack(packed(ov))
    names = [e.name for e in entries]
    assert "." not in names and "" not in names
    by = {e.name: e for e in entries}
    assert stat.S_IMODE(by["tmp"].mode) == 0o1777 and by["tmp"].uid == 0
    assert (stat.S_IMODE(by["opt"].mode), by["opt"].gid) == (0o775, 50)
    assert stat.S_IMODE(by["tmp/builtin"].mode) == 0o755
    # parents precede their contents
    for i, e in enumerate(entries):
        parent = e.name.rpartition("/")[0]
        if parent:
            assert parent in names[:i]


def test_conflicts_are_refused_with_the_path(tmp_path: Path) -> None:
    base = read_base([make_base(tmp_path)])
    ov = Overlay(base)
    ov.add_file("opt/x", data=b"1", origin="app file /opt/x")
    with pytest.raises(RemasterError, match="both add /opt/x"):
        ov.add_file("opt/x", data=b"2", origin="extension a.tcz")
    with pytest.raises(RemasterError, match="base rootfs has a directory there"):
        ov.add_file("usr/local", data=b"oops")
    with pytest.raises(RemasterError, match="has a symlink there"):
        ov.add_file("usr/local/etc/x.conf", data=b"x")
    with pytest.raises(RemasterError, match="not a relative path"):
        ov.add_file("opt/../../etc/passwd", data=b"x")


def test_pack_is_deterministic_and_readable_by_gzip_and_cpio(tmp_path: Path) -> None:
    base = read_base([make_base(tmp_path)])

    def build() -> bytes:
        ov = Overlay(base)
        ov.add_file("opt/firecore/app/main.py", 0o644, 1001, 50, data=b"print('hi')\n")
        ov.add_symlink("opt/firecore/current", "app")
        return packed(ov)

    a, b = build(), build()
    assert a == b
    assert a[3] == 0 and a[4:8] == b"\0\0\0\0"  # gzip: no name flag, no timestamp
    out = tmp_path / "o.gz"
    out.write_bytes(a)
    subprocess.run(["gzip", "-t", str(out)], check=True)
    listing = subprocess.run(
        f"gzip -dc {out} | cpio -itv --quiet --numeric-uid-gid",
        shell=True,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert listing[0].startswith("drwxrwxr-x") and listing[0].endswith(" opt")
    main = next(ln for ln in listing if ln.endswith("app/main.py"))
    assert main.split()[2:4] == ["1001", "50"] and main.startswith("-rw-r--r--")
    assert any(ln.startswith("lrwxrwxrwx") and "current -> app" in ln for ln in listing)
    assert all(ln.split()[1] == "1" for ln in listing)  # nlink 1


# ---------------------------------------------------------------------- extensions


def test_builtin_stages_onboot_tczs_deps_and_md5(tmp_path: Path) -> None:
    base = read_base([make_base(tmp_path)])
    tcz = {
        "openssl.tcz": make_tcz(
            tmp_path, "openssl.tcz", {"usr/local/lib/libssl.so": (b"x", 0o755)}
        ),
        "w1-6.6.47-piCore-v7.tcz": make_tcz(
            tmp_path, "w1-6.6.47-piCore-v7.tcz", {"lib/modules/w1.ko": (b"k", 0o644)}
        ),
        "myapp.tcz": make_tcz(tmp_path, "myapp.tcz", {"usr/local/bin/myapp": (b"#!", 0o755)}),
    }
    ext = extset_of(tcz, ["myapp.tcz"], {"myapp.tcz": "openssl.tcz\nw1-KERNEL.tcz\n"})
    ov = Overlay(base)
    add_builtin(ov, ext)
    by = {e.name: e for e in unpack(packed(ov))}
    assert by["tmp/builtin/onboot.lst"].data == b"myapp.tcz\n"
    assert by["tmp/builtin/optional/myapp.tcz.dep"].data == b"openssl.tcz\nw1-KERNEL.tcz\n"
    for name, path in tcz.items():
        entry = by[f"tmp/builtin/optional/{name}"]
        assert entry.data == path.read_bytes()
        assert stat.S_IMODE(entry.mode) == 0o644  # readable by tc (uid 1001)
        md5 = by[f"tmp/builtin/optional/{name}.md5.txt"].data.decode()
        assert md5 == f"{hashlib.md5(entry.data).hexdigest()}  {name}\n"
    assert stat.S_IMODE(by["tmp/builtin/optional"].mode) == 0o755
    assert stat.S_IMODE(by["tmp"].mode) == 0o1777


def test_not_squashfs_and_changed_tcz_are_refused(tmp_path: Path) -> None:
    base = read_base([make_base(tmp_path)])
    html = tmp_path / "openssh.tcz"
    html.write_bytes(b"<html>404</html>")
    ov = Overlay(base)
    with pytest.raises(RemasterError, match=r"openssh.tcz .*is not a squashfs image"):
        add_builtin(ov, extset_of({"openssh.tcz": html}, ["openssh.tcz"], {}))
    good = make_tcz(tmp_path, "a.tcz", {"usr/local/a": (b"a", 0o644)})
    ext = extset_of({"a.tcz": good}, ["a.tcz"], {})
    ov = Overlay(base)
    add_builtin(ov, ext)
    with good.open("r+b") as fh:  # the cached file changes after it was verified
        fh.seek(100)
        fh.write(b"\xff\xff")
    with pytest.raises(ChecksumError, match=r"a\.tcz"):
        packed(ov)


def test_extracted_keeps_modes_owners_and_base_dirs(tmp_path: Path) -> None:
    base = read_base([make_base(tmp_path)])
    src = tmp_path / "src"
    (src / "usr/local/bin").mkdir(parents=True)
    (src / "usr/local/tce.installed").mkdir(parents=True)
    (src / "usr/local/bin/tool").write_bytes(b"ELF")
    os.chmod(src / "usr/local/bin/tool", 0o4755)
    (src / "usr/local/tce.installed/tool").write_bytes(b"#!/bin/sh\necho setup\n")
    os.chmod(src / "usr/local/tce.installed/tool", 0o775)
    os.symlink("tool", src / "usr/local/bin/tool2")
    os.chown(src / "usr/local/tce.installed/tool", 1001, 50)
    os.chmod(src / "usr/local/tce.installed", 0o755)
    out = tmp_path / "tool.tcz"
    subprocess.run(
        [
            "mksquashfs",
            str(src),
            str(out),
            "-b",
            "4k",
            "-no-xattrs",
            "-noappend",
            "-quiet",
            "-no-progress",
        ],
        check=True,
    )
    listing = squashfs_listing(out, None)
    assert listing["usr/local/tce.installed/tool"][1:] == (1001, 50)
    ov = Overlay(base)
    names = add_extracted(ov, extset_of({"tool.tcz": out}, ["tool.tcz"], {}), tmp_path / "w")
    assert names == ["tool.tcz"]
    by = {e.name: e for e in unpack(packed(ov))}
    assert stat.S_IMODE(by["usr/local/bin/tool"].mode) == 0o4755
    assert (by["usr/local/tce.installed/tool"].uid, by["usr/local/tce.installed/tool"].gid) == (
        1001,
        50,
    )
    # the base's tce.installed (0775 root:staff) wins over the TCZ's 0755 root:root
    tce = by["usr/local/tce.installed"]
    assert (stat.S_IMODE(tce.mode), tce.gid) == (0o775, 50)
    assert (
        stat.S_ISLNK(by["usr/local/bin/tool2"].mode) and by["usr/local/bin/tool2"].data == b"tool"
    )
    runner = tce_runner(names).decode()
    assert "/usr/local/tce.installed/tool" in runner and "ldconfig" in runner


# ---------------------------------------------------------------------- app and glue


def test_bootlocal_keeps_every_original_line(tmp_path: Path) -> None:
    base = read_base([make_base(tmp_path)])
    text = bootlocal(base, "/opt/firecore/boot.sh &\n", pre=["/opt/firecore/tce-setup.sh"])
    lines = text.decode().splitlines()
    assert lines[0] == "#!/bin/sh" and lines[1] == "/opt/firecore/tce-setup.sh"
    original = BOOTLOCAL.decode().splitlines()
    assert [ln for ln in lines if ln in original] == original
    assert lines[-1] == "/opt/firecore/boot.sh &"
    assert bootlocal_meta(base) == (0o775, 0, 50)


def test_app_symlink_out_of_tree_is_refused(tmp_path: Path) -> None:
    base = read_base([make_base(tmp_path)])
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.py").write_text("x")
    (app / "inside.py").symlink_to(app / "main.py")
    (app / "secret").symlink_to("/etc/shadow")
    ok = AppBundle(
        (
            OverlayFile("opt/firecore/app/main.py", 0o644, source=app / "main.py"),
            OverlayFile("opt/firecore/app/inside.py", 0o644, source=app / "inside.py"),
        ),
        "",
        "3.11",
        "linux_armv7l",
    )
    ov = Overlay(base)
    add_app(ov, ok, [app])
    by = {e.name: e for e in unpack(packed(ov))}
    assert by["opt/firecore/app/inside.py"].data == b"x"
    bad = AppBundle(
        (OverlayFile("opt/firecore/app/secret", 0o644, source=app / "secret"),),
        "",
        "3.11",
        "linux_armv7l",
    )
    with pytest.raises(RemasterError, match="symlink to /etc/shadow, outside the app"):
        add_app(Overlay(base), bad, [app])
    gone = AppBundle(
        (OverlayFile("opt/firecore/app/x", 0o644, source=app / "nope"),), "", "3.11", "linux_armv7l"
    )
    with pytest.raises(RemasterError, match="does not exist"):
        add_app(Overlay(base), gone, [app])


def test_ssh_keys_for_tc(tmp_path: Path) -> None:
    base = read_base([make_base(tmp_path)])
    ov = Overlay(base)
    add_ssh_keys(ov, ["ssh-ed25519 AAAAC3Nza me@host"])
    by = {e.name: e for e in unpack(packed(ov))}
    ssh = by["home/tc/.ssh"]
    keys = by["home/tc/.ssh/authorized_keys"]
    assert (stat.S_IMODE(ssh.mode), ssh.uid, ssh.gid) == (0o700, 1001, 50)
    assert (stat.S_IMODE(keys.mode), keys.uid, keys.gid) == (0o600, 1001, 50)
    assert keys.data == b"ssh-ed25519 AAAAC3Nza me@host\n"
    assert (by["home/tc"].uid, stat.S_IMODE(by["home/tc"].mode)) == (1001, 0o755)  # base's
    empty = Overlay(base)
    add_ssh_keys(empty, [])
    assert len(empty) == 0


def test_env_file_quotes_for_sh(tmp_path: Path) -> None:
    text = render_env({"A": "it's", "B": "x y"})
    script = tmp_path / "e.sh"
    script.write_bytes(text + b'printf "%s|%s" "$A" "$B"\n')
    out = subprocess.run(["sh", str(script)], capture_output=True, text=True, check=True)
    assert out.stdout == "it's|x y"


def test_paths_with_a_component_named_mnt_are_refused(tmp_path: Path) -> None:
    """piCore's /init copies the root with busybox `tar --exclude=mnt`: every such path is lost."""
    base = read_base([make_base(tmp_path)])
    ov = Overlay(base, drops_mnt=True)
    ov.add_file("opt/firecore/app/mntpoint.py", data=b"x")  # only a whole component counts
    ov.add_file("opt/firecore/app/amnt/x", data=b"x")
    for path in ("mnt/x", "opt/firecore/site-packages/pkg/mnt/__init__.py", "opt/mnt"):
        with pytest.raises(RemasterError, match="--exclude=mnt") as info:
            ov.add_file(path, data=b"x", origin="app file")
        assert f"/{path}" in info.value.message
    with pytest.raises(RemasterError, match="named mnt"):
        ov.add_dir("usr/local/mnt")
    Overlay(base).add_file("opt/mnt/x", data=b"x")  # without noembed nothing is dropped


def test_overlay_files_are_padded_to_four_bytes(tmp_path: Path) -> None:
    from steps.picore.overlay import packed as packed_padded
    from steps.picore.overlay import padding, write_gz

    assert [len(padding(n)) for n in (0, 1, 2, 3, 4, 5)] == [0, 3, 2, 1, 0, 3]
    base = read_base([make_base(tmp_path)])
    sizes = set()
    for i in range(8):  # different sizes, so every remainder mod 4 turns up
        ov = Overlay(base)
        ov.add_file("opt/x", data=os.urandom(i * 7 + 1))
        data = packed_padded(ov, 0)
        sizes.add(len(packed(ov, 0)) % 4)
        assert len(data) % 4 == 0 and data.startswith(packed(ov, 0))
        assert set(data[len(packed(ov, 0)) :]) <= {0}
        dest = tmp_path / f"o{i}.gz"
        write_gz(ov, dest, 0)
        assert dest.stat().st_size % 4 == 0
        subprocess.run(["gzip", "-t", str(dest)], check=True)  # trailing zeros are allowed
    assert len(sizes) > 1


def test_tce_runner_ends_like_tce_bootload() -> None:
    lines = tce_runner(["openssh.tcz"]).decode().splitlines()
    assert lines[-2:] == ["/sbin/udevadm trigger 2>/dev/null", "exit 0"]
    assert lines.index("/sbin/ldconfig 2>/dev/null") < lines.index(
        '[ -x "/usr/local/tce.installed/openssh" ] && [ -s "/usr/local/tce.installed/openssh" ] '
        '&& "/usr/local/tce.installed/openssh"'
    )
