"""Fires `py_events.values` once with every case's value, as Python Lightbus 1.1.2 writes them."""

import lightbus

from values_cases import CASES, PyEvents

bus = lightbus.create()
bus.client.register_api(PyEvents())
message = bus.py_events.values.fire(**{case: value for case, (_, value, _) in CASES.items()})
print("FIRED", message.id, flush=True)
bus.client.close()
