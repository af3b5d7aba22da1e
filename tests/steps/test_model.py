"""steps.model: strict records, held to pydantic's strict mode by a differential test.

The answers used pydantic until its import cost most of a no-change rerun; ``steps.model`` must
refuse and accept exactly what pydantic's strict, extra-forbidding models did (same first error
type and location, same kept value), which hypothesis checks on a model with every field kind
the answers use. pydantic stays a test dependency only (FastAPI, the bundled app, brings it).
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steps.model import BaseModel, Field, ValidationError, ValidationInfo, field_validator

Colour = Literal["red", "green"]


def _red() -> list[Colour]:
    return ["red"]


class Inner(BaseModel):
    name: str = ""
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value.startswith("-"):
            raise ValueError(f"{value!r} starts with '-'")
        return value.strip()


class Outer(BaseModel):
    version: Literal[1]
    port: int = Field(default=8000, ge=1024, le=65535)
    ratio: float = Field(default=4.0, ge=0, le=60)
    on: bool = True
    colours: list[Colour] = Field(default_factory=_red, min_length=1)
    inner: Inner = Field(default_factory=Inner)
    named: dict[str, Inner] = Field(default_factory=dict)

    @field_validator("colours")
    @classmethod
    def _colours(cls, value: list[str], info: ValidationInfo) -> list[str]:
        assert info.field_name == "colours"
        return sorted(set(value))


_STRICT = pydantic.ConfigDict(extra="forbid", validate_assignment=True, strict=True)


class PInner(pydantic.BaseModel):
    model_config = _STRICT
    name: str = ""
    tags: dict[str, str] = pydantic.Field(default_factory=dict)

    @pydantic.field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value.startswith("-"):
            raise ValueError(f"{value!r} starts with '-'")
        return value.strip()


class POuter(pydantic.BaseModel):
    model_config = _STRICT
    version: Literal[1]
    port: int = pydantic.Field(default=8000, ge=1024, le=65535)
    ratio: float = pydantic.Field(default=4.0, ge=0, le=60)
    on: bool = True
    colours: list[Colour] = pydantic.Field(default_factory=_red, min_length=1)
    inner: PInner = pydantic.Field(default_factory=PInner)
    named: dict[str, PInner] = pydantic.Field(default_factory=dict)

    @pydantic.field_validator("colours")
    @classmethod
    def _colours(cls, value: list[str]) -> list[str]:
        return sorted(set(value))


# values of every TOML type, biased to the boundaries and to the wrong type for each field
SCALARS = st.one_of(
    st.sampled_from([0, 1, 1023, 1024, 65535, 65536, -1, 60, 61, 0.5, 60.5, True, False]),
    st.sampled_from(["", "red", "green", "blue", "-x", " a ", "8080", "true"]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),  # TOML integers are 64-bit
    st.floats(allow_nan=False),
    st.text(max_size=5),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["name", "tags", "a", "x"]), inner, max_size=3),
    ),
    max_leaves=6,
)
KEYS = st.sampled_from(["version", "port", "ratio", "on", "colours", "inner", "named", "bogus"])
DOCS = st.dictionaries(KEYS, VALUES, max_size=4).map(
    lambda d: {"version": 1, **d}
) | st.dictionaries(KEYS, VALUES, max_size=4)


def _first(exc: Exception) -> tuple[str, tuple[Any, ...]]:
    err = exc.errors()[0]  # type: ignore[attr-defined]
    return err["type"], tuple(err["loc"])


def _outcome(make: Any) -> Any:
    """What ``make()`` keeps (the model dumped), or its first error's type and location."""
    try:
        return make().model_dump()
    except (ValidationError, pydantic.ValidationError) as exc:
        return _first(exc)


def _validated(doc: dict[str, Any]) -> tuple[Any, Any]:
    """(ours, pydantic's) outcome for ``doc``."""
    return (
        _outcome(lambda: Outer.model_validate(copy.deepcopy(doc))),
        _outcome(lambda: POuter.model_validate(copy.deepcopy(doc))),
    )


@settings(max_examples=800, deadline=None)
@given(DOCS)
def test_accepts_and_refuses_what_pydantic_strict_mode_does(doc: dict[str, Any]) -> None:
    got, expected = _validated(doc)
    if doc.get("version") is True:  # pydantic lets true be Literal[1]; a TOML true is not 1
        assert got == ("literal_error", ("version",))
        return
    assert got == expected


#: one value of each TOML type (and the boundaries), for every field: the whole cross product
EACH_TYPE = [True, False, 0, 1, 1024, 65536, 1.5, 61.0, "", "x", "red", [], ["red"], ["blue"],
             [1], {}, {"name": "a"}, {"name": 1}, {"a": {"name": "-b"}}, {"x": 1}]  # fmt: skip
FIELDS = ["version", "port", "ratio", "on", "colours", "inner", "named"]


@pytest.mark.parametrize("key", FIELDS)
@pytest.mark.parametrize("value", EACH_TYPE, ids=repr)
def test_each_field_takes_each_toml_type_like_pydantic(key: str, value: Any) -> None:
    got, expected = _validated({"version": 1, key: value})
    if key == "version" and value is True:  # see above: a TOML true is not 1
        expected = ("literal_error", ("version",))
    assert got == expected


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(FIELDS[1:]), VALUES)
def test_assignment_is_checked_like_pydantic(key: str, value: Any) -> None:

    def assigned(model: Any) -> Any:
        setattr(model, key, copy.deepcopy(value))
        return model

    assert _outcome(lambda: assigned(Outer(version=1))) == _outcome(
        lambda: assigned(POuter(version=1))
    )


def test_messages_name_what_is_wrong() -> None:
    cases = {
        "port": ("8080", "int_type", "Input should be a valid integer"),
        "on": ("yes", "bool_type", "Input should be a valid boolean"),
        "colours": (["blue"], "literal_error", "Input should be 'red' or 'green'"),
        "ratio": (61, "less_than_equal", "Input should be less than or equal to 60"),
        "inner": ("x", "model_type", "Input should be a valid dictionary or instance of Inner"),
    }
    for key, (value, kind, msg) in cases.items():
        with pytest.raises(ValidationError) as info:
            Outer.model_validate({"version": 1, key: value})
        err = info.value.errors()[0]
        assert (err["type"], err["msg"]) == (kind, msg), key
    with pytest.raises(ValidationError) as info:
        Outer.model_validate({"version": 1, "inner": {"name": "-a"}})
    assert info.value.errors()[0]["msg"] == "Value error, '-a' starts with '-'"
    assert info.value.errors()[0]["loc"] == ("inner", "name")


def test_a_refused_assignment_keeps_the_old_value() -> None:
    outer = Outer(version=1, port=9000)
    with pytest.raises(ValidationError):
        outer.port = 80
    assert outer.port == 9000
    with pytest.raises(ValidationError):
        outer.bogus = 1
    assert "bogus" not in outer.model_dump()


def test_copies_dumps_and_equality_are_deep() -> None:
    outer = Outer.model_validate({"version": 1, "named": {"a": {"tags": {"k": "v"}}}})
    twin = outer.model_copy(deep=True)
    assert twin == outer and twin is not outer
    twin.named["a"].tags["k"] = "changed"
    assert outer.named["a"].tags["k"] == "v" and twin != outer
    dumped = outer.model_dump()
    dumped["named"]["a"]["tags"]["k"] = "changed"
    assert outer.named["a"].tags["k"] == "v"
    assert dict(outer)["port"] == 8000
    assert Outer.model_construct(port=1).port == 1  # unchecked, as documented


def test_the_json_schema_describes_every_field() -> None:
    Outer.model_fields["port"].description = "TCP port"
    schema = Outer.model_json_schema()
    assert schema["required"] == ["version"]
    assert schema["additionalProperties"] is False
    port = schema["properties"]["port"]
    assert port == {
        "type": "integer",
        "description": "TCP port",
        "default": 8000,
        "minimum": 1024,
        "maximum": 65535,
    }
    assert schema["properties"]["colours"]["items"] == {"enum": ["red", "green"], "type": "string"}
    assert schema["properties"]["named"]["additionalProperties"] == {"$ref": "#/$defs/Inner"}
    assert schema["$defs"]["Inner"]["properties"]["tags"]["type"] == "object"


def test_an_unsupported_field_type_is_refused_when_the_class_is_made() -> None:
    with pytest.raises(TypeError):

        class Bad(BaseModel):
            when: bytes = b""
