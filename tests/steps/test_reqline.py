"""``steps.reqline.plain`` against ``packaging``: what it reads, packaging reads the same way."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.requirements import InvalidRequirement, Requirement

from steps.errors import AnswersError
from steps.picore.wheels import Target, check_requirement, for_target
from steps.reqline import plain

NAME_CHARS = "abcXYZ019._-"
names = st.text(NAME_CHARS, min_size=1, max_size=8)
versions = st.lists(st.text("0123456789", min_size=1, max_size=3), min_size=1, max_size=4).map(
    ".".join
)
ops = st.sampled_from(["==", "!=", ">=", "<=", ">", "<", "~=", "===", "=", "=>"])
lines = st.builds(
    lambda name, extras, clause, pad: pad + name + extras + clause + pad,
    names,
    st.lists(names, max_size=3).map(lambda e: f"[{','.join(e)}]" if e else ""),
    st.one_of(st.just(""), st.builds(lambda o, v: o + v, ops, versions)),
    st.sampled_from(["", " "]),
)


def _packaging(line: str) -> str | None:
    try:
        return str(Requirement(line))
    except InvalidRequirement:
        return None


@settings(max_examples=600, deadline=None)
@given(lines)
def test_a_plain_line_reads_as_packaging_reads_it(line: str) -> None:
    got = plain(line)
    if got is not None:
        assert got == _packaging(line)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("fastapi", "fastapi"),
        ("  uvicorn  ", "uvicorn"),
        ("uvicorn[standard]>=0.30", "uvicorn[standard]>=0.30"),
        ("a[z,b,z]==01.2", "a[b,z]==01.2"),
        ("Zope.Interface_x-y<6", "Zope.Interface_x-y<6"),
    ],
)
def test_plain_lines_are_read(line: str, expected: str) -> None:
    assert plain(line) == expected == _packaging(line)


@pytest.mark.parametrize(
    "line",
    [
        'anyio; python_version < "3.11"',
        "pkg @ https://example.org/pkg-1.0-py3-none-any.whl",
        "x>=1,<2",
        "x~=1.4",
        "x==1.*",
        "x>=1.0rc1",
        "x >= 1",
        "x[a, b]",
        "-e .",
        "x>=1..0",
        "",
        "x[",
    ],
)
def test_other_lines_go_to_packaging(line: str) -> None:
    assert plain(line) is None


def test_packaging_still_judges_what_is_not_plain() -> None:
    target = Target("3.11", ("linux_armv7l",), "armv7l")
    assert check_requirement('anyio; python_version < "3.11"', "k") == (
        'anyio; python_version < "3.11"'
    )
    assert for_target(['anyio; python_version < "3.11"', "x >= 1", "fastapi"], target) == [
        "x>=1",
        "fastapi",
    ]
    with pytest.raises(AnswersError) as err:
        check_requirement("x>=1..0", "app.python_packages")
    assert err.value.key == "app.python_packages"


def test_plain_lines_do_not_import_packaging() -> None:
    code = (
        "import sys\n"
        "from steps.picore.wheels import Target, check_requirement, for_target\n"
        "t = Target('3.11', ('linux_armv7l',), 'armv7l')\n"
        "for line in ('fastapi', 'uvicorn[standard]>=0.30', 'zeroconf'):\n"
        "    check_requirement(line, 'k')\n"
        "assert for_target(['fastapi', 'zeroconf', 'fastapi'], t) == ['fastapi', 'zeroconf']\n"
        "print('packaging' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
