"""The interop tests' service for the Python front (`front` API), listening to the peer's
and the Rust service's events. Records events as JSON lines in APP_OUT."""

import json
import os

import lightbus

bus = lightbus.create()


class FrontApi(lightbus.Api):
    happened = lightbus.Event(parameters=("what",))

    class Meta:
        name = "front"

    def add(self, a: int, b: int) -> int:
        return a + b


def record(event_message, **kwargs):
    with open(os.environ["APP_OUT"], "a") as out:
        out.write(json.dumps({"by": "front", "event": event_message.canonical_name,
                              "kwargs": kwargs}) + "\n")


def before_server_start():
    bus.client.listen_for_events([("peer", "said"), ("benchmark", "fire_me")], record,
                                 listener_name="front_hears_all", options={"since": "0"})
