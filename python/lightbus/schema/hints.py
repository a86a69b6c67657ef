"""JSON Schemas from Python type hints, as Python Lightbus 1.1.2 derives them.

A worker stores each API's schema on the bus (`schema:<api>`); a Python-front worker and an
upstream worker serving the same class must store the same bytes, or each would validate
against a different description of one API. So the rules here follow upstream's, quirks
included (the tests compare both byte for byte):

- a parameter's schema comes from its annotation, else from its default's type, else `{}`;
- a default of None adds `{"type": "null"}`; any default is written into the schema;
- `Union[...]` gives `anyOf` of its members; a single schema is never wrapped;
- str, bytes, complex and UUID are strings; Decimal a string with a decimal pattern;
  datetime, date and time strings with `format`; bool, float, int as JSON types;
- `Mapping[str, X]` an object whose values are X; other mappings plain objects;
  named tuples and annotated classes (dataclasses) objects with their fields;
  `Tuple[A, B]` a fixed-length array; lists, tuples and sets arrays of their item type;
- Enums are their values' type with `enum`; `__to_bus__` uses its return annotation;
- anything else (including annotations given as strings) accepts any value: `{}`.

Annotations are read as `inspect.signature` gives them (not resolved), as upstream does.
"""

import collections.abc
import datetime
import inspect
import logging
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar, Union, get_type_hints
from uuid import UUID

logger = logging.getLogger(__name__)

EMPTY = inspect.Parameter.empty
NoneType = type(None)


def split_hint(hint):
    """(origin, args) of a generic alias such as `List[int]`; (hint, None) for plain types.
    Unbound type variables are dropped from the arguments."""
    if hasattr(hint, "__origin__"):
        args = [a for a in getattr(hint, "__args__", ()) if not isinstance(a, TypeVar)]
        return hint.__origin__, (args or None)
    return hint, None


def is_subclass(value, classes):
    """issubclass() that answers False for values that are not classes."""
    try:
        return issubclass(value, classes)
    except (TypeError, AttributeError):
        return False


def one_of(schemas):
    """A single schema as it is; several as `anyOf`."""
    return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}


def type_schemas(hint):
    """Every JSON Schema a value of type `hint` may take (more than one for unions)."""
    origin, args = split_hint(hint)
    if origin is Union:
        return [schema for member in args for schema in type_schemas(member)]
    if origin is EMPTY or origin is Any or origin is Ellipsis:
        return [{}]
    if hasattr(origin, "__to_bus__"):
        return type_schemas(inspect.signature(origin.__to_bus__).return_annotation)
    if is_subclass(origin, (str, bytes, complex, UUID)):
        return [{"type": "string"}]
    if is_subclass(origin, Decimal):
        return [{"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}]
    if is_subclass(origin, bool):
        return [{"type": "boolean"}]
    if is_subclass(origin, float):
        return [{"type": "number"}]
    if is_subclass(origin, int):
        return [{"type": "integer"}]
    if is_subclass(origin, collections.abc.Mapping) and args and args[0] == str:
        return [{"type": "object", "additionalProperties": one_of(type_schemas(args[1]))}]
    if is_subclass(origin, (dict, collections.abc.Mapping)):
        return [{"type": "object"}]
    if is_subclass(origin, tuple) and hasattr(origin, "_fields"):
        return [object_schema(origin, origin._fields)]
    if is_subclass(origin, Enum) and origin.__members__:
        return [enum_schema(origin)]
    if is_subclass(origin, tuple) and args:
        return [
            {
                "type": "array",
                "maxItems": len(args),
                "minItems": len(args),
                "items": [one_of(type_schemas(member)) for member in args],
            }
        ]
    if is_subclass(origin, (list, tuple, set)):
        schema = {"type": "array"}
        if args:
            schema["items"] = one_of(type_schemas(args[0]))
        return [schema]
    if is_subclass(origin, NoneType) or origin is None:
        return [{"type": "null"}]
    if is_subclass(origin, datetime.datetime):
        return [{"type": "string", "format": "date-time"}]
    if is_subclass(origin, datetime.date):
        return [{"type": "string", "format": "date"}]
    if is_subclass(origin, datetime.time):
        return [{"type": "string", "format": "time"}]
    if getattr(origin, "__annotations__", None):
        return [object_schema(origin)]
    logger.warning(
        "No JSON Schema for the type %r: values of it are not checked (give classes type "
        "hints on their fields)",
        hint,
    )
    return [{}]


def enum_schema(enum_class):
    """The first member's value type, and every member's value (aliases included)."""
    members = list(enum_class.__members__.values())
    schema = {}
    value_schema = type_schemas(type(members[0].value))[0]
    if "type" in value_schema:
        schema["type"] = value_schema["type"]
        schema["enum"] = [member.value for member in members]
    else:
        logger.warning("No JSON type for the values of the enum %r", enum_class)
    return schema


def annotation_schemas(annotation, default=EMPTY):
    """Schemas of a parameter or field from its annotation, else its default's type."""
    if annotation is not EMPTY:
        schemas = type_schemas(annotation)
        if default is None and {"type": "null"} not in schemas:
            schemas.append({"type": "null"})
        return schemas
    if default is not EMPTY and default is not None:
        return type_schemas(type(default))
    return [{}]


def field_default(cls, name):
    """The default of field `name` of a class or named tuple, or EMPTY."""
    if is_subclass(cls, tuple):
        default = getattr(cls, "_field_defaults", {}).get(name, EMPTY)
    else:
        default = getattr(cls, name, EMPTY)
    if callable(default) or isinstance(default, property):
        return EMPTY
    return default


def object_schema(cls, names=None):
    """An object schema for a named tuple (its `_fields`) or an annotated class (its public
    annotated and class attributes), titled with the class's name."""
    # Imported here: deforming imports this module's helpers.
    from lightbus.utilities.deforming import deform_to_bus

    hints = get_type_hints(cls)
    if names is None:
        names = [n for n in set(list(hints.keys()) + dir(cls)) if n[0] != "_"]
    properties = {}
    required = []
    for name in names:
        if callable(getattr(cls, name, None)):
            continue
        default = field_default(cls, name)
        if name in hints:
            properties[name] = one_of(annotation_schemas(hints[name], default))
        elif default is not EMPTY:
            properties[name] = one_of(type_schemas(type(default)))
        else:
            properties[name] = {}
        if default is EMPTY:
            required.append(name)
        else:
            properties[name]["default"] = deform_to_bus(default)
    schema = {
        "type": "object",
        "title": cls.__name__,
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


def parameter_schema(parameter):
    """The schema of one `inspect.Parameter`, its default included."""
    schemas = annotation_schemas(parameter.annotation, parameter.default)
    if parameter.default is not EMPTY:
        for schema in schemas:
            schema["default"] = parameter.default
    return one_of(schemas)


def response_schema(return_annotation):
    """The schema of an RPC's return value (`{}` when not annotated)."""
    if return_annotation is EMPTY:
        return {}
    return one_of(type_schemas(return_annotation))


def describe_parameters(parameters, member):
    """The keyword parameters as the engine takes them: name, schema, required. Positional-only
    and `*args` parameters cannot be sent on the bus and are left out."""
    described = []
    for parameter in parameters:
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.VAR_POSITIONAL):
            logger.warning(
                "%s: the positional-only parameter %r cannot be passed on the bus", member,
                parameter.name,
            )
            continue
        if parameter.kind == parameter.VAR_KEYWORD:
            logger.warning(
                "%s: **%s is not described in the schema; callers and validation see only the "
                "named parameters",
                member,
                parameter.name,
            )
            continue
        described.append(
            {
                "name": parameter.name,
                "schema": parameter_schema(parameter),
                "required": parameter.default is EMPTY,
            }
        )
    return described
