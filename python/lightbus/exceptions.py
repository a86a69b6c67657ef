"""Exceptions, under the names Python Lightbus 1.x code already catches.

Every class derives from `LightbusException`. The engine raises: `LightbusTimeout` (no
result within the API's `rpc_timeout`), `LightbusWorkerError` (the remote procedure raised;
the message carries the remote traceback), `ValidationError` (a value does not fit the
bus's schema), `UnknownApi` (firing an event of an API this process did not register),
`LightbusConnectionError` (Redis unreachable), `UnexpectedConfigurationFormat` (a bad
configuration file) and the others below where they apply.
"""

__all__ = []


def _define(name, doc, *bases):
    cls = type(name, bases or (LightbusException,), {"__doc__": doc, "__module__": __name__})
    globals()[name] = cls
    __all__.append(name)
    return cls


class LightbusException(Exception):
    """Base class of every Lightbus error."""


__all__.append("LightbusException")

for _name, _doc in [
    ("InvalidMessage", "A message could not be encoded or decoded."),
    ("InvalidBusPathConfiguration", "A BusPath was built wrongly."),
    ("InvalidSerializerConfiguration", "Serializer options are invalid."),
    ("UnsupportedUse", "The API was used in a way it does not support."),
    ("UnknownApi", "No API of that name is registered in this process."),
    ("InvalidApiRegistryEntry", "Something that is not an API instance was registered."),
    ("InvalidApiForSchemaCreation", "A schema was asked of something that is not an API."),
    ("InvalidApiEventConfiguration", "An Event was declared with bad parameters."),
    ("MisconfiguredApiOptions", "An Api class has missing or bad Meta options."),
    ("EventNotFound", "The API declares no event of that name."),
    ("InvalidEventArguments", "An event was fired with arguments it does not declare."),
    ("InvalidEventListener", "A listener cannot take an event message."),
    ("NothingToListenFor", "A listener was given no events."),
    ("CannotBlockHere", "A blocking call was made inside a running event loop."),
    ("LightbusTimeout", "No result arrived within the RPC timeout."),
    ("SuddenDeathException", "Used by tests to simulate a dying worker."),
    ("PluginsNotLoaded", "Plugins were used before being loaded."),
    ("InvalidPlugins", "A plugin is invalid."),
    ("PluginHookNotFound", "A plugin hook does not exist."),
    ("LightbusWorkerError", "The remote procedure failed on the worker."),
    ("LightbusShutdownInProgress", "The bus is shutting down."),
    ("InvalidSchema", "A schema is malformed."),
    ("SchemaNotFound", "No schema is known for the API or member."),
    ("TransportNotFound", "No transport of that name exists."),
    ("TooManyTransportsForApi", "Several transports were configured for one role."),
    ("NoTransportConfigured", "No transport was configured for a role."),
    ("NoApisToListenOn", "RPC consumption was asked for without APIs."),
    ("InvalidName", "An API, RPC or event name is not allowed."),
    ("InvalidParameters", "Arguments were given in a way the bus does not accept."),
    ("ApisMustUseSameTransport", "APIs consumed together use different transports."),
    ("OnlyAvailableOnRootNode", "Only the root BusPath offers this."),
    ("UnexpectedConfigurationFormat", "The configuration could not be read or is invalid."),
    ("UnsupportedOptionValue", "A configuration option has an unsupported value."),
    ("DatabaseConnectionRequired", "A database connection is needed."),
    ("DuplicateMessage", "A message was received twice."),
    ("NoApisSpecified", "No APIs were given."),
    ("FailedToImportBusModule", "The bus module could not be imported."),
    ("NoBusFoundInBusModule", "The bus module has no `bus` variable."),
    ("TransportIsClosed", "The transport was closed."),
    ("DeformError", "A value cannot be turned into JSON for the bus."),
    ("ValidationError", "A value does not match its schema."),
    ("InvalidSchedule", "A schedule for a task is invalid."),
    ("TransportsNotInstalled", "No transports are installed."),
    ("MustRunInBusThread", "This must run in the bus thread."),
    ("MustNotRunInBusThread", "This must not run in the bus thread."),
    ("LightbusExit", "The worker is exiting."),
    ("BusAlreadyClosed", "The bus client was closed."),
    ("LightbusServerMustStartInMainThread", "The worker must start in the main thread."),
    ("RemoteSchemasNotLoaded", "Remote schemas were needed before being loaded."),
    ("TransportPoolIsClosed", "The transport pool was closed."),
    ("AsyncFunctionOrMethodRequired", "An async function was expected."),
    ("ListenersAlreadyStarted", "A listener was added after listeners started."),
    ("DuplicateListenerName", "A listener of that name already exists for the API."),
]:
    _define(_name, _doc)

_define("NoResponseSchemaFound", "The RPC has no response schema.", SchemaNotFound)  # noqa: F821
_define(
    "LightbusConnectionError",
    "Redis could not be reached or answered with an error.",
    LightbusException,
    ConnectionError,
)
del _name, _doc
