"""The domain of firecore-wizard: everything it does, with no user interface.

Read it top down; each layer imports only the ones below it (an import-linter ``layers``
contract in pyproject.toml keeps it so, and ``textual``/``rich``/``wizard`` are never imported):

- **the steps** (this package's top-level modules) — what the wizard and ``--answers`` run, in
  order: ``release``, ``extensions``, ``app``, ``remaster``, ``network``, ``deploy``; and the
  stand-alone ``selftest``, ``status``, ``prepare`` (the card that makes a Pi
  netboot-ready) and ``write_image`` (a card image onto an SD card, verified). Each is a thin
  ``Step`` whose ``run(ctx)`` yields events; ``plan`` lists them for a set of answers.
  ``monitor`` (the Diagnostics step: the packet monitor's sources and its live ``/health``
  check) sits one layer above them; ``done`` reads from the world (the built tree, the
  installed dnsmasq config, the TFTP root) which of them are done for a set of answers.
- ``demo/`` — a realistic fake piCore mirror built with the real tools, and its HTTP server
  (tests and ``--demo``).
- ``host/`` — the serving machine: what it needs (``hostcheck``), interfaces, firewall,
  preflight, dnsmasq config and service, the TFTP root (releases, atomic switch), the
  rehearsal namespaces, and its block devices (``blockdev``: is writing a card there safe).
- ``wire/`` — what crosses the wire when a Pi boots: frames, DHCP and TFTP codecs, raw sockets,
  the virtual Pi, the diagnosis codes and the JSON-lines shapes; the packet monitor's capture
  files, live capture, decoder, per-Pi timeline and events.
- ``picore/`` — piCore as files: the release image, config.txt, cpio, the base rootfs, TCZs and
  their dependencies, the app bundle, its wheels and their bytecode, overlay.gz, card images
  (``sdcard``).
- ``bootloader/`` — beside ``picore``: the Pi's own boot machinery (the Pi 4/5 EEPROM image and
  its config, the pinned firmware and its download, what each model needs to netboot).
- ``fetch/`` — mirrors and verified, cached downloads.
- **the framework** (top-level too) — ``answers`` (the one state) and ``answers_toml``,
  ``artifacts`` (what steps hand on), ``base`` (the Step protocol), ``boards`` (RAM, which
  architecture serves which), ``events`` (and how a person reads them), ``errors`` (one family,
  each with a fix and an exit code), ``proc`` (the one wrapper around external programs),
  ``fsutil`` (atomic writes, file digests), ``textsafe`` (control characters in, secrets out
  of what is shown), ``paths``, ``relay`` (blocking work beside a step's generator),
  ``reqline`` (plain pip requirement lines, read without ``packaging``), ``units``, ``model``
  (the strict records the answers are made of).

``__version__`` is the project's version (pyproject.toml reads it from here): every run records
it in the build id without reading package metadata, whose import costs a rerun more than the
rest of its checks.
"""

__version__ = "0.1.0"
