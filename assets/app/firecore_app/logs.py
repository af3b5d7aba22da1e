"""Logging to a rotating file in RAM, and reading the tail of the logs for ``GET /logs``.

The Pi has no disk: /var/log lives in RAM, so every log is size-bounded (app.log rotates at
FIRECORE_LOG_MAX_BYTES, keeping FIRECORE_LOG_BACKUPS old files; boot.sh bounds boot.log and
app.out the same way). Query strings are redacted in the access log so a ``?token=`` never lands
in a file.
"""

import logging
import logging.handlers
import os
import re
from typing import List

from firecore_app.settings import Settings

LOG_NAMES = ("app", "boot", "out", "announce")
_FILES = {"app": "app.log", "boot": "boot.log", "out": "app.out", "announce": "announce.out"}
_TOKEN = re.compile(r"([?&]token=)[^&\s]*")


class _Redact(logging.Filter):
    """Blank ``token=`` values in log messages and their arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _TOKEN.sub(r"\1***", record.msg)
        return True


def log_path(settings: Settings, name: str) -> str:
    """Path of a log: ``app`` (this service), ``boot`` (boot.sh), ``out`` (the app process's
    stdout/stderr, where a ``run`` script's output goes), ``announce`` (the mDNS announcer)."""
    return os.path.join(settings.log_dir, _FILES[name])


def setup(settings: Settings) -> None:
    """Send the root logger (and uvicorn's, which propagate) to the rotating app.log."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        os.makedirs(settings.log_dir, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            log_path(settings, "app"),
            maxBytes=settings.log_max_bytes,
            backupCount=settings.log_backups,
            encoding="utf-8",
        )
    except OSError as exc:  # no writable log dir: keep running, log to stderr (boot.sh keeps it)
        handler = logging.StreamHandler()
        logging.getLogger(__name__).warning("cannot write %s: %s", settings.log_dir, exc)
    handler.setFormatter(fmt)
    handler.addFilter(_Redact())
    root.handlers[:] = [handler]


def tail(path: str, lines: int, block: int = 8192) -> List[str]:
    """The last ``lines`` lines of a file, read backwards from its end (no full read)."""
    if lines <= 0:
        return []
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            pos = fh.tell()
            data = b""
            while pos > 0 and data.count(b"\n") <= lines:
                step = min(block, pos)
                pos -= step
                fh.seek(pos)
                data = fh.read(step) + data
    except OSError:
        return []
    text = data.decode("utf-8", "replace")
    return text.splitlines()[-lines:]
