"""piCore's boot codes: which kernel flags its boot scripts act on, and which of ours collide.

The remaster step adds ``nortc norestore base host=<hostname>`` to cmdline.txt and the answers add
``build.cmdline_extra`` (and each profile's ``cmdline_extra``). piCore's scripts read
``/proc/cmdline`` loosely (tinycorelinux/Core-scripts, branch ``picore``):

- ``etc/init.d/tc-config`` dispatches every ``key=value`` flag with a shell ``case`` on
  *prefixes* — ``host*)``, ``user*)``, ``iso*)`` … — so ``isolcpus=1`` is taken as ``iso=`` and
  ``hostname=x`` as ``host=`` (``HOST=1``, then ``sethostname`` reads ``host=``);
- ``usr/bin/tce-setup`` reads ``lst=NAME`` as the name of the extension list, for the builtins
  too: with it, ``/tmp/builtin/onboot.lst`` (our extensions) is never read.

So ``lst=`` is refused and a flag whose key only *starts* with one of tc-config's codes gets a
warning that names the code it will be read as.
"""

from __future__ import annotations

from collections.abc import Sequence

from steps.errors import AnswersError

#: tc-config's ``*=*`` codes, in its ``case`` order (the first prefix that matches wins).
TC_CONFIG_PREFIXES: tuple[str, ...] = (
    "waitusb", "lang", "kmap", "tz", "desktop", "ntpserver", "icons", "noicons", "user", "home",
    "tcvd", "opt", "swapfile", "resume", "host", "nodhcp", "nfsmount", "tftplist", "httplist",
    "aoe", "nbd", "mydata", "pretce", "xvesa", "blacklist", "iso",
)  # fmt: skip

#: Codes the remaster step sets itself (README "Boot codes"): flags it will not take twice.
OWN_CODES = ("host",)


def read_as(key: str) -> str | None:
    """The tc-config code a ``key=…`` flag is read as, when that is not the key itself."""
    for prefix in TC_CONFIG_PREFIXES:
        if key.startswith(prefix):
            return prefix if key != prefix else None
    return None


def check_flags(flags: Sequence[str], where: str) -> list[str]:
    """Warnings for flags piCore's boot scripts would misread; ``lst=`` is refused.

    Args:
        flags: the extra kernel flags (``build.cmdline_extra`` or a profile's).
        where: the answers key they came from, for messages.

    Raises:
        AnswersError: a ``lst=`` flag (tce-setup would then skip our extensions).
    """
    warnings: list[str] = []
    for i, flag in enumerate(flags):
        key, eq, _ = flag.partition("=")
        if not eq:
            continue
        if key == "lst":
            raise AnswersError(
                f"{where}[{i}]",
                f"{flag!r}: piCore's tce-setup reads lst= as the name of the extension list, "
                "also for the extensions in this build's overlay (/tmp/builtin/onboot.lst), "
                "so none of them would load",
                fix="remove it; list extensions in extensions.names instead",
            )
        code = read_as(key)
        if code is not None:
            warnings.append(
                f"{where}[{i}] {flag!r}: piCore's tc-config reads every flag that starts with "
                f"{code!r} as its {code}= boot code (prefix match), so this one also sets "
                f"{code}={flag.partition('=')[2]!r}"
            )
        elif key in OWN_CODES:
            warnings.append(
                f"{where}[{i}] {flag!r} replaces the host= that the build sets from the "
                "hostname answers: the kernel command line and the app's FIRECORE_HOSTNAME now "
                "disagree (piCore's sethostname takes host= from the command line)"
            )
    return warnings
