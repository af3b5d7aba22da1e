"""The one error family of firecore-wizard.

Steps raise these; they never print. Each front end translates them: the headless runner into an
exit code plus ``ERROR <title>: <message>`` on stderr, the TUI into a modal. Every message names the
thing to fix, and ``fix`` says how, so no user error ever needs a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence


class FirecoreError(Exception):
    """Base of every error a user can cause or fix.

    Attributes:
        message: what went wrong, naming the file, key or program involved.
        fix: one sentence on how to fix it ("" when there is nothing to add).
        title: short heading for a modal or the stderr prefix.
        details: optional long text (a command's stderr, a diff) shown on demand.
    """

    title = "Error"
    exit_code = 1

    def __init__(
        self, message: str, *, fix: str = "", title: str | None = None, details: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.details = details
        if title is not None:
            self.title = title

    def __str__(self) -> str:
        return self.message if not self.fix else f"{self.message} — {self.fix}"


class UsageError(FirecoreError):
    """Bad command-line usage or invalid answers: exit code 2."""

    title = "Usage"
    exit_code = 2


class AnswersError(UsageError):
    """An answers value is invalid; ``key`` is its dotted path, e.g. ``release.version``."""

    title = "Answers"

    def __init__(self, key: str, message: str, *, fix: str = "") -> None:
        super().__init__(f"{key}: {message}" if key else message, fix=fix)
        self.key = key


class Cancelled(FirecoreError):
    """The user interrupted (Ctrl-C, Cancel): exit code 130, nothing half-written is left."""

    title = "Interrupted"
    exit_code = 130

    def __init__(self, message: str = "interrupted") -> None:
        super().__init__(message)


class StepError(FirecoreError):
    """A step failed for a reason outside the answers (network, disk, a tool): exit code 1."""

    title = "Step failed"


class CommandError(StepError):
    """An external program failed; names the program, its arguments and its stderr."""

    title = "Command failed"

    def __init__(
        self,
        program: str,
        args: Sequence[str],
        returncode: int | None,
        stderr: str,
        *,
        fix: str = "",
    ) -> None:
        shown = " ".join([program, *args])
        last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        status = "could not be started" if returncode is None else f"exited with {returncode}"
        message = f"`{shown}` {status}" + (f": {last}" if last else "")
        super().__init__(message, fix=fix, details=stderr)
        self.program = program
        self.argv = list(args)
        self.returncode = returncode
        self.stderr = stderr


class DownloadError(StepError):
    """A file could not be fetched from any mirror."""

    title = "Download failed"


class ChecksumError(DownloadError):
    """A download's md5 does not match the published sum."""

    title = "Checksum mismatch"

    def __init__(
        self, name: str, expected: str, actual: str, *, source: str = "", algorithm: str = "md5"
    ) -> None:
        where = f" from {source}" if source else ""
        super().__init__(
            f"{name}{where}: {algorithm} is {actual}, expected {expected}",
            fix="the mirror's copy is corrupt or was replaced; try again or use another mirror",
        )
        self.name = name
        self.expected = expected
        self.actual = actual
        self.source = source


class RemasterError(StepError):
    """The release image or an input to the overlay is unusable."""

    title = "Remaster failed"


class NetworkError(StepError):
    """Interface, dnsmasq or preflight problem."""

    title = "Network"


class DeployError(StepError):
    """Publishing to the TFTP root failed."""

    title = "Deploy failed"


class RemoteError(StepError):
    """A remote host (deploy.target, the router) could not be reached or refused a command."""

    title = "Remote host"
