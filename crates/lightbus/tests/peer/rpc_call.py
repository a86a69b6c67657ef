"""Calls one RPC through Python Lightbus 1.1.2 and prints what happened.

    python rpc_call.py API.PROCEDURE '{"keyword": "arguments as JSON"}'

Prints one line `OUTCOME <json>`: `{"result": <value>, "equal_to": {<kwarg>: true|false}}` on
success (`equal_to` tells, for each keyword argument, whether the result equals it exactly,
compared as Python values), or `{"error": "<exception class>", "message": "<text>"}`.
The bus configuration comes from LIGHTBUS_CONFIG.
"""

import json
import sys

import lightbus


def main():
    target, kwargs = sys.argv[1], json.loads(sys.argv[2])
    bus = lightbus.create()
    path = bus
    for part in target.split("."):
        path = getattr(path, part)
    try:
        result = path(**kwargs)
        outcome = {
            "result": result,
            "equal_to": {name: result == value for name, value in kwargs.items()},
        }
    except Exception as error:
        outcome = {"error": type(error).__name__, "message": str(error)}
    print("OUTCOME", json.dumps(outcome), flush=True)
    bus.client.close()


if __name__ == "__main__":
    main()
