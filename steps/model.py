"""Strictly validated records for the answers file: fields, bounds, per-field checks.

The answers need a small part of what pydantic offers: typed fields with defaults and bounds,
strict types (a TOML string is never a bool or a number), unknown keys refused, validators per
field, validation on assignment, dump, copy and a JSON Schema. This module is that part, with
pydantic's names (``Field``, ``field_validator``, ``model_validate``, ``model_dump`` …) so the
answers read as any pydantic model does. Why not pydantic itself: importing it and building the
answers' twelve models took 433 M of the 1263 M instructions of a no-change ``--answers`` rerun
(valgrind), the run a user repeats most. Now this module is 7 M, building the answers' models
and their regexes ~23 M and loading a file ~10 M.

Errors are pydantic-shaped (``ValidationError.errors()``: ``type``, ``loc``, ``msg``,
``input``), the first problem only: ``steps.answers.answers_error`` turns it into a message
that names the key. Types understood: ``str``, ``int``, ``float``, ``bool``, ``Literal[…]``,
``list[T]``, ``dict[str, T]`` and nested models; anything else is refused when the class is
defined.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self, dataclass_transform, get_args, get_origin

Loc = tuple[str | int, ...]
Check = Callable[[Any, Loc], Any]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class ValidationError(ValueError):
    """A value does not fit its field; ``errors()`` describes the (first) problem."""

    def __init__(self, kind: str, loc: Loc, msg: str, value: Any) -> None:
        super().__init__(f"{'.'.join(map(str, loc))}: {msg}")
        self._error = {"type": kind, "loc": loc, "msg": msg, "input": value}

    def errors(self, include_url: bool = False) -> list[dict[str, Any]]:
        """The problem as pydantic lists it (one entry)."""
        return [dict(self._error)]


@dataclass
class FieldInfo:
    """One field: its type, default and bounds; ``description`` is filled in when shown."""

    annotation: Any = None
    default: Any = MISSING
    default_factory: Callable[[], Any] | None = None
    ge: float | None = None
    le: float | None = None
    min_length: int | None = None
    description: str | None = None

    def get_default(self, *, call_default_factory: bool = True) -> Any:
        """The default value (a fresh one from the factory)."""
        if self.default_factory is not None and call_default_factory:
            return self.default_factory()
        return self.default

    @property
    def required(self) -> bool:
        """No default: the key must be given."""
        return self.default is MISSING and self.default_factory is None


def Field(
    default: Any = MISSING,
    *,
    default_factory: Callable[[], Any] | None = None,
    ge: float | None = None,
    le: float | None = None,
    min_length: int | None = None,
) -> Any:
    """A field's default and bounds (``ge``/``le`` for numbers, ``min_length`` for lists)."""
    return FieldInfo(
        default=default, default_factory=default_factory, ge=ge, le=le, min_length=min_length
    )


@dataclass(frozen=True)
class ValidationInfo:
    """What a validator taking a second argument is told: which field it checks."""

    field_name: str


def field_validator(*names: str) -> Callable[[Any], Any]:
    """Mark a classmethod as the check of ``names``: it gets the typed value, returns the value
    to keep, and raises ValueError to refuse it. Runs after the type and bounds checks."""

    def mark(method: Any) -> Any:
        func: Any = method.__func__ if isinstance(method, classmethod) else method
        func.__validates__ = names
        return method

    return mark


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


#: type → (error type, what a value must be, the test it must pass). Strict: a bool is not a
#: number, and neither a number nor a string is a bool.
_SCALARS: dict[type, tuple[str, str, Callable[[Any], bool]]] = {
    str: ("string_type", "a valid string", lambda v: isinstance(v, str)),
    bool: ("bool_type", "a valid boolean", lambda v: isinstance(v, bool)),
    int: ("int_type", "a valid integer", lambda v: _is_number(v) and isinstance(v, int)),
    float: ("float_type", "a valid number", _is_number),
}


def _scalar(tp: type) -> Check:
    if tp not in _SCALARS:
        raise TypeError(f"no check for {tp!r}")
    kind, what, accepts = _SCALARS[tp]
    convert = float if tp is float else None  # an int is taken for a float key, as a float

    def check(value: Any, loc: Loc) -> Any:
        if accepts(value):
            return convert(value) if convert is not None else value
        raise ValidationError(kind, loc, f"Input should be {what}", value)

    return check


def _literal(choices: tuple[Any, ...]) -> Check:
    shown = [repr(c) for c in choices]
    expected = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"

    def check(value: Any, loc: Loc) -> Any:
        for choice in choices:
            if type(value) is type(choice) and value == choice:
                return value
        raise ValidationError("literal_error", loc, f"Input should be {expected}", value)

    return check


def _list(item: Check) -> Check:
    def check(value: Any, loc: Loc) -> Any:
        if not isinstance(value, list):
            raise ValidationError("list_type", loc, "Input should be a valid list", value)
        return [item(v, (*loc, i)) for i, v in enumerate(value)]

    return check


def _dict(item: Check) -> Check:
    key_check = _scalar(str)

    def check(value: Any, loc: Loc) -> Any:
        if not isinstance(value, dict):
            raise ValidationError("dict_type", loc, "Input should be a valid dictionary", value)
        return {key_check(k, (*loc, k)): item(v, (*loc, k)) for k, v in value.items()}

    return check


def checker(tp: Any) -> Check:
    """The strict check of a value against the type ``tp``."""
    origin = get_origin(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp._checked
    if origin is Literal:
        return _literal(get_args(tp))
    if origin is list:
        return _list(checker(get_args(tp)[0]))
    if origin is dict:
        key, value = get_args(tp)
        if key is not str:
            raise TypeError(f"dict keys must be str, not {key!r}")
        return _dict(checker(value))
    return _scalar(tp)


def _bounds(info: FieldInfo) -> Check | None:
    ge, le, min_length = info.ge, info.le, info.min_length
    if ge is None and le is None and min_length is None:
        return None

    def check(value: Any, loc: Loc) -> Any:
        if ge is not None and value < ge:
            msg = f"Input should be greater than or equal to {ge}"
            raise ValidationError("greater_than_equal", loc, msg, value)
        if le is not None and value > le:
            raise ValidationError(
                "less_than_equal", loc, f"Input should be less than or equal to {le}", value
            )
        if min_length is not None and len(value) < min_length:
            items = "item" if min_length == 1 else "items"
            msg = (
                f"List should have at least {min_length} {items} after validation, not {len(value)}"
            )
            raise ValidationError("too_short", loc, msg, value)
        return value

    return check


def _validators(cls: type, name: str) -> list[Check]:
    """The class's ``field_validator`` methods for ``name``, as checks, in definition order."""
    out: list[Check] = []
    for attr in vars(cls).values():
        func = attr.__func__ if isinstance(attr, classmethod) else None
        if func is None or name not in getattr(func, "__validates__", ()):
            continue
        bound = attr.__get__(None, cls)
        takes_info = func.__code__.co_argcount == 3
        info = ValidationInfo(name)

        def check(
            value: Any,
            loc: Loc,
            bound: Any = bound,
            takes_info: bool = takes_info,
            info: ValidationInfo = info,
        ) -> Any:
            try:
                return bound(value, info) if takes_info else bound(value)
            except ValueError as exc:
                raise ValidationError("value_error", loc, f"Value error, {exc}", value) from None

        out.append(check)
    return out


def _field_check(cls: type, name: str, info: FieldInfo) -> Check:
    """Type, then bounds, then the field's validators: one check for the field."""
    steps = [checker(info.annotation)]
    bounds = _bounds(info)
    if bounds is not None:
        steps.append(bounds)
    steps += _validators(cls, name)
    if len(steps) == 1:
        return steps[0]

    def check(value: Any, loc: Loc) -> Any:
        for step in steps:
            value = step(value, loc)
        return value

    return check


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, list):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    return value


def _schema(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin = get_origin(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if tp.__name__ not in defs:
            defs[tp.__name__] = {}  # a placeholder first: a model may refer to itself
            defs[tp.__name__] = tp._object_schema(defs)
        return {"$ref": f"#/$defs/{tp.__name__}"}
    if origin is Literal:
        choices = list(get_args(tp))
        kind = "string" if all(isinstance(c, str) for c in choices) else "integer"
        return {"enum": choices, "type": kind} if len(choices) > 1 else {"const": choices[0]}
    if origin is list:
        return {"type": "array", "items": _schema(get_args(tp)[0], defs)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema(get_args(tp)[1], defs)}
    return {"type": {str: "string", bool: "boolean", int: "integer", float: "number"}[tp]}


@dataclass_transform(kw_only_default=True, field_specifiers=(Field,))
class BaseModel:
    """A record of typed fields, validated when built and on every assignment.

    Fields are the class's annotated attributes; ``Field(...)`` gives a default factory or
    bounds. Unknown keys are refused (with their name, so the caller can suggest one).
    """

    model_fields: ClassVar[dict[str, FieldInfo]] = {}
    _checks: ClassVar[dict[str, Check]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        namespace = vars(sys.modules[cls.__module__])
        fields = dict(cls.model_fields)
        for name, text in vars(cls).get("__annotations__", {}).items():
            if name.startswith("_") or str(text).startswith("ClassVar"):
                continue
            raw = vars(cls).get(name, MISSING)
            info = raw if isinstance(raw, FieldInfo) else FieldInfo(default=raw)
            info.annotation = eval(text, namespace) if isinstance(text, str) else text
            if isinstance(raw, FieldInfo):
                delattr(cls, name)  # the class attribute is the field's spec, not a value
            fields[name] = info
        cls.model_fields = fields
        cls._checks = {name: _field_check(cls, name, info) for name, info in fields.items()}

    def __init__(self, **data: Any) -> None:
        self.__dict__.update(self._fields_of(data, ()))

    @classmethod
    def _fields_of(cls, data: dict[str, Any], loc: Loc) -> dict[str, Any]:
        """Every field's value from ``data`` (checked) or its default; unknown keys refused."""
        values: dict[str, Any] = {}
        for name, info in cls.model_fields.items():
            if name in data:
                values[name] = cls._checks[name](data[name], (*loc, name))
            elif info.required:
                raise ValidationError("missing", (*loc, name), "Field required", data)
            else:
                values[name] = info.get_default()
        for name in data:
            if name not in cls.model_fields:
                msg = "Extra inputs are not permitted"
                raise ValidationError("extra_forbidden", (*loc, name), msg, data[name])
        return values

    @classmethod
    def _checked(cls, value: Any, loc: Loc) -> Any:
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            msg = f"Input should be a valid dictionary or instance of {cls.__name__}"
            raise ValidationError("model_type", loc, msg, value)
        model = cls.__new__(cls)
        model.__dict__.update(cls._fields_of(value, loc))
        return model

    @classmethod
    def model_validate(cls, obj: Any) -> Self:
        """``obj`` (a dict, e.g. parsed TOML) checked into a model."""
        model: Self = cls._checked(obj, ())
        return model

    @classmethod
    def model_construct(cls, **values: Any) -> Self:
        """A model from values as given, unchecked (defaults for the missing ones)."""
        model = cls.__new__(cls)
        for name, info in cls.model_fields.items():
            model.__dict__[name] = values[name] if name in values else info.get_default()
        return model

    @classmethod
    def check_field(cls, name: str, value: Any) -> Any:
        """``value`` checked for the field ``name`` alone (what assigning it would keep)."""
        check = cls._checks.get(name)
        if check is None:
            raise ValidationError("extra_forbidden", (name,), "Object has no such field", value)
        return check(value, (name,))

    def __setattr__(self, name: str, value: Any) -> None:
        self.__dict__[name] = self.check_field(name, value)

    def model_dump(
        self, *, mode: str = "python", include: set[str] | None = None
    ) -> dict[str, Any]:
        """The fields as plain dicts, lists and scalars (the same in "json" and "python" mode:
        every answers value is JSON-native); ``include`` keeps only those top-level fields."""
        return {
            name: _dump(self.__dict__[name])
            for name in self.model_fields
            if include is None or name in include
        }

    def model_copy(self, *, deep: bool = False) -> Self:
        """A copy; ``deep`` copies the nested models and lists too."""
        return copy.deepcopy(self) if deep else copy.copy(self)

    @classmethod
    def _object_schema(cls, defs: dict[str, Any]) -> dict[str, Any]:
        props: dict[str, Any] = {}
        for name, info in cls.model_fields.items():
            prop = _schema(info.annotation, defs)
            if info.description:
                prop["description"] = info.description
            if not info.required:
                prop["default"] = _dump(info.get_default())
            if info.ge is not None:
                prop["minimum"] = info.ge
            if info.le is not None:
                prop["maximum"] = info.le
            if info.min_length is not None:
                prop["minItems"] = info.min_length
            props[name] = prop
        schema: dict[str, Any] = {
            "title": cls.__name__,
            "type": "object",
            "properties": props,
            "additionalProperties": False,
        }
        if cls.__doc__:
            schema["description"] = " ".join(cls.__doc__.split())
        required = [name for name, info in cls.model_fields.items() if info.required]
        if required:
            schema["required"] = required
        return schema

    @classmethod
    def model_json_schema(cls) -> dict[str, Any]:
        """The JSON Schema (draft 2020-12) of the model, nested models under ``$defs``."""
        defs: dict[str, Any] = {}
        schema: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema"}
        schema.update(cls._object_schema(defs))
        if defs:
            schema["$defs"] = dict(sorted(defs.items()))
        return schema

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        yield from ((name, self.__dict__[name]) for name in self.model_fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # mutable: not a dict key

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={value!r}" for name, value in self)
        return f"{type(self).__name__}({inner})"
