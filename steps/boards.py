"""The Raspberry Pi boards as far as the wizard needs them: their RAM, and which piCore
architecture serves which (``answers.Board`` names them; ``steps.picore.configtxt`` maps them
to config.txt sections)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

#: The smallest RAM of the netbooting models of each family: the extensions screen's "fits in
#: RAM" line (the smallest board selected wins), since piCore runs entirely from RAM.
BOARD_RAM: dict[str, int] = {
    "pi0": 512 << 20,
    "pi02": 512 << 20,
    "pi1": 256 << 20,
    "pi2": 1 << 30,
    "pi3": 1 << 30,
    "pi4": 1 << 30,
    "pi5": 2 << 30,
}

#: Which boards a release architecture serves (piCore's image layout, reference/picore.md §2).
ARCH_BOARDS: dict[str, tuple[str, ...]] = {
    "armv6": ("pi0", "pi1"),
    "armv7": ("pi0", "pi1", "pi2", "pi3", "pi4"),
    "armv7l": ("pi4",),
    "armhf": ("pi0", "pi02", "pi1", "pi2", "pi3", "pi4", "pi5"),
    "aarch64": ("pi02", "pi3", "pi4", "pi5"),
}

Fit = Literal["fits", "tight", "too big"]


def smallest_ram(boards: Iterable[str]) -> tuple[str, int]:
    """The board with the least RAM among ``boards``, and its RAM in bytes."""
    board = min(boards, key=lambda b: BOARD_RAM[b])
    return board, BOARD_RAM[board]


def ram_fit(needed: int, ram: int) -> Fit:
    """Whether ``needed`` bytes of extensions leave the app room: under half of the RAM fits,
    under 80 % is tight."""
    share = needed / ram
    return "fits" if share < 0.5 else "tight" if share < 0.8 else "too big"
