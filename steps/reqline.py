"""Plain requirement lines (``fastapi``, ``uvicorn[standard]>=0.30``) read without ``packaging``.

Every run checks the app's requirement lines and writes them the way pip sees them (the wheel
cache is keyed on that form), and ``packaging.requirements`` costs about as much to import as
the rest of a no-change rerun's app step. Nearly every real line is of the plain shape this
module reads: a name, optional extras, at most one version clause with a release-only version.
For those, ``plain`` gives exactly what ``str(packaging.requirements.Requirement(line))`` gives
(``tests/steps/test_reqline.py`` holds the two against each other); anything else — markers,
URLs, pre-releases, wildcards, ``~=``, several clauses, whitespace inside — returns None and the
caller asks ``packaging``, which stays the judge of what is valid (``invalid`` asks it for both
callers that check lines: the answers model and the app step).
"""

from __future__ import annotations

import re

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_PLAIN = re.compile(
    rf"({_NAME})(?:\[({_NAME}(?:,{_NAME})*)\])?(?:(==|!=|>=|<=|>|<)([0-9]+(?:\.[0-9]+)*))?"
)


def plain(line: str) -> str | None:
    """``line`` as pip sees it when it has the plain shape; None: ``packaging`` must read it."""
    match = _PLAIN.fullmatch(line.strip())
    if match is None:
        return None
    name, extras, op, version = match.groups()
    out = name
    if extras:
        out += "[" + ",".join(sorted(set(extras.split(",")))) + "]"
    if op:
        out += op + version
    return out


def invalid(line: str) -> str | None:
    """Why ``line`` is not a pip requirement (``packaging``'s words); None when it is one."""
    if plain(line) is not None:
        return None
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        Requirement(line)
    except InvalidRequirement as exc:
        return str(exc)
    return None
