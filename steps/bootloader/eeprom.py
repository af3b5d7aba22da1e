"""The Pi 4/5 bootloader EEPROM image: its section chain, and replacing its config file.

The layout, as the Raspberry Pi tools describe it (rpi-eeprom's ``rpi-eeprom-config``: the
comment on its section constants and its image parser) and as the released images show it
(firmware-2711/ and firmware-2712/ at rpi-eeprom commit 86759b0, walked section by section):

- The image is 512 KiB (BCM2711: Pi 4, Pi 400, CM4) or 2 MiB (BCM2712: Pi 5, CM5).
- From offset 0, a chain of sections, each starting on an 8-byte boundary with two big-endian
  32-bit words: a magic number and the length of what follows. Every magic matches
  0x55AAF00F under the mask 0xFFFFF00F; 0x55AAF11F marks a *file*, 0x55AAFEEF *padding*. A word
  0 or 0xFFFFFFFF where a header would start ends the chain.
- A file section: a 12-byte name padded with NULs, 4 more bytes (zero in every image seen; kept
  as they are), then the file's bytes. The length counts the name, those 4 bytes and the data.
  A file fits one 4 KiB erase sector: at most 4096 − 20 = 4076 bytes of data.
- The last 4 KiB of the image belong to the bootloader (it may rewrite them when it updates
  itself): nothing is written there.
- Images holding a ``bootsys`` file (BCM2712 since 2025) are A/B images: a read-only first
  64 KiB, then partition A (988 KiB) holding the modifiable files, then an empty partition B
  and two journals. Older images keep their modifiable files in the same window.

The config file is ``bootconf.txt``. ``replace`` rewrites a file in place and turns the bytes up
to the next section that is not padding into one padding section filled with 0xFF — or plain
0xFF when the file is the last section — which is how the released images are laid out, so
writing the original text back restores the original image byte for byte.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from steps.errors import StepError

#: Image size → the SoC it is for.
CHIPS: dict[int, str] = {512 * 1024: "2711", 2 * 1024 * 1024: "2712"}
MAGIC_MASK = 0xFFFFF00F
SECTION_MAGIC = 0x55AAF00F
FILE_MAGIC = 0x55AAF11F
PAD_MAGIC = 0x55AAFEEF
HEADER = 8
NAME_LEN = 12
#: Bytes from a file section's start to its data: header, name, 4 reserved bytes.
DATA_OFFSET = HEADER + NAME_LEN + 4
ERASE_SECTOR = 4096
MAX_FILE = ERASE_SECTOR - HEADER - NAME_LEN
READ_ONLY = 64 * 1024
PARTITION = 988 * 1024
CONFIG = "bootconf.txt"


class EepromError(StepError):
    """An EEPROM image is not one, or a file does not fit it."""

    title = "EEPROM image"


@dataclass(frozen=True)
class Section:
    """One section of the chain."""

    offset: int
    magic: int
    length: int
    name: str = ""
    """The file name, for file sections."""

    @property
    def is_file(self) -> bool:
        return self.magic == FILE_MAGIC

    @property
    def is_padding(self) -> bool:
        return self.magic == PAD_MAGIC

    @property
    def end(self) -> int:
        """First byte after the section (before alignment)."""
        return self.offset + HEADER + self.length


def _align8(n: int) -> int:
    return (n + 7) & ~7


class EepromImage:
    """A bootloader EEPROM image in memory; ``replace`` returns a new image."""

    def __init__(self, data: bytes, name: str = "pieeprom.bin") -> None:
        self.name = name
        if len(data) not in CHIPS:
            sizes = " or ".join(f"{s // 1024} KiB" for s in CHIPS)
            raise EepromError(
                f"{name}: {len(data)} bytes is not the size of a bootloader EEPROM image ({sizes})",
                fix="use a pieeprom-*.bin from the rpi-eeprom firmware-2711/ or firmware-2712/",
            )
        self._data = bytes(data)
        self.sections = self._parse()

    @property
    def chip(self) -> str:
        """ "2711" (Pi 4, 400, CM4) or "2712" (Pi 5, CM5)."""
        return CHIPS[len(self._data)]

    @property
    def ab(self) -> bool:
        """An A/B image (it carries a ``bootsys`` file)."""
        return any(s.is_file and s.name == "bootsys" for s in self.sections)

    def to_bytes(self) -> bytes:
        return self._data

    def _parse(self) -> list[Section]:
        data = self._data
        out: list[Section] = []
        offset = 0
        while offset + HEADER <= len(data):
            magic, length = struct.unpack_from(">II", data, offset)
            if magic in (0, 0xFFFFFFFF):
                break
            if magic & MAGIC_MASK != SECTION_MAGIC:
                raise EepromError(
                    f"{self.name}: no section header at byte {offset:#x} (magic {magic:#010x})",
                    fix="the image is damaged or not a bootloader image; download it again",
                )
            if offset + HEADER + length > len(data):
                raise EepromError(
                    f"{self.name}: the section at {offset:#x} runs past the end of the image",
                    fix="the image is damaged; download it again",
                )
            name = ""
            if magic == FILE_MAGIC:
                raw = data[offset + HEADER : offset + HEADER + NAME_LEN]
                name = raw.rstrip(b"\0").decode("ascii", "replace")
            out.append(Section(offset, magic, length, name))
            offset = _align8(offset + HEADER + length)
        if not out:
            raise EepromError(f"{self.name}: no sections", fix="download the image again")
        return out

    def file_names(self) -> list[str]:
        """Names of the files in the image, in chain order."""
        return [s.name for s in self.sections if s.is_file]

    def _window(self) -> tuple[int, int]:
        """Where modifiable files live: after the read-only part, inside partition A."""
        return READ_ONLY, min(READ_ONLY + PARTITION, len(self._data) - ERASE_SECTOR)

    def _index(self, name: str) -> int:
        start, stop = self._window()
        for i, s in enumerate(self.sections):
            if s.is_file and s.name == name and start <= s.offset < stop:
                return i
        raise EepromError(
            f"{self.name}: there is no {name} among its modifiable files "
            f"({', '.join(self.file_names()) or 'none'})",
            fix="use a released pieeprom-*.bin (every release carries bootconf.txt)",
        )

    def read(self, name: str) -> bytes:
        """The bytes of the modifiable file ``name``."""
        s = self.sections[self._index(name)]
        return self._data[s.offset + DATA_OFFSET : s.end]

    def replace(self, name: str, content: bytes) -> EepromImage:
        """A new image with file ``name`` holding ``content`` (the rest unchanged).

        Raises:
            EepromError: no such file, or ``content`` does not fit its place.
        """
        i = self._index(name)
        s = self.sections[i]
        following = next((t for t in self.sections[i + 1 :] if not t.is_padding), None)
        limit = following.offset if following is not None else self._window()[1]
        end = s.offset + DATA_OFFSET + len(content)
        room = min(MAX_FILE, limit - s.offset - DATA_OFFSET)
        if len(content) > room:
            raise EepromError(
                f"{name} would be {len(content)} bytes; the image has room for {room}",
                fix="shorten the bootloader configuration",
            )
        out = bytearray(self._data)
        struct.pack_into(">I", out, s.offset + 4, NAME_LEN + 4 + len(content))
        out[s.offset + DATA_OFFSET : end] = content
        pos = _align8(end)
        out[end:pos] = b"\xff" * (pos - end)
        is_last = i == len(self.sections) - 1
        if limit - pos >= HEADER and not is_last:
            struct.pack_into(">II", out, pos, PAD_MAGIC, limit - pos - HEADER)
            pos += HEADER
        out[pos:limit] = b"\xff" * (limit - pos)
        return EepromImage(bytes(out), self.name)

    def config(self) -> str:
        """The bootloader configuration (``bootconf.txt``) as text."""
        return self.read(CONFIG).decode("utf-8", "replace")

    def with_config(self, text: str) -> EepromImage:
        """A new image whose ``bootconf.txt`` is ``text``."""
        return self.replace(CONFIG, text.encode())
