"""Defining APIs: `Api` subclasses with a `Meta` class, their methods (RPCs) and `Event`s."""

import inspect
import weakref

from lightbus.exceptions import (
    EventNotFound,
    InvalidApiEventConfiguration,
    InvalidApiRegistryEntry,
    MisconfiguredApiOptions,
    UnknownApi,
)
from lightbus.schema import Parameter
from lightbus.schema.hints import describe_parameters, response_schema

__all__ = ["Api", "Event", "ApiRegistry"]

# Every Api subclass defined in this process, so that `lightbus run` can serve those of the
# bus module and a process may fire events of an API whose class it defines.
_defined_classes = weakref.WeakSet()


class ApiOptions:
    """An API's `Meta` options: `name` (required), `version` (default 1), `internal`."""

    name = None
    version = 1
    internal = False

    def __init__(self, options):
        for key, value in options.items():
            if not key.startswith("_"):
                setattr(self, key, value)


class ApiMetaclass(type):
    """Checks each Api subclass's `Meta` and gives the class its `meta` options."""

    def __init__(cls, name, bases=None, namespace=None):
        super().__init__(name, bases, namespace)
        if name == "Api" and not bases:
            return
        meta = (namespace or {}).get("Meta")
        if meta is None:
            raise MisconfiguredApiOptions(
                f"API class {name} needs a nested class `Meta` with at least a `name`, "
                f"e.g. class Meta: name = 'my_api'"
            )
        if not getattr(meta, "name", None):
            raise MisconfiguredApiOptions(f"API class {name}: Meta.name is missing or empty")
        cls.meta = ApiOptions(dict(meta.__dict__))
        if cls.meta.name == "default" or cls.meta.name.startswith("default."):
            raise MisconfiguredApiOptions(
                f"API class {name}: the name {cls.meta.name!r} is reserved (`default` is the "
                "configuration's catch-all entry); choose another"
            )
        _defined_classes.add(cls)


class Api(metaclass=ApiMetaclass):
    """Base class of APIs. Public methods are RPCs; `Event` attributes are events."""

    class Meta:
        name = None

    def get_event(self, name):
        """The event `name` of this API."""
        event = getattr(self, name, None)
        if isinstance(event, Event):
            return event
        raise EventNotFound(f"the {self} API has no event named {name!r}")

    def __str__(self):
        return self.meta.name


class Event:
    """An event of an API. `parameters` are names, or `lightbus.Parameter(name, type,
    default=...)` for typed ones."""

    def __init__(self, parameters=tuple()):
        if isinstance(parameters, str):
            raise InvalidApiEventConfiguration(
                f"Event parameters must be a list or tuple of names, not the string "
                f"{parameters!r} (a one-name tuple needs a trailing comma: ('name',))"
            )
        self.parameters = parameters

    @property
    def parameter_names(self):
        """The names of the parameters, in order."""
        return [p.name if isinstance(p, inspect.Parameter) else p for p in self.parameters]


def api_members(api):
    """(rpcs, events) of an API instance: {name: bound method}, {name: Event}."""
    rpcs, events = {}, {}
    for name, member in inspect.getmembers(api):
        if name.startswith("_") or hasattr(Api, name):
            continue
        if inspect.ismethod(member):
            rpcs[name] = member
        elif isinstance(member, Event):
            events[name] = member
    return rpcs, events


def describe(api):
    """The API as the engine registers it: names, versions and the JSON Schema of every
    parameter and response (see `lightbus.schema.hints`)."""
    name = api.meta.name
    rpcs, events = api_members(api)
    described_rpcs = []
    for rpc_name, method in rpcs.items():
        signature = inspect.signature(method)
        described_rpcs.append(
            {
                "name": rpc_name,
                "parameters": describe_parameters(
                    signature.parameters.values(), f"{name}.{rpc_name}()"
                ),
                "response": response_schema(signature.return_annotation),
            }
        )
    described_events = []
    for event_name, event in events.items():
        parameters = [
            Parameter(p) if isinstance(p, str) else p for p in event.parameters
        ]
        described_events.append(
            {
                "name": event_name,
                "parameters": describe_parameters(parameters, f"{name}.{event_name}"),
            }
        )
    return {
        "name": name,
        "version": int(api.meta.version),
        "rpcs": described_rpcs,
        "events": described_events,
    }


class ApiRegistry:
    """The APIs registered in this process, by name."""

    def __init__(self):
        self._apis = {}

    def add(self, api):
        if isinstance(api, type):
            raise InvalidApiRegistryEntry(
                "register an instance of the API class, not the class: "
                "bus.client.register_api(MyApi())"
            )
        if not isinstance(api, Api):
            raise InvalidApiRegistryEntry(f"{api!r} is not an instance of lightbus.Api")
        self._apis[api.meta.name] = api

    def get(self, name):
        try:
            return self._apis[name]
        except KeyError:
            raise UnknownApi(
                f"no API named {name!r} is registered in this process (register it with "
                "bus.client.register_api(), or check the name)"
            ) from None

    def __contains__(self, name):
        return name in self._apis

    def public(self):
        return [api for api in self._apis.values() if not api.meta.internal]

    def internal(self):
        return [api for api in self._apis.values() if api.meta.internal]

    def all(self):
        return list(self._apis.values())

    def names(self):
        return list(self._apis.keys())


def defined_api_classes(module_name=None):
    """Api subclasses defined so far (in `module_name` only, if given), oldest first."""
    classes = [cls for cls in list(_defined_classes) if module_name in (None, cls.__module__)]
    return sorted(classes, key=lambda cls: (cls.__module__, cls.__qualname__))

