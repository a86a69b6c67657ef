"""The parts of a worker `--only` / `--skip` choose from."""

from enum import Enum


class Feature(Enum):
    """A part of the worker: serving RPCs, running listeners, running tasks."""

    RPCS = "rpcs"
    EVENTS = "events"
    TASKS = "tasks"


ALL_FEATURES = tuple(Feature)
