"""config.txt and cmdline.txt as models that change only what they are asked to change.

The Pi firmware reads ``config.txt`` top to bottom. ``[filter]`` lines (case-insensitive; piCore
writes ``[PI4]`` and ``[all]``) decide which of the following lines apply to the board that is
booting; the same filter may appear several times, and a later setting overrides an earlier one.
piCore names every boot file there (``initramfs rootfs-….gz,modules-<release>.gz followkernel``,
``kernel kernel6647v8.img``), so the tool learns file names and each board's kernel release from
this file instead of assuming them.

``ConfigTxt`` keeps every line, comment, blank line and line ending as read, so serialising an
unpatched file gives the same bytes, and the patches (one more file on every ``initramfs`` line,
extra lines for a device profile) touch nothing else. ``Cmdline`` does the same for the single
``cmdline.txt`` line.

Two firmware limits bound what may be written (``overlong``, ``past``): "There is a 98-character
line length limit (previously 78) for entries - any characters past this limit will be ignored"
(raspberrypi/documentation ``config_txt/what_is_config_txt.adoc``), and a netbooted Pi 4 ignores
what lies past the first 4096 bytes of the file (raspberrypi/firmware #1012, #1575: a setting
whose last character sits at byte 0x1000 or later is lost).

Filter semantics follow the Raspberry Pi documentation: a filter replaces the previous filter of
the same type (model, serial, …), filters of different types combine, ``[all]`` clears them and
``[none]`` applies to nothing. Filters this tool cannot evaluate ahead of boot (``[EDID=…]``,
``[gpio4=1]``, ``[tryboot]``, ``[HDMI:1]`` …) are treated as not matching.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from steps.errors import RemasterError

#: Board (answers ``release.boards``) → the model filters that select it. A Zero 2 W also sees
#: ``[pi0]`` and ``[pi0w]`` sections (firmware documentation); ``pi3``/``pi4`` are the B models.
BOARD_FILTERS: dict[str, frozenset[str]] = {
    "pi0": frozenset({"pi0"}),
    "pi02": frozenset({"pi0", "pi0w", "pi02"}),
    "pi1": frozenset({"pi1"}),
    "pi2": frozenset({"pi2"}),
    "pi3": frozenset({"pi3"}),
    "pi4": frozenset({"pi4"}),
    "pi5": frozenset({"pi5"}),
}

#: Every model filter the firmware knows (others of the same shape are still model filters).
MODEL_FILTERS = frozenset(
    {"pi0", "pi0w", "pi02", "pi1", "pi2", "pi3", "pi3+", "pi4", "pi400", "pi5", "pi500"}
    | {"cm1", "cm3", "cm3+", "cm4", "cm4s", "cm5"}
)

#: Characters of a line the firmware reads (what_is_config_txt.adoc); the rest is ignored.
MAX_LINE = 98
#: Bytes of config.txt a netbooted Pi 4 reads (raspberrypi/firmware #1012, #1575).
NETBOOT_READ_LIMIT = 4096

_LINE = re.compile(r"([^\r\n]*)(\r\n|\n|\r|$)")
_SETTING = re.compile(r"\s*([A-Za-z0-9_]+)(\s*=\s*|\s+)(.*?)\s*")
_FILELIST = re.compile(r"(\s*(?:initramfs|ramfsfile)(?:\s*=\s*|\s+))(\S+)(.*)", re.IGNORECASE)
_MODULES = re.compile(r"modules-([^\s/]+)\.gz")  # fullmatch: names from the release image
_DASHED_KERNEL = re.compile(r"kernel-(\d+\.\d+\.\d+[^\s/]*)\.img")


@dataclass(frozen=True)
class Line:
    """One physical line: its text without the ending, and the ending ("" if unterminated)."""

    text: str
    eol: str

    @property
    def stripped(self) -> str:
        return self.text.strip().lstrip("\ufeff")

    @property
    def filter(self) -> str | None:
        """The filter of a ``[…]`` line, lower-cased ("pi4", "all"), else None."""
        s = self.stripped
        if s.startswith("[") and "]" in s:
            return s[1 : s.index("]")].strip().lower()
        return None

    @property
    def setting(self) -> tuple[str, str] | None:
        """(key lower-cased, value) of a setting line; None for comments, blanks and filters."""
        s = self.stripped
        if not s or s.startswith("#") or self.filter is not None:
            return None
        m = _SETTING.fullmatch(s)
        if m is None:
            return None
        return m.group(1).lower(), m.group(3)


@dataclass(frozen=True)
class Section:
    """A run of lines under one ``[filter]`` line (``header`` None for lines before the first)."""

    header: str | None
    """The filter line as written ("[PI4]"), None for the leading lines."""
    start: int
    """Index of the first line (the header itself when there is one)."""
    end: int
    """Index after the last line."""


@dataclass(frozen=True)
class BoardBoot:
    """What one board loads, per config.txt."""

    board: str
    sections: tuple[str, ...]
    """Headers of the sections that applied, in file order ("" for lines before any filter)."""
    kernel: str
    """Kernel image file name."""
    initramfs: tuple[str, ...]
    """Initramfs files, in load order."""
    kernel_release: str
    """``uname -r`` on that board, e.g. "6.6.47-piCore-v8" (what KERNEL expands to)."""
    arm_64bit: bool
    cmdline: str
    """The cmdline file it reads ("cmdline.txt" unless a ``cmdline`` setting names another)."""

    @property
    def modules(self) -> str | None:
        """The modules-<release>.gz file among the initramfs files, if any."""
        return next((f for f in self.initramfs if _MODULES.fullmatch(f)), None)


def _split_lines(text: str) -> list[Line]:
    lines: list[Line] = []
    for m in _LINE.finditer(text):
        if m.start() == len(text) and not m.group(0):
            break
        lines.append(Line(m.group(1), m.group(2)))
    return lines


def _filter_type(name: str) -> str:
    """The filter's type: filters of one type replace each other, different types combine."""
    if name in MODEL_FILTERS or re.fullmatch(r"(pi|cm)\d+[a-z+]*", name):
        return "model"
    if re.fullmatch(r"0x[0-9a-f]+", name):
        return "serial"
    return re.split(r"[=:]", name, maxsplit=1)[0]


def kernel_release_from(initramfs: Sequence[str], kernel: str) -> str | None:
    """The kernel release named by a modules-<release>.gz file, else by kernel-<release>.img."""
    for name in initramfs:
        m = _MODULES.fullmatch(name)
        if m:
            return m.group(1)
    m = _DASHED_KERNEL.fullmatch(kernel)
    return m.group(1) if m else None


class ConfigTxt:
    """A parsed config.txt that serialises back to exactly the bytes it was read from."""

    def __init__(self, lines: Sequence[Line], source: str = "config.txt") -> None:
        self.lines: tuple[Line, ...] = tuple(lines)
        self.source = source
        """Name used in error messages (the file, or "piCore-15.0.0.img:config.txt")."""

    # ------------------------------------------------------------------ reading / writing

    @classmethod
    def parse(cls, text: str, source: str = "config.txt") -> ConfigTxt:
        """Parse text; every character is kept."""
        return cls(_split_lines(text), source)

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "config.txt") -> ConfigTxt:
        """Parse bytes; bytes that are not UTF-8 survive a round trip (surrogateescape)."""
        return cls.parse(data.decode("utf-8", "surrogateescape"), source)

    @property
    def text(self) -> str:
        return "".join(line.text + line.eol for line in self.lines)

    def to_bytes(self) -> bytes:
        return self.text.encode("utf-8", "surrogateescape")

    def __str__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConfigTxt) and other.lines == self.lines

    def __hash__(self) -> int:
        return hash(self.lines)

    # ------------------------------------------------------------------ structure

    def sections(self) -> list[Section]:
        """The sections in file order; repeated filters give repeated sections."""
        out: list[Section] = []
        header: str | None = None
        start = 0
        for i, line in enumerate(self.lines):
            if line.filter is not None:
                if i > start or header is not None:
                    out.append(Section(header, start, i))
                header, start = line.stripped, i
        if self.lines and (len(self.lines) > start or header is not None):
            out.append(Section(header, start, len(self.lines)))
        return out

    def _applies(self, board: str, serial: str | None) -> Iterator[tuple[int, Line, str]]:
        """(index, line, section header) of every line that applies to the board."""
        try:
            models = BOARD_FILTERS[board]
        except KeyError:
            known = ", ".join(BOARD_FILTERS)
            raise RemasterError(
                f"unknown board {board!r} (known: {known})", fix="use one of the known boards"
            ) from None
        state: dict[str, str] = {}
        header = ""
        for i, line in enumerate(self.lines):
            name = line.filter
            if name is not None:
                header = line.stripped
                if name == "all":
                    state.clear()
                else:
                    state[_filter_type(name)] = name
                continue
            if _matches(state, models, serial):
                yield i, line, header

    def applying_sections(self, board: str, serial: str | None = None) -> list[str]:
        """Headers of the sections whose lines apply to ``board``, in order (no repeats)."""
        seen: list[str] = []
        last: str | None = None
        for _, _, header in self._applies(board, serial):
            if header != last:
                seen.append(header)
                last = header
        return seen

    def settings(self, board: str, serial: str | None = None) -> list[tuple[str, str]]:
        """Every (key, value) setting that applies to ``board``, in file order."""
        out: list[tuple[str, str]] = []
        for _, line, _ in self._applies(board, serial):
            kv = line.setting
            if kv is not None:
                out.append(kv)
        return out

    # ------------------------------------------------------------------ queries

    def boot_for(self, board: str, serial: str | None = None) -> BoardBoot:
        """Kernel, initramfs files and kernel release of ``board`` (last setting wins).

        Raises:
            RemasterError: the board has no ``kernel`` or no ``initramfs`` line, or neither the
                modules file nor the kernel file name tells its kernel release.
        """
        kernel = ""
        initramfs: tuple[str, ...] = ()
        arm_64bit = False
        cmdline = "cmdline.txt"
        for key, value in self.settings(board, serial):
            if key == "kernel":
                kernel = value.split()[0] if value else ""
            elif key in ("initramfs", "ramfsfile"):
                first = value.split()[0] if value else ""
                initramfs = tuple(f for f in first.split(",") if f)
            elif key == "arm_64bit":
                arm_64bit = value.strip() not in ("", "0")
            elif key == "cmdline" and value:
                cmdline = value.split()[0]
        sections = tuple(self.applying_sections(board, serial))
        where = ", ".join(s or "(top)" for s in sections) or "none"
        fix = (
            "choose boards this release supports (release.boards) or check the release's config.txt"
        )
        if not initramfs:
            raise RemasterError(
                f"{self.source}: no `initramfs` line applies to {board} (sections read: {where})",
                fix=fix,
            )
        if not kernel:
            raise RemasterError(
                f"{self.source}: no `kernel` line applies to {board} (sections read: {where})",
                fix=fix,
            )
        release = kernel_release_from(initramfs, kernel)
        if release is None:
            raise RemasterError(
                f"{self.source}: cannot tell the kernel release of {board}: its initramfs files "
                f"({', '.join(initramfs)}) include no modules-<release>.gz and the kernel "
                f"{kernel} is not named kernel-<release>.img",
                fix="use a piCore release whose config.txt names its modules archive",
            )
        return BoardBoot(board, sections, kernel, initramfs, release, arm_64bit, cmdline)

    def kernel_releases(self, boards: Iterable[str]) -> dict[str, str]:
        """Board → kernel release for each board (``KERNEL`` in .dep files expands to these)."""
        return {b: self.boot_for(b).kernel_release for b in boards}

    def initramfs_lines(self) -> list[int]:
        """Indexes of every ``initramfs``/``ramfsfile`` line, whatever section it is in."""
        return [i for i, line in enumerate(self.lines) if _is_filelist(line)]

    def referenced_files(self) -> list[str]:
        """Every file named by a kernel/initramfs line in any section, in order, no repeats."""
        out: list[str] = []
        for line in self.lines:
            kv = line.setting
            if kv is None or not kv[1]:
                continue
            key, value = kv
            names: list[str] = []
            if key == "kernel":
                names = [value.split()[0]]
            elif key in ("initramfs", "ramfsfile"):
                names = [f for f in value.split()[0].split(",") if f]
            out.extend(n for n in names if n not in out)
        return out

    def line_length(self, index: int) -> int:
        """Characters of line ``index`` as the firmware counts them (bytes, no line ending)."""
        return len(self.lines[index].text.encode("utf-8", "surrogateescape"))

    def overlong(self, limit: int = MAX_LINE) -> list[int]:
        """Indexes of the filter and setting lines longer than ``limit`` characters.

        Comments and blank lines do not count: the firmware ignores them anyway.
        """
        return [
            i
            for i, line in enumerate(self.lines)
            if (line.setting is not None or line.filter is not None) and self.line_length(i) > limit
        ]

    def past(self, offset: int = NETBOOT_READ_LIMIT) -> list[int]:
        """Indexes of the filter and setting lines that end at or after byte ``offset``."""
        out: list[int] = []
        pos = 0
        for i, line in enumerate(self.lines):
            end = pos + self.line_length(i)  # index of the byte after the line's text
            if (line.setting is not None or line.filter is not None) and end > offset:
                out.append(i)
            pos = end + len(line.eol.encode())
        return out

    def changed_from(self, before: ConfigTxt) -> list[int]:
        """Indexes of the lines that differ from ``before`` or were appended to it."""
        return [
            i
            for i, line in enumerate(self.lines)
            if i >= len(before.lines) or line.text != before.lines[i].text
        ]

    # ------------------------------------------------------------------ patches

    def with_initramfs(self, name: str = "overlay.gz") -> ConfigTxt:
        """A copy with ``name`` appended to the file list of EVERY initramfs line.

        Only the list changes (``a,b followkernel`` → ``a,b,overlay.gz followkernel``); a line
        that already names the file is left alone, so applying it twice changes nothing.

        Raises:
            RemasterError: there is no initramfs line, so an overlay would never be loaded.
        """
        if "," in name or any(c.isspace() for c in name) or not name:
            raise ValueError(f"bad initramfs file name {name!r}")
        indexes = self.initramfs_lines()
        if not indexes:
            raise RemasterError(
                f"{self.source} has no `initramfs` line, so the overlay would never be loaded",
                fix="use a piCore release (its config.txt loads rootfs and modules with "
                "`initramfs …`)",
            )
        lines = list(self.lines)
        for i in indexes:
            m = _FILELIST.fullmatch(lines[i].text)
            assert m is not None
            files = m.group(2).split(",")
            if name in files:
                continue
            sep = "" if m.group(2).endswith(",") else ","
            text = m.group(1) + m.group(2) + sep + name + m.group(3)
            lines[i] = Line(text, lines[i].eol)
        return ConfigTxt(lines, self.source)

    def with_lines(self, extra: Sequence[str], section: str | None = "all") -> ConfigTxt:
        """A copy with ``extra`` lines appended at the end (for a per-device profile).

        With ``section`` ("all" by default) a ``[filter]`` line is written first unless the file
        already ends under exactly that filter, so the lines apply as intended whatever section
        the file ended in. The file's line ending style is kept; an unterminated last line gets
        one first. Lines already present at the end (a second application) are not repeated.
        """
        for text in extra:
            if "\n" in text or "\r" in text:
                raise ValueError(f"config.txt line {text!r} contains a line break")
        if not extra:
            return self
        eol = self._eol()
        tail = [line.text for line in self.lines[-len(extra) :]]
        if list(extra) == tail:
            return self
        lines = list(self.lines)
        if lines and not lines[-1].eol:
            lines[-1] = Line(lines[-1].text, eol)
        if section is not None and self._last_filter() != section.lower():
            lines.append(Line(f"[{section}]", eol))
        lines.extend(Line(text, eol) for text in extra)
        return ConfigTxt(lines, self.source)

    def _eol(self) -> str:
        endings = [line.eol for line in self.lines if line.eol]
        if not endings:
            return "\n"
        return max(set(endings), key=endings.count)

    def _last_filter(self) -> str:
        for line in reversed(self.lines):
            if line.filter is not None:
                return line.filter
        return "all"


def _is_filelist(line: Line) -> bool:
    kv = line.setting
    return kv is not None and kv[0] in ("initramfs", "ramfsfile") and bool(kv[1])


def _matches(state: dict[str, str], models: frozenset[str], serial: str | None) -> bool:
    for kind, name in state.items():
        if kind == "none":
            return False
        if kind == "model":
            if name not in models:
                return False
        elif kind == "serial":
            if serial is None or int(name, 16) != int(serial, 16):
                return False
        else:  # EDID, gpio, HDMI, tryboot …: unknown before boot → not this boot
            return False
    return True


# ---------------------------------------------------------------------- cmdline.txt

#: Kernel parameters that may legitimately appear more than once (added, never replaced).
REPEATABLE = frozenset({"console"})


class Cmdline:
    """cmdline.txt: one line of space-separated kernel flags (later lines are kept, unread)."""

    def __init__(self, text: str) -> None:
        self.text = text

    @classmethod
    def from_bytes(cls, data: bytes) -> Cmdline:
        return cls(data.decode("utf-8", "surrogateescape"))

    def to_bytes(self) -> bytes:
        return self.text.encode("utf-8", "surrogateescape")

    def __str__(self) -> str:
        return self.text

    def _first(self) -> tuple[str, str]:
        m = re.match(r"([^\r\n]*)(.*)\Z", self.text, re.DOTALL)
        assert m is not None
        return m.group(1), m.group(2)

    @property
    def flags(self) -> list[str]:
        """The flags of the first line, in order."""
        return self._first()[0].split()

    def get(self, key: str) -> str | None:
        """Value of the last ``key=value`` flag (or "" for a bare ``key``), None if absent."""
        found: str | None = None
        for flag in self.flags:
            k, eq, v = flag.partition("=")
            if k == key:
                found = v if eq else ""
        return found

    def with_flags(self, *flags: str) -> Cmdline:
        """A copy with ``flags`` added at the end of the first line, in order.

        A flag already present is not added again; ``key=value`` replaces the value of an
        existing ``key=…`` in place (the requested value wins), except for parameters that may
        repeat (``console``), which are added. Everything else stays byte-identical.
        """
        line, rest = self._first()
        tokens = [(m.start(), m.end(), m.group(0)) for m in re.finditer(r"\S+", line)]
        words = [t[2] for t in tokens]
        replaced: dict[int, str] = {}
        added: list[str] = []
        for flag in flags:
            if not flag or any(c.isspace() for c in flag):
                raise ValueError(f"bad kernel flag {flag!r}")
            current = [replaced.get(i, w) for i, w in enumerate(words)] + added
            if flag in current:
                continue
            key, eq, _ = flag.partition("=")
            if eq and key not in REPEATABLE:
                hits = [i for i, w in enumerate(words) if w.partition("=")[0] == key]
                hits_added = [i for i, w in enumerate(added) if w.partition("=")[0] == key]
                if hits:
                    for i in hits:
                        replaced[i] = flag
                    continue
                if hits_added:
                    for i in hits_added:
                        added[i] = flag
                    continue
            added.append(flag)
        if not replaced and not added:
            return self
        out = []
        pos = 0
        for i, (start, end, word) in enumerate(tokens):
            out.append(line[pos:start])
            out.append(replaced.get(i, word))
            pos = end
        body = "".join(out)
        trailing = line[pos:]
        if added:
            body = (body + " " if body else "") + " ".join(added)
        return Cmdline(body + trailing + rest)
