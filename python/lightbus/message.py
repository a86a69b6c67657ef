"""The messages of the bus, as Python Lightbus 1.x code sees them."""

from uuid import uuid4

__all__ = ["Message", "RpcMessage", "ResultMessage", "EventMessage"]


class Message:
    """Base of the three kinds of message: an id and, once stored, a transport id."""

    required_metadata = ()

    def __init__(self, id="", native_id=None):
        self.id = id or str(uuid4())
        self.native_id = native_id

    def __str__(self):
        """`api.member(name=value, ...)` for calls and events."""
        arguments = ", ".join(f"{k}={v}" for k, v in self.get_kwargs().items())
        return f"{self.canonical_name}({arguments})"

    def __repr__(self):
        return f"<{type(self).__name__}: {self}>"


class RpcMessage(Message):
    """A call of `api_name.procedure_name` with keyword arguments."""

    required_metadata = ("id", "api_name", "procedure_name", "return_path")

    def __init__(self, *, api_name, procedure_name, kwargs=None, return_path=None, id="",
                 native_id=None):
        super().__init__(id, native_id)
        self.api_name = api_name
        self.procedure_name = procedure_name
        self.kwargs = kwargs or {}
        self.return_path = return_path

    @property
    def canonical_name(self):
        return f"{self.api_name}.{self.procedure_name}"

    def get_metadata(self):
        return {"id": self.id, "api_name": self.api_name, "procedure_name": self.procedure_name,
                "return_path": self.return_path or ""}

    def get_kwargs(self):
        return self.kwargs


class ResultMessage(Message):
    """The result of a call: a value, or an error with the worker's traceback."""

    required_metadata = ("id", "rpc_message_id")

    def __init__(self, *, result, rpc_message_id, api_name="", procedure_name="", id="",
                 error=False, trace=None, native_id=None):
        super().__init__(id, native_id)
        self.api_name = api_name
        self.procedure_name = procedure_name
        self.rpc_message_id = rpc_message_id
        if isinstance(result, BaseException):
            import traceback

            self.result = repr(result)
            self.error = True
            self.trace = "".join(
                traceback.format_exception(type(result), result, result.__traceback__)
            )
        else:
            self.result = result
            self.error = error
            self.trace = trace

    def get_metadata(self):
        metadata = {"id": self.id, "rpc_message_id": self.rpc_message_id, "error": self.error}
        if self.error:
            metadata["trace"] = self.trace
        return metadata

    def get_kwargs(self):
        return {"result": self.result}

    def __str__(self):
        return str(self.result)

    def __repr__(self):
        state = "ERROR" if self.error else "SUCCESS"
        return f"<ResultMessage ({state}): {self.result}>"


class EventMessage(Message):
    """An event: `api_name.event_name` with its keyword arguments. Listeners receive one as
    their first argument; `native_id` is its Redis stream entry id."""

    required_metadata = ("id", "api_name", "event_name", "version")

    def __init__(self, *, api_name, event_name, kwargs=None, version=1, id="", native_id=None):
        super().__init__(id, native_id)
        self.api_name = api_name
        self.event_name = event_name
        self.version = int(version)
        self.kwargs = kwargs or {}

    @property
    def canonical_name(self):
        return f"{self.api_name}.{self.event_name}"

    def get_metadata(self):
        return {"id": self.id, "api_name": self.api_name, "event_name": self.event_name,
                "version": self.version}

    def get_kwargs(self):
        return self.kwargs
