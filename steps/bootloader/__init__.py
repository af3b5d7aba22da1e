"""The Raspberry Pi's own boot machinery, as files the prepare step puts on a card.

- ``eeprom`` — the Pi 4/5 bootloader EEPROM image: its section chain, reading and replacing the
  embedded config file (our own editor of the format the Raspberry Pi tools document).
- ``bootconf`` — that config file's text: the netboot properties (BOOT_ORDER, TFTP_PREFIX,
  TFTP_IP, DHCP_TIMEOUT) set and read back.
- ``firmware`` — which EEPROM release and recovery.bin to use (a pinned catalog) and their
  verified, cached download.
- ``models`` — per Pi model: can it netboot, what enables it, which card does it.

Nothing here knows about piCore; ``steps.picore.sdcard`` writes the card images.
"""
