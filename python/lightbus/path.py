"""BusPath: `bus.auth.check_password(...)`, `bus.auth.user_registered.fire(...)`."""

import functools

from lightbus.client.utilities import OnError
from lightbus.exceptions import InvalidBusPathConfiguration, InvalidParameters

__all__ = ["BusPath"]


class BusPath:
    """A dotted path on the bus. `bus.auth` is the API `auth`, `bus.auth.check_password` its
    member: call it for an RPC, or `fire` / `listen` for an event."""

    def __init__(self, name, *, parent, client):
        if not parent and name:
            raise InvalidBusPathConfiguration("the root BusPath has no name")
        self.name = name
        self.parent = parent
        self.client = client

    def __getattr__(self, item):
        if item.startswith("__"):
            raise AttributeError(item)
        child = self.__class__(name=item, parent=self, client=self.client)
        # Kept as an attribute: the next `bus.auth.check_password` finds it without this call.
        self.__dict__[item] = child
        return child

    def __str__(self):
        return self.fully_qualified_name

    def __repr__(self):
        return f"<BusPath {self.fully_qualified_name}>"

    # RPCs

    def __call__(self, *args, **kwargs):
        return self.call(*args, **kwargs)

    def call(self, *args, bus_options=None, **kwargs):
        """Calls this RPC and blocks until its result arrives."""
        self._keywords_only(args, "call the RPC")
        return self.client.call_rpc_blocking(self.api_name, self.name, kwargs, bus_options)

    async def call_async(self, *args, bus_options=None, **kwargs):
        """Calls this RPC from async code."""
        self._keywords_only(args, "call the RPC")
        return await self.client.call_rpc_remote(self.api_name, self.name, kwargs, bus_options)

    # Events

    def listen(self, listener, *, listener_name, bus_options=None, on_error=OnError.SHUTDOWN):
        """Calls `listener(event_message, **kwargs)` for each of these events; see
        `BusClient.listen_for_events`."""
        return self.client.listen_for_event(
            self.api_name, self.name, listener, listener_name, bus_options, on_error
        )

    def fire(self, *args, bus_options=None, **kwargs):
        """Fires this event and blocks until it is stored; returns the EventMessage."""
        self._keywords_only(args, "fire the event")
        return self.client.fire_event_blocking(self.api_name, self.name, kwargs, bus_options)

    async def fire_async(self, *args, bus_options=None, **kwargs):
        """Fires this event from async code; returns the EventMessage."""
        self._keywords_only(args, "fire the event")
        return await self.client.fire_event(self.api_name, self.name, kwargs, bus_options)

    # Names

    def _keywords_only(self, args, what):
        if args:
            raise InvalidParameters(
                f"{self.fully_qualified_name}: keyword arguments only, e.g. name=value "
                f"(tried to {what} with {len(args)} positional argument(s))"
            )

    def ancestors(self, include_self=False):
        """This path's parents, nearest first (and the path itself, if asked)."""
        node = self if include_self else self.parent
        while node is not None:
            yield node
            node = node.parent

    @property
    def fully_qualified_name(self):
        """`api.member`, e.g. `auth.check_password`."""
        names = [node.name for node in self.ancestors(include_self=True)]
        return ".".join(reversed(names[:-1]))

    @functools.cached_property
    def api_name(self):
        """The API part of this path: everything before the last name."""
        names = [node.name for node in self.ancestors()]
        return ".".join(reversed(names[:-1]))
