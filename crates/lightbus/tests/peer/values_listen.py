"""Listens to `rs_events.values` (fired by Rust) with Python Lightbus 1.1.2.

The handler takes the parameters untyped, so they arrive exactly as sent; for each case it
checks they are what Python writes for the case's value, and cast back to it. Prints one line
`REPORT {cell: problem or null}` per event.
"""

import json

import lightbus

from values_cases import CASES, check_received

bus = lightbus.create()


def handle(event_message, **kwargs):
    report = {}
    for case in CASES:
        if case not in kwargs:
            report[f"rust->python event: {case}"] = "missing"
            continue
        problems = check_received(case, kwargs[case])
        report[f"rust->python event: {case}"] = "; ".join(problems) or None
    print("REPORT", json.dumps(report), flush=True)


bus.rs_events.values.listen(handle, listener_name="values")
bus.client.run_forever()
