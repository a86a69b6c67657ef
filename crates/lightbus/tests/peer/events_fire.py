"""Fires `auth.user_registered` COUNT times (argv[1]) as Python Lightbus 1.1.2 does.

Prints one JSON line per event: {"id": ..., "native_id": ...}. The bus configuration comes
from LIGHTBUS_CONFIG, like any peer process.
"""
import json
import sys

import lightbus

bus = lightbus.create()


class AuthApi(lightbus.Api):
    user_registered = lightbus.Event(parameters=("username", "email"))

    class Meta:
        name = "auth"


# Registering the API makes this process authoritative for it, so it may fire its events.
bus.client.register_api(AuthApi())

for n in range(int(sys.argv[1])):
    message = bus.auth.user_registered.fire(username=f"py{n}", email=f"py{n}@example.com")
    print(json.dumps({"id": message.id, "native_id": message.native_id}), flush=True)

bus.client.close()
