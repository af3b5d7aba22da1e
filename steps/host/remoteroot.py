"""A TFTP root on another machine, kept over ssh with busybox tools only (deploy.target).

The layout is the local one (``steps.host.tftproot``): ``releases/<id>/`` complete, verified
copies, ``current -> releases/<id>`` the live one. What differs is how it is written, because the
remote may be an OpenWrt router (busybox ``sh``, no Python, no rsync, no GNU coreutils):

- **upload next to the live release**: one ssh session carries a generated script and then a tar
  stream of the files that changed (``tar -x`` into ``releases/.staging-<id>``); files unchanged
  since the live release are hard-linked from it there, per-device trees are hard links inside
  the new release;
- **verify there**: ``sha256sum -c`` checks every file of the new release against the build
  manifest before anything changes; a short or failed upload never gets further;
- **switch atomically**: a new symlink is renamed over ``current`` with ``mv -T`` (busybox
  1.34+, OpenWrt 22.03+). Older busybox has no ``-T``, and a plain ``mv`` onto a symlink to a
  directory moves *into* that directory, so there the switch falls back to ``ln -sfn`` (unlink
  + symlink: a Pi reading at that instant may get one "file not found"), and says so;
- **one at a time**: ``mkdir .deploy.lock.d`` is the lock (atomic on every filesystem; a lock
  whose holder is gone is taken over); the live release must still be the one this deploy was
  prepared against, or it stops before touching anything;
- **interrupted**: a broken upload leaves only ``releases/.staging-*`` (removed on exit, or by the
  next deploy) — ``current`` is untouched.

After a switch the script also reports what each running dnsmasq sees as ``current`` through
``/proc/<pid>/root``: OpenWrt 21.02+ runs dnsmasq in a procd jail that bind-mounts its TFTP root
when it starts, so a router whose jail froze an older view is detected (and named) here.

Every value that reaches a script is validated first (release ids, relative paths) and quoted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from steps.answers import SshTarget
from steps.errors import DeployError
from steps.host.sshrun import RemoteResult, quote

RELEASE_ID = re.compile(r"[0-9]{8}T[0-9]{6}\.[0-9]{6}Z-[A-Za-z0-9._-]{1,80}")
_REL = re.compile(r"[A-Za-z0-9_+.-]+(/[A-Za-z0-9_+.-]+)*")
_SHA256 = re.compile(r"[0-9a-f]{64}")
LOCK_DIR = ".deploy.lock.d"

# exit codes of the scripts (0 ok; 255 is ssh's own)
E_BASE = 20
E_LOCKED = 11
E_CHANGED = 12
E_UPLOAD = 13
E_LINK = 14
E_VERIFY = 15
E_NOT_OURS = 16
E_MISSING = 17


def check_release_id(value: str) -> str:
    """A release id as deploy makes them (it goes into remote commands).

    Raises:
        DeployError: anything else.
    """
    if not RELEASE_ID.fullmatch(value):
        raise DeployError(f"{value[:80]!r} is not a release id this tool made")
    return value


def check_rel(value: str) -> str:
    """A relative path inside a release (no '..', no absolute, safe characters).

    Raises:
        DeployError: anything else.
    """
    if not _REL.fullmatch(value) or any(p in (".", "..") for p in value.split("/")):
        raise DeployError(f"{value[:80]!r} cannot be published to a remote TFTP root")
    return value


def _prelude(target: SshTarget, *, create: bool) -> list[str]:
    base = quote(target.path)
    lines = [
        "set -u",
        "umask 022",
        f"base={base}",
        "tmp=$1",
        'fail() { code=$1; shift; echo "$*" >&2; exit "$code"; }',
    ]
    if create:
        lines += [
            '[ -d "$base" ] || mkdir -p "$base" || fail 20 "cannot create $base"',
        ]
    lines += [
        'cd "$base" 2>/dev/null || fail 17 "$base does not exist"',
        '[ ! -L releases ] || fail 16 "$base/releases is a symlink: deploy does not follow what '
        'it did not make"',
        # what current is: releases/<id>, none, an empty directory (OpenWrt's init makes one),
        # a directory with files, or something else
        "state() {",
        "  if [ -L current ]; then readlink current",
        '  elif [ -d current ]; then [ -z "$(ls -A current)" ] && echo empty-dir || echo dir',
        "  elif [ -e current ]; then echo other",
        "  else echo none; fi",
        "}",
    ]
    return lines


_LOCK = [
    "lock() {",
    "  n=0",
    f"  while ! mkdir {LOCK_DIR} 2>/dev/null; do",
    f"    holder=$(cat {LOCK_DIR}/pid 2>/dev/null || true)",
    '    if [ -n "$holder" ] && ! kill -0 "$holder" 2>/dev/null; then',
    f"      rm -rf {LOCK_DIR}; continue",
    "    fi",
    "    n=$((n + 1))",
    '    [ "$n" -lt 30 ] || fail 11 "another deploy or rollback (pid ${holder:-?} on the '
    'remote host) is still running on $base"',
    "    sleep 1",
    "  done",
    f"  echo $$ > {LOCK_DIR}/pid",
    "}",
]

_SWITCH = [
    # $1: releases/<id>; $2: rename (mv -T) or link (ln -sfn, busybox without mv -T)
    "switch_to() {",
    '  [ -d "$1" ] && [ ! -L "$1" ] || fail 17 "$base/$1 is not a release directory"',
    "  if [ -d current ] && [ ! -L current ]; then",
    '    rmdir current 2>/dev/null || fail 16 "$base/current is a directory with files in it; '
    'deploy will not replace it (move it away and deploy again)"',
    "  elif [ -e current ] && [ ! -L current ]; then",
    '    fail 16 "$base/current exists and is not a symlink; deploy will not replace it"',
    "  fi",
    '  if [ "$2" = rename ]; then',
    "    link=.current.tmp.$$",
    '    rm -f "$link"',
    '    ln -s "$1" "$link" || fail 20 "cannot create a symlink in $base"',
    '    mv -T -f "$link" current || { rm -f "$link"; fail 20 "cannot rename $link over '
    'current"; }',
    "  else",
    '    ln -sfn "$1" current || fail 20 "cannot switch $base/current"',
    "  fi",
    '  echo "switched $1 $2"',
    "}",
    "served() {",
    "  for p in $(pidof dnsmasq 2>/dev/null); do",
    '    v=$(readlink "/proc/$p/root$base/current" 2>/dev/null) && echo "served $p $v" && continue',
    '    [ -d "/proc/$p/root$base/current" ] && echo "served $p dir"',
    "  done",
    "  true",
    "}",
]


def inspect_script(target: SshTarget) -> str:
    """Report the remote root: base, current, free space, tools, each release's manifest."""
    lines = ["set -u", f"base={quote(target.path)}", "tmp=$1", 'echo "fc 1"']
    lines += [
        # does mv know -T (rename a symlink over a symlink to a directory)?
        'mkdir "$tmp/d" && ln -s d "$tmp/l" && ln -s d "$tmp/t" '
        '&& mv -T -f "$tmp/t" "$tmp/l" 2>/dev/null && [ -L "$tmp/l" ] && [ ! -e "$tmp/t" ] '
        '&& echo "mv-T yes" || echo "mv-T no"',
        "for t in tar sha256sum mktemp dd readlink ln mv rm mkdir df pidof; do",
        '  command -v "$t" >/dev/null 2>&1 && echo "tool $t yes" || echo "tool $t no"',
        "done",
        'if [ ! -d "$base" ]; then echo "base missing"; exit 0; fi',
        'cd "$base" || exit 17',
        'echo "base present"',
        'if [ -L current ]; then echo "current $(readlink current)"',
        'elif [ -d current ]; then [ -z "$(ls -A current)" ] && echo "current empty-dir" '
        '|| echo "current dir"',
        'elif [ -e current ]; then echo "current other"',
        'else echo "current none"; fi',
        '[ -L releases ] && echo "releases symlink"',
        'set -- $(df -Pk . 2>/dev/null | tail -n 1); [ $# -ge 4 ] && echo "free-kb $4"',
        "for d in releases/*; do",
        '  [ -d "$d" ] && [ ! -L "$d" ] || continue',
        "  id=${d#releases/}",
        '  echo "release $id"',
        '  if [ -f "$d/manifest.json" ] && [ ! -L "$d/manifest.json" ]; then',
        '    n=$(wc -c < "$d/manifest.json"); echo "manifest $id $((n))"; cat "$d/manifest.json"',
        "  fi",
        "done",
        "exit 0",
    ]
    return "\n".join(lines) + "\n"


@dataclass
class RemoteState:
    """What ``inspect_script`` found."""

    base_exists: bool = False
    current: str = "none"
    """``releases/<id>``, ``none``, ``empty-dir``, ``dir``, ``other`` or another link target."""
    free_kb: int | None = None
    mv_t: bool = False
    tools: dict[str, bool] = field(default_factory=dict)
    releases: list[str] = field(default_factory=list)
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)
    releases_symlink: bool = False

    @property
    def live(self) -> str | None:
        """The live release id, or None (nothing deployed, or ``current`` is not ours)."""
        prefix = "releases/"
        if self.current.startswith(prefix) and self.current[len(prefix) :] in self.releases:
            return self.current[len(prefix) :]
        return None

    def missing_tools(self) -> list[str]:
        """Tools the deploy needs that the remote lacks."""
        need = ("tar", "sha256sum", "mktemp", "dd", "readlink", "ln", "mv", "rm", "mkdir")
        return [t for t in need if not self.tools.get(t, False)]


def parse_inspect(result: RemoteResult) -> RemoteState:
    """Read ``inspect_script``'s output (manifests are length-framed raw JSON).

    Raises:
        DeployError: the output is not what the script prints (not a POSIX shell there?).
    """
    data = result.stdout
    state = RemoteState()
    pos = 0
    seen_header = False
    while pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end
        line = data[pos:end].decode("utf-8", "replace")
        pos = end + 1
        key, _, value = line.partition(" ")
        if key == "fc":
            seen_header = True
        elif key == "base":
            state.base_exists = value == "present"
        elif key == "current":
            state.current = value
        elif key == "free-kb" and value.isdigit():
            state.free_kb = int(value)
        elif key == "mv-T":
            state.mv_t = value == "yes"
        elif key == "tool":
            name, _, ok = value.partition(" ")
            state.tools[name] = ok == "yes"
        elif key == "releases":
            state.releases_symlink = value == "symlink"
        elif key == "release" and RELEASE_ID.fullmatch(value):
            state.releases.append(value)
        elif key == "manifest":
            rid, _, size = value.partition(" ")
            n = int(size) if size.isdigit() else 0
            raw, pos = data[pos : pos + n], pos + n
            try:
                manifest = json.loads(raw)
            except ValueError:
                manifest = None
            if isinstance(manifest, dict) and RELEASE_ID.fullmatch(rid):
                state.manifests[rid] = manifest
    if not seen_header:
        raise DeployError(
            f"the remote host did not run the inspection script ({result.last_error()})",
            fix="deploy.target needs a POSIX shell (busybox sh is fine) for its user",
        )
    state.releases.sort()
    return state


def _heredoc(lines: Iterable[str]) -> list[str]:
    body = list(lines)
    for line in body:
        if line == "FC_EOF":  # pragma: no cover - validated paths cannot spell it
            raise DeployError("a file name clashes with the script's here-document marker")
    return [*body, "FC_EOF"]


@dataclass(frozen=True)
class Upload:
    """What one publish does on the remote host (all paths relative to the new release)."""

    release_id: str
    expect: str
    """What ``current`` must still be (``RemoteState.current``) when the upload starts."""
    live: str | None
    """The live release to hard-link unchanged files from."""
    from_live: Sequence[str]
    device_links: Sequence[tuple[str, str]]
    """(source, link) pairs inside the new release: per-device trees."""
    sums: Mapping[str, str]
    """Every file of the new release → its sha256 (the build manifest's)."""
    prune: Sequence[str]
    switch: str
    """``rename`` (mv -T) or ``link`` (ln -sfn)."""


def publish_script(target: SshTarget, up: Upload) -> str:
    """The script that receives the tar stream on stdin and publishes ``up.release_id``."""
    rid = check_release_id(up.release_id)
    live = check_release_id(up.live) if up.live else None
    stage = f"releases/.staging-{rid}"
    lines = _prelude(target, create=True) + _LOCK + _SWITCH
    lines += [
        "lock",
        f"stage={quote(stage)}",
        "cleanup() {",
        '  [ -n "$stage" ] && rm -rf "$base/$stage"',
        f'  rm -rf "$base/{LOCK_DIR}"',
        "}",
        "trap cleanup EXIT",
        "trap 'exit 130' HUP INT TERM PIPE",
        "[ -d releases ] || { mkdir releases && chmod 755 releases; } "
        '|| fail 20 "cannot create $base/releases"',
        # leftovers of an interrupted deploy
        "for p in releases/.staging-* releases/.removing-*; do",
        '  [ -d "$p" ] && [ ! -L "$p" ] && rm -rf "$p" && echo "removed $p"',
        "done",
        'for p in .current.tmp.*; do [ -L "$p" ] && rm -f "$p"; done',
        f"expect={quote(up.expect)}",
        "now=$(state)",
        '[ "$now" = "$expect" ] || fail 12 "current changed while this release was prepared '
        '(it was $expect, now $now): run deploy again"',
        'mkdir "$stage" || fail 20 "cannot create $base/$stage"',
        'tar -x -f - -C "$stage" 2>"$tmp/tar.err" || { cat "$tmp/tar.err" >&2; '
        'fail 13 "the upload did not arrive whole"; }',
    ]
    if up.from_live:
        assert live is not None
        lines += [
            "while IFS= read -r rel; do",
            '  case $rel in */*) mkdir -p "$stage/${rel%/*}";; esac',
            f'  ln "releases/{live}/$rel" "$stage/$rel" || fail 14 "cannot hard-link $rel from '
            f'the live release {live}"',
            "done <<'FC_EOF'",
            *_heredoc(check_rel(r) for r in up.from_live),
        ]
    if up.device_links:
        lines += [
            "while IFS=' ' read -r src dest; do",
            '  case $dest in */*) mkdir -p "$stage/${dest%/*}";; esac',
            '  ln "$stage/$src" "$stage/$dest" || fail 14 "cannot hard-link $dest"',
            "done <<'FC_EOF'",
            *_heredoc(f"{check_rel(s)} {check_rel(d)}" for s, d in up.device_links),
        ]
    sums = []
    for rel, digest in sorted(up.sums.items()):
        if not _SHA256.fullmatch(digest):
            raise DeployError(f"the manifest's sha256 of {rel} is not a sha256")
        sums.append(f"{digest}  {check_rel(rel)}")
    lines += [
        'if ! (cd "$stage" && sha256sum -c) >"$tmp/check" 2>&1 <<\'FC_EOF\'',
        *_heredoc(sums),
        "then",
        '  grep -v ": OK$" "$tmp/check" >&2',
        '  fail 15 "the files on the remote host do not match the build manifest"',
        "fi",
        'echo "verified $(grep -c ": OK$" "$tmp/check")"',
        f'mv "$stage" releases/{rid} || fail 20 "cannot rename $stage into place"',
        "stage=",
        f"switch_to releases/{rid} {quote(up.switch)}",
    ]
    for old in up.prune:
        old = check_release_id(old)
        lines += [
            f"if [ -d releases/{old} ] && [ ! -L releases/{old} ]; then",
            f"  mv releases/{old} releases/.removing-{old} && rm -rf releases/.removing-{old} "
            f'&& echo "pruned {old}"',
            "fi",
        ]
    lines += ["served", "exit 0"]
    return "\n".join(lines) + "\n"


def switch_script(target: SshTarget, *, expect: str, release_id: str, switch: str) -> str:
    """Switch ``current`` to ``release_id`` (a rollback), if it is still ``expect``."""
    rid = check_release_id(release_id)
    lines = _prelude(target, create=False) + _LOCK + _SWITCH
    lines += [
        "lock",
        f"trap 'rm -rf \"$base/{LOCK_DIR}\"' EXIT",
        "trap 'exit 130' HUP INT TERM PIPE",
        f"expect={quote(expect)}",
        "now=$(state)",
        '[ "$now" = "$expect" ] || fail 12 "current changed meanwhile (it was $expect, now $now)"',
        f"switch_to releases/{rid} {quote(switch)}",
        "served",
        "exit 0",
    ]
    return "\n".join(lines) + "\n"


def fetch_script(target: SshTarget) -> str:
    """Write the live release as a tar stream on stdout (for a rehearsal of a remote root)."""
    lines = _prelude(target, create=False)
    lines += [
        '[ -L current ] || fail 17 "nothing is deployed in $base (no current symlink)"',
        'cd current/ || fail 17 "$base/current does not lead to a release"',
        "exec tar -c -f - .",
    ]
    return "\n".join(lines) + "\n"


def served_views(result: RemoteResult) -> dict[int, str]:
    """dnsmasq PID → what it sees as ``current`` (from a publish or switch)."""
    out: dict[int, str] = {}
    for line in result.stdout.decode("utf-8", "replace").splitlines():
        parts = line.split(" ")
        if len(parts) == 3 and parts[0] == "served" and parts[1].isdigit():
            out[int(parts[1])] = parts[2]
    return out


def script_error(result: RemoteResult, target: SshTarget) -> DeployError:
    """A failed script as a DeployError with the fix for its exit code."""
    msg = result.last_error()
    where = f"{target.destination}:{target.path}"
    fixes = {
        E_LOCKED: "wait for it to finish, then run again",
        E_CHANGED: "another deploy or rollback ran meanwhile; run deploy again",
        E_UPLOAD: "the connection broke or the remote storage is full; the live release is "
        "untouched — check free space and run deploy again",
        E_LINK: "the live release is damaged or on another filesystem; roll back or deploy again",
        E_VERIFY: "the remote storage corrupted the upload (check the USB stick) — the live "
        "release is untouched",
        E_NOT_OURS: "move it away on the remote host and deploy again",
        E_MISSING: "deploy first (firecore-wizard deploy --answers FILE)",
        E_BASE: "check the path in deploy.target and that the ssh user may write there",
    }
    return DeployError(
        f"{where}: {msg}", fix=fixes.get(result.code, "see the message"), details=result.stderr
    )
