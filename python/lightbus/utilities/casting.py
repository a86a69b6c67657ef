"""Casting values from the bus to the type hints of the function that receives them.

RPC arguments and event parameters arrive as JSON; with the API's `cast_values` option (on
by default) each is cast to its parameter's hint before the handler runs, as Python Lightbus
does: ISO text to datetime/date, base64 to bytes, objects to named tuples and dataclasses
(recursively), lists to their item types, and any other class is called with the value
(`Decimal("1.5")`, `UUID(text)`, `MyEnum(value)`). A value that does not cast is passed on
unchanged, with a warning. `Optional[X]` casts to X; other unions are left alone.
"""

import dataclasses
import datetime
import inspect
import logging
from base64 import b64decode
from collections.abc import Mapping
from enum import Enum
from typing import Any, Union, get_type_hints

from lightbus.schema.hints import EMPTY, is_subclass, split_hint

logger = logging.getLogger(__name__)

__all__ = ["cast_to_signature", "cast_to_hint"]

try:  # dateutil reads more ISO 8601 spellings, when installed
    from dateutil.parser import isoparse as _parse_datetime
except ImportError:  # pragma: no cover - depends on the environment

    def _parse_datetime(text):
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        return datetime.datetime.fromisoformat(text)


def hints_of(function):
    """The resolved type hints of `function`, or {} when they cannot be resolved."""
    try:
        return get_type_hints(function)
    except Exception as error:  # unresolvable forward references, odd callables
        logger.warning("cannot read the type hints of %r, values are not cast: %s", function, error)
        return {}


def cast_to_signature(parameters, function, hints=None):
    """A copy of `parameters` with each value cast to `function`'s hint for it."""
    hints = hints_of(function) if hints is None else hints
    cast = dict(parameters)
    for name, hint in hints.items():
        if name in cast:
            cast[name] = cast_to_hint(cast[name], hint)
    return cast


def _optional_of(hint):
    origin, args = split_hint(hint)
    if origin is Union and args and len(args) == 2 and args[1] is type(None):
        return args[0]
    return None


def _is_instance(value, hint):
    try:
        return isinstance(value, hint)
    except TypeError:
        return False


def _cast_or_warn(convert, value, hint):
    try:
        return convert(value)
    except Exception as error:
        logger.warning("cannot cast %r to %r, passing it on as it is: %s", value, hint, error)
        return value


def cast_to_hint(value, hint):
    """`value` cast to `hint` (see the module's description)."""
    if value is None or hint is Any or hint is Ellipsis or hint is EMPTY:
        return value
    hint = _optional_of(hint) or hint
    origin, args = split_hint(hint)
    is_class = inspect.isclass(origin)
    if origin is Union or _is_instance(value, hint):
        return value
    from_bus = getattr(hint, "__from_bus__", None)
    if from_bus is not None:
        if isinstance(value, Mapping):
            return _mapping_to_instance(value, hint, make=lambda fields: from_bus(fields))
        return from_bus(value)
    if is_subclass(hint, bytes):
        return _cast_or_warn(lambda v: b64decode(v.encode("utf8")), value, hint)
    if isinstance(value, Mapping) and (
        (is_subclass(hint, tuple) and hasattr(hint, "_fields")) or dataclasses.is_dataclass(hint)
    ):
        return _mapping_to_instance(value, hint, make=lambda fields: hint(**fields))
    if is_class and isinstance(value, str) and is_subclass(origin, datetime.datetime):
        return _cast_or_warn(_parse_datetime, value, hint)
    if is_class and isinstance(value, str) and is_subclass(origin, datetime.date):
        return _cast_or_warn(lambda v: _parse_datetime(v).date(), value, hint)
    if is_class and is_subclass(origin, list):
        if args and hasattr(value, "__iter__"):
            value = [cast_to_hint(item, args[0]) for item in value]
        return _cast_or_warn(list, value, hint)
    if is_class and is_subclass(origin, tuple):
        if args and hasattr(value, "__iter__"):
            value = [cast_to_hint(item, _tuple_item_hint(args, i)) for i, item in enumerate(value)]
        return _cast_or_warn(tuple, value, hint)
    if is_class and is_subclass(origin, (set, frozenset)):
        if args and hasattr(value, "__iter__"):
            value = [cast_to_hint(item, args[0]) for item in value]
        return _cast_or_warn(origin, value, hint)
    if is_class and is_subclass(origin, Mapping):
        if args and len(args) == 2 and isinstance(value, Mapping):
            return {key: cast_to_hint(item, args[1]) for key, item in value.items()}
        return value
    if inspect.isclass(hint) and getattr(hint, "__annotations__", None) and not is_subclass(hint, Enum):
        logger.warning(
            "cannot cast to the class %r, passing the value on as it is: use a NamedTuple, a "
            "dataclass, or give the class __from_bus__()",
            hint,
        )
        return value
    if not callable(hint):
        return value
    return _cast_or_warn(hint, value, hint)


def _tuple_item_hint(args, index):
    """The hint of item `index` of `Tuple[A, B]` (by position) or `Tuple[A, ...]` (always A)."""
    if len(args) == 2 and args[1] is Ellipsis:
        return args[0]
    return args[index] if index < len(args) else Any


def _mapping_to_instance(mapping, cls, make):
    """Builds `cls` from a mapping, casting each field to its hint."""
    fields = {}
    for name, hint in hints_of(cls).items():
        if name in mapping:
            fields[name] = cast_to_hint(mapping[name], hint)
    return _cast_or_warn(make, fields, cls)

