"""Calls the Rust worker's `rs_values` and `rs_special` APIs from Python Lightbus 1.1.2.

For each case of values_cases.py, sends the case's value (written by the peer) and checks the
answer is exactly what Python writes for that value, and casts back to it. Then the cells that
only a Python caller can produce: omitted arguments, an integral float for an integer, NaN and
infinity, and a struct with an extra field. Prints one line `REPORT {cell: problem or null}`.
"""

import json
import math
import time

import lightbus
from lightbus.exceptions import LightbusWorkerError, ValidationError

from values_cases import CASES, Order, check_received, python_form


def main():
    bus = lightbus.create()
    report = {}

    def cell(name, run):
        try:
            report[name] = run()
        except Exception as error:  # every failure is a reported cell, never a crash
            report[name] = f"{type(error).__name__}: {error}"

    def echo(case):
        result = getattr(bus.rs_values, case)(value=CASES[case][1])
        problems = check_received(case, result)
        return "; ".join(problems) or None

    for case in CASES:
        cell(f"python->rust rpc: {case}", lambda case=case: echo(case))

    def expect(actual, wanted):
        return None if actual == wanted else f"got {actual!r}, expected {wanted!r}"

    cell("python->rust rpc: Optional[str] = None left out",
         lambda: expect(bus.rs_values.optional_omitted(a=1), None))
    cell("python->rust rpc: Optional[str] = None given",
         lambda: expect(bus.rs_values.optional_omitted(a=1, b="x"), "x"))
    cell("python->rust rpc: str = \"dflt\" left out",
         lambda: expect(bus.rs_values.default_omitted(a=1), "dflt"))
    cell("python->rust rpc: integral float 1.0 for an int",
         lambda: expect(bus.rs_special.integer(value=1.0), 1))
    cell("python->rust rpc: Infinity",
         lambda: expect(bus.rs_special.float_kind(value=math.inf), "inf"))
    cell("python->rust rpc: -Infinity",
         lambda: expect(bus.rs_special.float_kind(value=-math.inf), "-inf"))

    def nan_is_answered():
        started = time.monotonic()
        try:
            result = bus.rs_special.float_kind(value=math.nan)
        except LightbusWorkerError as error:
            if "NaN" not in str(error):
                return f"the error does not name NaN: {error}"
            return None
        return f"NaN was accepted as {result!r} after {time.monotonic() - started:.1f}s"

    cell("python->rust rpc: NaN answered with an error result", nan_is_answered)

    def extra_field_rejected():
        value = dict(python_form("order"), extra=1)
        try:
            bus.rs_values.order(value=value)
        except ValidationError as error:
            return None if "extra" in str(error) else f"rejected, but not for `extra`: {error}"
        return "a struct with an extra field was accepted"

    cell("python->rust rpc: extra field of a struct rejected by the schema", extra_field_rejected)

    print("REPORT", json.dumps(report), flush=True)
    bus.client.close()


if __name__ == "__main__":
    main()
