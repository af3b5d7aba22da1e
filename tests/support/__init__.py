"""Helpers shared by the tests: fixture mirrors, namespace labs, boot trees, wheels."""


def json_lines(stdout: str) -> list[dict]:
    """The JSON lines of a ``--json`` command, checked to end with ``done``, without it."""
    import json

    lines = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    assert lines and lines[-1]["type"] == "done", stdout
    return lines[:-1]
