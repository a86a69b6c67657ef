"""The quickstart's auth API with type hints, served by a Python Lightbus worker.

Used by tests/schema_peer.rs: `LIGHTBUS_MODULE=schema_auth_bus lightbus run`.
"""
import lightbus
from lightbus import Api, Event


class AuthApi(Api):
    user_registered = Event(parameters=("username", "email"))

    class Meta:
        name = "auth"

    def check_password(self, username: str, password: str) -> bool:
        return username == "admin" and password == "secret"


bus = lightbus.create()
bus.client.register_api(AuthApi())
