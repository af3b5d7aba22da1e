"""OpenWrt's UCI files, read and changed the way ``uci`` does, so a batch can be previewed.

The router-mode network step shows the change to the router's ``/etc/config/dhcp`` as a diff
*before* anything runs there: it reads the file over ssh, applies the batch it is about to send
to this model, and diffs the two as ``uci export`` would print them. After ``uci batch`` ran on the
router, the file is read back and compared with the prediction, so a router whose ``uci``
disagreed is caught.

Only what the generated batches use is modelled, each as ``uci`` (openwrt/uci, ``list.c`` and
``cli.c`` at commit 66127cd) does it:

- ``set CONFIG.SECTION=TYPE`` creates a named section at the end, or re-types an existing one
  keeping its options and place;
- ``set CONFIG.SECTION.OPTION=VALUE`` replaces the option (a list too) in place, or appends a new
  one;
- ``add_list`` appends to a list, turning a plain option into a list that starts with its value;
- ``del_list`` removes every item equal to the value, and is a no-op when there is none;
- ``delete`` removes an option or a section; ``commit`` is accepted.

Sections are addressed by name or as ``@TYPE[INDEX]`` (negative indexes count from the end).
The file syntax (``config``/``option``/``list`` lines, single or double quotes, ``#`` comments)
follows ``file.c``; ``export`` prints a package exactly as ``uci_export_package`` does.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

_NAME = re.compile(r"[A-Za-z0-9_]+")
_REF = re.compile(r"@(?P<type>[A-Za-z0-9_]+)\[(?P<index>-?\d+)\]")
_KEYWORDS = frozenset({"package", "config", "option", "list"})


class UciError(ValueError):
    """A file or batch line this model (or ``uci`` itself) would not accept."""


@dataclass
class Option:
    """One ``option`` (``values`` has one item, ``is_list`` False) or one ``list``."""

    name: str
    values: list[str]
    is_list: bool = False


@dataclass
class Section:
    """One ``config TYPE ['NAME']`` block."""

    type: str
    name: str | None
    """None for an anonymous section (``@TYPE[i]`` finds it)."""
    options: list[Option] = field(default_factory=list)

    def get(self, name: str) -> Option | None:
        """The option called ``name``, if present."""
        return next((o for o in self.options if o.name == name), None)


@dataclass
class Package:
    """One UCI package (the file ``/etc/config/NAME``)."""

    name: str
    sections: list[Section] = field(default_factory=list)

    # ---------------------------------------------------------------- lookups
    def section(self, ref: str) -> Section | None:
        """A section by name or by ``@TYPE[INDEX]``."""
        m = _REF.fullmatch(ref)
        if m is None:
            return next((s for s in self.sections if s.name == ref), None)
        of_type = [s for s in self.sections if s.type == m.group("type")]
        index = int(m.group("index"))
        try:
            return of_type[index]
        except IndexError:
            return None

    def value(self, ref: str, option: str) -> list[str] | None:
        """The value(s) of ``SECTION.OPTION``; None when absent."""
        sec = self.section(ref)
        opt = sec.get(option) if sec is not None else None
        return list(opt.values) if opt is not None else None

    # ---------------------------------------------------------------- changes
    def set(self, ref: str, option: str | None, value: str) -> None:
        """``uci set``: a section's type (``option`` None) or an option's value."""
        sec = self.section(ref)
        if option is None:
            if not _NAME.fullmatch(value):
                raise UciError(f"invalid section type {value!r}")
            if sec is None:
                if _REF.fullmatch(ref) or not _NAME.fullmatch(ref):
                    raise UciError(f"cannot create section {ref!r}: not a plain name")
                self.sections.append(Section(value, ref))
            else:
                sec.type = value
            return
        if sec is None:
            raise UciError(f"{self.name}.{ref}: no such section")
        if not value:
            self.delete(ref, option)
            return
        new = Option(option, [value])
        for i, old in enumerate(sec.options):
            if old.name == option:
                sec.options[i] = new
                return
        sec.options.append(new)

    def add_list(self, ref: str, option: str, value: str) -> None:
        """``uci add_list``."""
        sec = self._existing(ref)
        old = sec.get(option)
        if old is None:
            sec.options.append(Option(option, [value], True))
            return
        old.is_list = True
        old.values.append(value)

    def del_list(self, ref: str, option: str, value: str) -> None:
        """``uci del_list``: a no-op when the option is missing or not a list."""
        sec = self._existing(ref)
        old = sec.get(option)
        if old is None or not old.is_list:
            return
        old.values = [v for v in old.values if v != value]

    def delete(self, ref: str, option: str | None) -> None:
        """``uci delete`` of a section or an option.

        Raises:
            UciError: it does not exist (``uci`` prints "Entry not found").
        """
        sec = self._existing(ref)
        if option is None:
            self.sections.remove(sec)
            return
        old = sec.get(option)
        if old is None:
            raise UciError(f"{self.name}.{ref}.{option}: entry not found")
        sec.options.remove(old)

    def _existing(self, ref: str) -> Section:
        sec = self.section(ref)
        if sec is None:
            raise UciError(f"{self.name}.{ref}: entry not found")
        return sec

    # ---------------------------------------------------------------- output
    def export(self, *, header: bool = False) -> str:
        """The package as ``uci export`` prints it (``header``) or as uci writes the file."""
        out = [f"package {_escape(self.name)}\n"] if header else []
        for sec in self.sections:
            name = f" '{_escape(sec.name)}'" if sec.name is not None else ""
            out.append(f"\nconfig {_escape(sec.type)}{name}\n")
            for opt in sec.options:
                kind = "list" if opt.is_list else "option"
                out += [f"\t{kind} {_escape(opt.name)} '{_escape(v)}'\n" for v in opt.values]
        out.append("\n")
        return "".join(out)

    def copy(self) -> Package:
        """A deep copy (the batch is applied to a copy for the preview)."""
        sections = []
        for sec in self.sections:
            options = [Option(o.name, list(o.values), o.is_list) for o in sec.options]
            sections.append(Section(sec.type, sec.name, options))
        return Package(self.name, sections)


def _escape(text: str) -> str:
    """uci's quoting inside single quotes: ``'`` becomes ``'\\''``."""
    return text.replace("'", "'\\''")


def parse_package(name: str, text: str) -> Package:
    """Read a UCI file (``/etc/config/NAME``).

    Raises:
        UciError: a line uci would reject (an option outside a section, an unknown keyword).
    """
    try:
        lexer = shlex.shlex(text, posix=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        tokens = list(lexer)
    except ValueError as exc:
        raise UciError(f"/etc/config/{name}: {exc}") from None
    pkg = Package(name)
    current: Section | None = None
    i = 0
    while i < len(tokens):
        word = tokens[i]
        if word == "package":
            i += 2
            continue
        if word == "config":
            if i + 1 >= len(tokens):
                raise UciError(f"/etc/config/{name}: 'config' without a type")
            kind = tokens[i + 1]
            sec_name: str | None = None
            i += 2
            if i < len(tokens) and tokens[i] not in _KEYWORDS:
                sec_name = tokens[i]
                i += 1
            current = Section(kind, sec_name)
            pkg.sections.append(current)
            continue
        if word in ("option", "list"):
            if current is None:
                raise UciError(f"/etc/config/{name}: {word!r} outside a config section")
            if i + 2 >= len(tokens):
                raise UciError(f"/etc/config/{name}: {word!r} without a name and a value")
            key, value = tokens[i + 1], tokens[i + 2]
            opt = current.get(key)
            if word == "list":
                if opt is None or not opt.is_list:
                    if opt is not None:
                        current.options.remove(opt)
                    opt = Option(key, [], True)
                    current.options.append(opt)
                opt.values.append(value)
            elif opt is None:
                current.options.append(Option(key, [value]))
            else:
                opt.values, opt.is_list = [value], False
            i += 3
            continue
        raise UciError(f"/etc/config/{name}: unexpected {word!r}")
    return pkg


def _split_path(path: str) -> tuple[str, str, str | None]:
    parts = path.split(".")
    if len(parts) not in (2, 3) or not all(parts):
        raise UciError(f"{path!r} is not CONFIG.SECTION[.OPTION]")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def apply_batch(pkg: Package, batch: str) -> Package:
    """The package after ``uci batch`` ran ``batch`` on it (``pkg`` itself is not changed).

    Raises:
        UciError: a command this model does not know, or one for another package.
    """
    out = pkg.copy()
    for n, line in enumerate(batch.splitlines(), 1):
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise UciError(f"batch line {n}: {exc}") from None
        if not words:
            continue
        cmd, args = words[0], words[1:]
        if cmd == "commit":
            continue
        if len(args) != 1:
            raise UciError(f"batch line {n}: {line!r}")
        path, has_value, value = args[0].partition("=")
        config, section, option = _split_path(path)
        if config != out.name:
            raise UciError(f"batch line {n}: package {config!r}, expected {out.name!r}")
        if cmd == "set" and has_value:
            out.set(section, option, value)
        elif cmd == "add_list" and option and has_value:
            out.add_list(section, option, value)
        elif cmd == "del_list" and option and has_value:
            out.del_list(section, option, value)
        elif cmd == "delete" and not has_value:
            out.delete(section, option)
        else:
            raise UciError(f"batch line {n}: unsupported command {line!r}")
    return out
