"""Creating a bus: `bus = lightbus.create()`, and finding the bus module."""

import atexit
import json
import logging
import os
import sys
from collections.abc import Mapping

from lightbus._engine import Engine, prepare_exit
from lightbus.client import BusClient
from lightbus.config import Config
from lightbus.exceptions import FailedToImportBusModule, UnsupportedUse
from lightbus.path import BusPath
from lightbus.utilities.features import ALL_FEATURES

__all__ = ["create", "import_bus_module", "get_bus"]

logger = logging.getLogger("lightbus")

# From the start of the interpreter's shutdown on, the engine's threads stay out of Python.
atexit.register(prepare_exit)


def create(config=None, *, config_file=None, service_name=None, process_name=None,
           features=ALL_FEATURES, client_class=BusClient, node_class=BusPath, plugins=None,
           flask=False, **kwargs):
    """Creates the bus client and returns its root `BusPath`.

    The configuration comes from `config` (a dict, as the file would hold it), else
    `config_file`, else the file named by `LIGHTBUS_CONFIG`, else defaults (Redis at
    127.0.0.1:6379). Under `lightbus run`, its `--config`, `--service-name` and
    `--process-name` win. Nothing connects until first use.
    """
    if flask:
        under_flask_run = sys.argv[0].endswith("flask") and "run" in sys.argv
        if under_flask_run and os.environ.get("WERKZEUG_RUN_MAIN", "").lower() != "true":
            return None  # Flask's reloader process: the bus belongs to the serving child
    from lightbus.commands import COMMAND_PARSED_ARGS

    config_file = COMMAND_PARSED_ARGS.get("config_file") or config_file
    service_name = COMMAND_PARSED_ARGS.get("service_name") or service_name
    process_name = COMMAND_PARSED_ARGS.get("process_name") or process_name
    config_text = None
    if isinstance(config, Config):
        config = config.as_dict()
    if config is not None:
        if not isinstance(config, Mapping):
            raise UnsupportedUse("lightbus.create(config=...) takes a dict")
        config_text = json.dumps(config)
        service_name = service_name or os.environ.get("LIGHTBUS_SERVICE_NAME")
        process_name = process_name or os.environ.get("LIGHTBUS_PROCESS_NAME")
    if plugins:
        logger.warning(
            "plugins=... is ignored: the engine runs the internal_state and internal_metrics "
            "plugins as the configuration enables them"
        )
    engine = Engine(config_file=config_file, config_text=config_text,
                    service_name=service_name, process_name=process_name)
    client = client_class(engine=engine, config=Config(engine), features=features, **kwargs)
    return node_class(name="", parent=None, client=client)


def import_bus_module(bus_module_name=None):
    """Imports the bus module: `bus_module_name`, else `LIGHTBUS_MODULE`, else `bus`."""
    import importlib

    name = bus_module_name or os.environ.get("LIGHTBUS_MODULE", "") or "bus"
    logger.info("importing the bus module %s", name)
    try:
        module = importlib.import_module(name)
    except ImportError as error:
        raise FailedToImportBusModule(
            f"cannot import the bus module {name!r}: {error}\n"
            "(set LIGHTBUS_MODULE or --bus to its name, and make sure it is on PYTHONPATH)"
        ) from error
    bus = getattr(module, "bus", None)
    if not isinstance(bus, BusPath):
        found = "nothing" if bus is None else type(bus).__name__
        raise FailedToImportBusModule(
            f"the bus module {name!r} must define `bus = lightbus.create()` (found {found} as "
            "`bus`)"
        )
    return module


def get_bus(bus_module_name=None):
    """The `bus` of the bus module (imported if needed)."""
    return import_bus_module(bus_module_name).bus
