"""Calls auth.check_password from Python, once validly and once with a wrong type.

Prints one JSON object: what happened to each call. With validation on, the peer checks
the arguments against the schema on the bus (published by whichever worker serves auth)
before sending anything.
"""
import json

import lightbus
from lightbus.exceptions import LightbusWorkerError, ValidationError

bus = lightbus.create()
out = {}
try:
    out["valid"] = bus.auth.check_password(username="admin", password="secret")
except Exception as e:  # report, do not crash: the Rust test asserts on the output
    out["valid"] = "error: " + repr(e)
try:
    bus.auth.check_password(username=123, password="secret")
    out["invalid"] = "accepted"
except ValidationError as e:
    out["invalid"] = "rejected by the peer's validator: " + str(e).replace("\n", " ")
except LightbusWorkerError as e:
    out["invalid"] = "rejected by the worker: " + str(e).replace("\n", " ")
except Exception as e:
    out["invalid"] = "other: " + repr(e)
print(json.dumps(out))
bus.client.close()
