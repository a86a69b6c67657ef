"""Listens to `auth.user_registered` with the listener name argv[1] (Python Lightbus 1.1.2).

Prints one JSON line per event received: its metadata and keyword arguments. The consumer
group is "{LIGHTBUS_SERVICE_NAME}-{listener name}"; 1.1.2 creates it at `$`, so fire only
once it exists.
"""
import json
import sys

import lightbus

bus = lightbus.create()
listener_name = sys.argv[1]


def handle(event_message, **kwargs):
    print(
        json.dumps(
            {
                "id": event_message.id,
                "api_name": event_message.api_name,
                "event_name": event_message.event_name,
                "version": event_message.version,
                "native_id": event_message.native_id,
                "kwargs": kwargs,
            }
        ),
        flush=True,
    )


# Set up before the worker starts (a synchronous on_start hook would run on a thread with
# a client of its own, where the listener would be lost).
bus.auth.user_registered.listen(handle, listener_name=listener_name)


bus.client.run_forever()
