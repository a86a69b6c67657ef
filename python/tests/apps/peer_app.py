"""The interop tests' service for Python Lightbus 1.1.2 (`peer` API), listening to the
Python front's events. Records events as JSON lines in APP_OUT."""

import json
import os

import lightbus

bus = lightbus.create()


class PeerApi(lightbus.Api):
    said = lightbus.Event(parameters=("text",))

    class Meta:
        name = "peer"

    def greet(self, name: str) -> str:
        return f"hello {name} from the peer"


bus.client.register_api(PeerApi())


def on_front_event(event_message, what):
    with open(os.environ["APP_OUT"], "a") as out:
        out.write(json.dumps({"by": "peer", "event": event_message.canonical_name,
                              "what": what}) + "\n")


if os.environ.get("APP_OUT"):
    bus.front.happened.listen(on_front_event, listener_name="peer_hears_front",
                              bus_options={"since": "0"})
