"""Small pieces shared by the client: listener error policy, name checks, running user code."""

import asyncio
import inspect
import logging
import traceback
from enum import Enum

from lightbus.exceptions import InvalidEventListener, InvalidName

logger = logging.getLogger("lightbus")

__all__ = ["OnError", "validate_event_or_rpc_name", "run_callable", "accepts_keyword"]


class OnError(Enum):
    """What a failing listener does: stop the worker (the event stays pending and is
    delivered again later), or log the error, acknowledge the event and carry on."""

    SHUTDOWN = "shutdown"
    ACKNOWLEDGE_AND_LOG = "log"


def validate_event_or_rpc_name(api_name, kind, name):
    """Names on the bus are non-empty and do not start with an underscore."""
    if not name:
        raise InvalidName(f"empty {kind} name given for the API {api_name!r}")
    if name.startswith("_"):
        raise InvalidName(
            f"{api_name}.{name}: names starting with an underscore are private and never on "
            f"the bus"
        )


def check_listener(listener):
    """A listener must be callable with the event message as its first positional argument."""
    if not callable(listener):
        raise InvalidEventListener(
            f"the listener {listener!r} is not callable (pass the function, do not call it)"
        )
    try:
        parameters = inspect.signature(listener).parameters.values()
    except (TypeError, ValueError):
        return
    positional = [
        p for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    if not positional:
        raise InvalidEventListener(
            f"the listener {listener!r} must take the event message as its first positional "
            "argument, e.g. def listener(event_message, **kwargs)"
        )


def accepts_keyword(function, name):
    """True if `function` can be called with the keyword argument `name`."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(
        p.kind == p.VAR_KEYWORD or (p.name == name and p.kind != p.POSITIONAL_ONLY)
        for p in parameters
    )


def format_failure(error):
    """(repr, formatted traceback) of an exception, as an error result carries them."""
    return repr(error), "".join(traceback.format_exception(type(error), error, error.__traceback__))


def run_callable(function, args, kwargs, loop, done):
    """Runs user code and calls `done(result, None)` or `done(None, exception)`.

    A plain function runs in the calling thread (the engine calls from a thread of its own);
    a coroutine function, or a function returning an awaitable, runs on `loop`, and `done`
    is then called from the loop's thread.
    """
    try:
        awaitable = function(*args, **kwargs)
    except Exception as error:
        done(None, error)
        return
    if not inspect.isawaitable(awaitable):
        done(awaitable, None)
        return

    async def finish():
        try:
            result = await awaitable
        except asyncio.CancelledError as error:
            done(None, error)
            raise
        except Exception as error:
            done(None, error)
        else:
            done(result, None)

    if loop is None:
        done(None, RuntimeError("no event loop runs async handlers in this process"))
        if inspect.iscoroutine(awaitable):
            awaitable.close()
        return
    asyncio.run_coroutine_threadsafe(finish(), loop)
