"""The shared libraries an ELF file needs (``DT_NEEDED``), read with ``struct``.

Wheels for the Pi are compiled elsewhere; their extension modules name the libraries they load
in the dynamic section (``DT_NEEDED`` entries, offsets into the ``DT_STRTAB`` string table). The
dynamic segment is found through the program headers (``PT_DYNAMIC``) and the string table's
address is mapped to a file offset through the ``PT_LOAD`` segments — what the dynamic loader
itself uses, so it also works when section headers were stripped. 32- and 64-bit, either byte
order (System V ABI, "Dynamic Section").
"""

from __future__ import annotations

import struct

ELF_MAGIC = b"\x7fELF"
PT_LOAD, PT_DYNAMIC = 1, 2
DT_NULL, DT_NEEDED, DT_STRTAB = 0, 1, 5


def is_elf(data: bytes) -> bool:
    """Starts with the ELF magic."""
    return data[:4] == ELF_MAGIC


def needed(data: bytes) -> list[str]:
    """The ``DT_NEEDED`` sonames of an ELF file, in order; [] for a static or non-ELF file.

    Raises:
        ValueError: an ELF file whose headers point outside it.
    """
    if not is_elf(data) or len(data) < 52:
        return []
    bits64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    try:
        if bits64:
            phoff, phentsize, phnum = (
                struct.unpack_from(end + "Q", data, 0x20)[0],
                *struct.unpack_from(end + "HH", data, 0x36),
            )
        else:
            phoff, phentsize, phnum = (
                struct.unpack_from(end + "I", data, 0x1C)[0],
                *struct.unpack_from(end + "HH", data, 0x2A),
            )
        loads: list[tuple[int, int, int]] = []
        dynamic: tuple[int, int] | None = None
        for i in range(phnum):
            at = phoff + i * phentsize
            if bits64:
                ptype, _, offset, vaddr, _, filesz = struct.unpack_from(end + "IIQQQQ", data, at)
            else:
                ptype, offset, vaddr, _, filesz = struct.unpack_from(end + "IIIII", data, at)
            if ptype == PT_LOAD:
                loads.append((vaddr, offset, filesz))
            elif ptype == PT_DYNAMIC:
                dynamic = (offset, filesz)
        if dynamic is None:
            return []
        entry = struct.Struct(end + ("qQ" if bits64 else "iI"))
        strtab: int | None = None
        wanted: list[int] = []
        offset, size = dynamic
        for at in range(offset, offset + size - entry.size + 1, entry.size):
            tag, value = entry.unpack_from(data, at)
            if tag == DT_NULL:
                break
            if tag == DT_NEEDED:
                wanted.append(value)
            elif tag == DT_STRTAB:
                strtab = value
    except struct.error as exc:
        raise ValueError(f"truncated ELF headers: {exc}") from None
    if strtab is None:
        return []
    base = next((off + strtab - va for va, off, sz in loads if va <= strtab < va + sz), strtab)
    names = []
    for value in wanted:
        start = base + value
        stop = data.find(b"\0", start)
        if start >= len(data) or stop < 0:
            raise ValueError("DT_NEEDED points outside the file")
        names.append(data[start:stop].decode("latin-1"))
    return names
