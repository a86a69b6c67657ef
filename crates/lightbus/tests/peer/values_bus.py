"""A bus module for `lightbus run`: the Python side of tests/interop_values.rs.

Serves `py_values`: one RPC per case of values_cases.py, typed with the case's hint (so the
stored schema is the peer's for that hint). Run with `cast_values: false`: each handler gets
the JSON exactly as sent, checks it is what Python itself writes and casts back to the value,
and answers with the value (which the peer writes in its own form). A failed check raises, so
the Rust caller gets an error result naming it. Also `optional_omitted` / `default_omitted`,
whose defaults apply only when the caller leaves the argument out.
"""

import datetime as dt
import decimal as dec
import uuid as uu
from typing import Dict, List, Optional

import lightbus
from lightbus import Api

from values_cases import CASES, Color, Order, PyEvents, check_received

bus = lightbus.create()


def _answer(case, value):
    problems = check_received(case, value)
    if problems:
        raise ValueError(f"{case}: " + "; ".join(problems))
    return CASES[case][1]


class PyValues(Api):
    # Methods are named after the cases; modules are imported under other names, as a method
    # named `decimal` would hide the module in the annotations of the methods below it.

    class Meta:
        name = "py_values"

    def datetime_utc(self, value: dt.datetime) -> dt.datetime:
        return _answer("datetime_utc", value)

    def datetime_half_second(self, value: dt.datetime) -> dt.datetime:
        return _answer("datetime_half_second", value)

    def datetime_whole_second(self, value: dt.datetime) -> dt.datetime:
        return _answer("datetime_whole_second", value)

    def datetime_nanos(self, value: dt.datetime) -> dt.datetime:
        return _answer("datetime_nanos", value)

    def datetime_offset(self, value: dt.datetime) -> dt.datetime:
        return _answer("datetime_offset", value)

    def naive_datetime(self, value: dt.datetime) -> dt.datetime:
        return _answer("naive_datetime", value)

    def date(self, value: dt.date) -> dt.date:
        return _answer("date", value)

    def decimal(self, value: dec.Decimal) -> dec.Decimal:
        return _answer("decimal", value)

    def uuid(self, value: uu.UUID) -> uu.UUID:
        return _answer("uuid", value)

    def bytes(self, value: bytes) -> bytes:
        return _answer("bytes", value)

    def color(self, value: Color) -> Color:
        return _answer("color", value)

    def big_integer(self, value: int) -> int:
        return _answer("big_integer", value)

    def float(self, value: float) -> float:
        return _answer("float", value)

    def text(self, value: str) -> str:
        return _answer("text", value)

    def order(self, value: Order) -> Order:
        return _answer("order", value)

    def datetimes(self, value: List[dt.datetime]) -> List[dt.datetime]:
        return _answer("datetimes", value)

    def prices(self, value: Dict[str, dec.Decimal]) -> Dict[str, dec.Decimal]:
        return _answer("prices", value)

    def optional_omitted(self, a: int, b: Optional[str] = None) -> Optional[str]:
        return b

    def default_omitted(self, a: int, b: str = "dflt") -> str:
        return b


bus.client.register_api(PyValues())
bus.client.register_api(PyEvents())  # for its schema; values_fire.py fires it
