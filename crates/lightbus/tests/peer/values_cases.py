"""The table of values crossing between Rust and Python Lightbus 1.1.2 (tests/interop_values.rs).

Each case names a Python type hint and one value of it; the Rust side of the test holds the
same value in the Rust type standing for that hint. `python_form(case)` is the JSON the peer
writes for the value (its `deform_to_bus`), which Rust must write byte for byte; `casts(case)`
says whether the peer's own `cast_to_hint` turns that JSON back into the value (it does not
for `UUID` and `Dict[str, Decimal]`: quirks of the peer, see the README).

`datetime.time` is not in the table: the peer cannot send one at all (`deform_to_bus` leaves it
as it is and the JSON encoder rejects it), so there is no Python form to compare with.
"""

import datetime
import decimal
import enum
import uuid
from dataclasses import dataclass
from typing import Dict, List, Optional

from lightbus import Api, Event
from lightbus.schema.schema import Parameter
from lightbus.utilities.casting import cast_to_hint
from lightbus.utilities.deforming import deform_to_bus

# A raising handler answers with an error result instead of killing the worker on 3.10+.
import py310_shims  # noqa: F401  (imported for its effect)

UTC = datetime.timezone.utc


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclass
class Order:
    sku: str
    qty: int
    when: Optional[datetime.datetime]
    note: str = ""


# name: (hint, value, whether the peer's cast_to_hint restores the value from its JSON)
CASES = {
    "datetime_utc": (datetime.datetime, datetime.datetime(2024, 5, 1, 12, 34, 56, 789012, UTC), True),
    "datetime_half_second": (datetime.datetime, datetime.datetime(2024, 5, 1, 12, 34, 56, 500000, UTC), True),
    "datetime_whole_second": (datetime.datetime, datetime.datetime(2024, 5, 1, 12, 34, 56, 0, UTC), True),
    "datetime_nanos": (datetime.datetime, datetime.datetime(2024, 5, 1, 12, 34, 56, 123456, UTC), True),
    "datetime_offset": (
        datetime.datetime,
        datetime.datetime(2024, 5, 1, 12, 34, 56, 250000, datetime.timezone(datetime.timedelta(hours=-5, minutes=-30))),
        True,
    ),
    "naive_datetime": (datetime.datetime, datetime.datetime(2024, 5, 1, 12, 34, 56, 5), True),
    "date": (datetime.date, datetime.date(2024, 5, 1), True),
    "decimal": (decimal.Decimal, decimal.Decimal("-12.50"), True),
    "uuid": (uuid.UUID, uuid.UUID("6f1c1f4e-1e2d-4c55-9a7b-0123456789ab"), False),
    "bytes": (bytes, b"\x00\xffhi", True),
    "color": (Color, Color.GREEN, True),
    "big_integer": (int, 2**53 + 1, True),
    "float": (float, 0.1, True),
    "text": (str, "h\u00e9llo \u2713 \U0001F600 \"q\"", True),
    "order": (Order, Order(sku="A-1", qty=2, when=datetime.datetime(2024, 5, 1, 0, 0, 0, 500000, UTC)), True),
    "datetimes": (List[datetime.datetime], [datetime.datetime(2024, 5, 1, 0, 0, 1, 0, UTC)], True),
    "prices": (Dict[str, decimal.Decimal], {"a": decimal.Decimal("1.50"), "b": decimal.Decimal("0")}, False),
}


def python_form(case):
    return deform_to_bus(CASES[case][1])


def check_received(case, raw):
    """Raises unless `raw` (JSON as received) is exactly what Python writes for the case's
    value, and (where the peer casts) casts back to it."""
    hint, expected, casts = CASES[case]
    problems = []
    if raw != python_form(case):
        problems.append(f"received {raw!r}, Python writes {python_form(case)!r}")
    if casts:
        try:
            cast = cast_to_hint(raw, hint)
        except Exception as error:  # a parse failure is a failed cell, reported as such
            cast = f"cast failed: {error!r}"
        if cast != expected:
            problems.append(f"cast to {hint} gives {cast!r}, not {expected!r}")
    return problems


class PyEvents(Api):
    """The event `values`, with one parameter per case, typed with the case's hint."""

    values = Event(parameters=[Parameter(name, hint) for name, (hint, _, _) in CASES.items()])

    class Meta:
        name = "py_events"
