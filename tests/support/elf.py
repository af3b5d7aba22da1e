"""Minimal ELF shared objects for tests: a header, PT_LOAD + PT_DYNAMIC, DT_NEEDED entries.

Enough for a dynamic loader's reading of the dynamic section (and for ``steps.picore.elf``):
the string table lives at a virtual address different from its file offset, so a reader that
forgets to map it through PT_LOAD reads garbage.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

EM_ARM, EM_AARCH64 = 40, 183
VADDR = 0x10000


def shared_object(needed: Sequence[str], *, bits: int = 32, big_endian: bool = False) -> bytes:
    """An ET_DYN file naming ``needed`` in its dynamic section (ARM, or AArch64 when 64-bit)."""
    end = ">" if big_endian else "<"
    b64 = bits == 64
    ehsize, phentsize = (64, 56) if b64 else (52, 32)
    phoff = ehsize
    strtab = b"\0" + b"".join(n.encode() + b"\0" for n in needed)
    str_off = phoff + 2 * phentsize
    offsets, pos = [], 1
    for n in needed:
        offsets.append(pos)
        pos += len(n) + 1
    dyn_off = str_off + len(strtab) + (-(str_off + len(strtab)) % 8)
    entries = [(1, o) for o in offsets] + [(5, VADDR + str_off), (10, len(strtab)), (0, 0)]
    dyn = b"".join(struct.pack(end + ("qQ" if b64 else "iI"), t, v) for t, v in entries)
    total = dyn_off + len(dyn)
    ident = b"\x7fELF" + bytes([2 if b64 else 1, 2 if big_endian else 1, 1]) + b"\0" * 9
    machine = EM_AARCH64 if b64 else EM_ARM
    if b64:
        header = ident + struct.pack(
            end + "HHIQQQIHHHHHH", 3, machine, 1, 0, phoff, 0, 0, ehsize, phentsize, 2, 64, 0, 0
        )
        ph_load = struct.pack(end + "IIQQQQQQ", 1, 5, 0, VADDR, VADDR, total, total, 0x1000)
        ph_dyn = struct.pack(
            end + "IIQQQQQQ", 2, 6, dyn_off, VADDR + dyn_off, VADDR + dyn_off, len(dyn),
            len(dyn), 8,
        )  # fmt: skip
    else:
        header = ident + struct.pack(
            end + "HHIIIIIHHHHHH", 3, machine, 1, 0, phoff, 0, 0, ehsize, phentsize, 2, 40, 0, 0
        )
        ph_load = struct.pack(end + "IIIIIIII", 1, 0, VADDR, VADDR, total, total, 5, 0x1000)
        ph_dyn = struct.pack(
            end + "IIIIIIII", 2, dyn_off, VADDR + dyn_off, VADDR + dyn_off, len(dyn), len(dyn),
            6, 4,
        )  # fmt: skip
    body = header + ph_load + ph_dyn + strtab
    return body + b"\0" * (dyn_off - len(body)) + dyn
