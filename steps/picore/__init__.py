"""piCore itself: the release image, config.txt/cmdline.txt, cpio archives, the base rootfs and
its system libraries, ELF dependencies, piCore's boot codes, TCZ extensions and their
dependencies, the app bundle and its wheels, and composing overlay.gz.

Everything here works on files (rootless, no mounts); it may fetch through ``steps.fetch``.
"""
