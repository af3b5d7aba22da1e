"""Exit codes of every command (DESIGN.md "Exit codes")."""

from __future__ import annotations

from enum import IntEnum

from steps.errors import FirecoreError


class ExitCode(IntEnum):
    """0 success; 1 a step failed; 2 bad usage or invalid answers; 130 interrupted."""

    OK = 0
    STEP_FAILED = 1
    USAGE = 2
    INTERRUPTED = 130


def exit_code_for(error: BaseException) -> ExitCode:
    """The exit code for an exception that ended a run."""
    if isinstance(error, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(error, FirecoreError):
        return ExitCode(error.exit_code)
    return ExitCode.STEP_FAILED
