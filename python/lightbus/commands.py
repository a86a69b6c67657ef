"""The `lightbus` command: `run` (the worker) and `version`.

`lightbus run` imports the bus module (`--bus`, else `LIGHTBUS_MODULE`, else `bus`), registers
every `Api` subclass defined in it that is not registered yet, calls its module-level
`before_server_start()` if it has one (with `bus` if it takes an argument), then runs the
worker until SIGINT or SIGTERM.
"""

import argparse
import inspect
import logging
import os
import sys

__all__ = ["COMMAND_PARSED_ARGS", "lightbus_entry_point", "main"]

# Command-line overrides that lightbus.create() applies in the bus module.
COMMAND_PARSED_ARGS = {}

logger = logging.getLogger("lightbus")

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def configure_logging(level="info"):
    """Logs the `lightbus` logger's records to stderr at `level`."""
    lightbus_logger = logging.getLogger("lightbus")
    if not any(getattr(h, "_lightbus", False) for h in lightbus_logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        handler._lightbus = True
        lightbus_logger.addHandler(handler)
        lightbus_logger.propagate = False
    lightbus_logger.setLevel(level.upper())


def _features(args):
    from lightbus.utilities.features import Feature

    names = [f.value for f in Feature]
    if args.only or args.skip:
        chosen = list(args.only or names)
        return [name for name in chosen if name not in (args.skip or [])]
    if os.environ.get("LIGHTBUS_FEATURES"):
        return _csv(os.environ["LIGHTBUS_FEATURES"])
    return names


def _csv(text):
    return [part.strip() for part in text.split(",") if part.strip()]


def _call_module_hook(function, bus):
    try:
        parameters = [
            p for p in inspect.signature(function).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):
        parameters = []
    return function(bus) if parameters else function()


def run(args):
    from lightbus import _engine
    from lightbus.api import defined_api_classes
    from lightbus.creation import import_bus_module
    from lightbus.exceptions import UnsupportedUse

    configure_logging(args.log_level or "info")
    # A worker's own prints (handlers, hooks) appear as they happen, also when piped.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    module = import_bus_module(args.bus_module_name)
    bus = module.bus
    level = args.log_level or str(bus.client.config.bus().log_level)
    configure_logging(level)
    _engine.set_log_level(level)
    for api_class in defined_api_classes(module.__name__):
        if api_class.meta.name not in bus.client.api_registry:
            try:
                api = api_class()
            except TypeError as error:
                raise UnsupportedUse(
                    f"{api_class.__qualname__} in {module.__name__} cannot be created without "
                    f"arguments ({error}); register an instance yourself: "
                    "bus.client.register_api(...)"
                ) from error
            bus.client.register_api(api)
    before_server_start = getattr(module, "before_server_start", None)
    if callable(before_server_start):
        _call_module_hook(before_server_start, bus)
    if args.schema:
        loaded = bus.client.engine.load_local_schema(args.schema)
        logger.info("loaded the schemas of %s from %s", ", ".join(loaded), args.schema)
    bus.client.set_features(_features(args))
    bus.client.max_concurrency = args.max_concurrency
    return bus.client.run_forever()


def version(_args):
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    from lightbus import _engine

    try:
        print(package_version("lightbus"))
    except PackageNotFoundError:
        print(_engine.ENGINE_VERSION)
    return 0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="lightbus", description="Lightbus (Python API on the lightbus-rs engine)."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    run_parser = commands.add_parser("run", help="run the worker: serve APIs, run listeners")
    run_parser.add_argument("--only", "-o", type=_csv, help="only these features (rpcs,events,tasks)")
    run_parser.add_argument("--skip", "-k", type=_csv, help="all features but these")
    run_parser.add_argument(
        "--schema", "-m", metavar="FILE_OR_DIRECTORY",
        help="also validate against the schemas in this dumpschema file or directory",
    )
    run_parser.add_argument(
        "--max-concurrency", type=int, default=64, metavar="N",
        help="the most RPCs handled at once (default 64; 1 handles them one at a time)",
    )
    run_parser.set_defaults(handler=run)
    for sub in (run_parser,):
        group = sub.add_argument_group("common arguments")
        group.add_argument("--bus", "-b", dest="bus_module_name", metavar="BUS_MODULE",
                           help="the bus module (default: $LIGHTBUS_MODULE, else bus)")
        group.add_argument("--service-name", "-s", help="this service's name")
        group.add_argument("--process-name", "-p", help="this process's name")
        group.add_argument("--config", dest="config_file", metavar="FILE",
                           help="configuration file (default: $LIGHTBUS_CONFIG)")
        group.add_argument("--log-level", choices=LOG_LEVELS, type=str.lower,
                           help="log level (default: the configuration's)")

    version_parser = commands.add_parser("version", help="print the installed version")
    version_parser.set_defaults(handler=version)
    return parser.parse_args(argv)


def main(argv=None):
    """Runs the command line; returns the exit code."""
    from lightbus.exceptions import LightbusException

    args = parse_args(argv)
    COMMAND_PARSED_ARGS.clear()
    COMMAND_PARSED_ARGS.update(
        {k: v for k, v in vars(args).items() if k in ("config_file", "service_name", "process_name")}
    )
    try:
        return args.handler(args) or 0
    except LightbusException as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def lightbus_entry_point():
    """The `lightbus` console script."""
    sys.path.insert(0, "")
    sys.exit(main())
