"""Event parameters and the schemas derived from type hints (see `lightbus.schema.hints`)."""

import inspect

__all__ = ["Parameter", "WildcardParameter"]


class Parameter(inspect.Parameter):
    """An event parameter with an optional type and default:
    `lightbus.Event(parameters=[Parameter("when", datetime), Parameter("note", str, default="")])`.
    """

    empty = inspect.Parameter.empty

    def __init__(self, name, annotation=inspect.Parameter.empty, *, default=inspect.Parameter.empty):
        super().__init__(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


class WildcardParameter(inspect.Parameter):
    """An event parameter standing for any further keyword arguments (`**kwargs`)."""

    def __init__(self):
        super().__init__("kwargs", inspect.Parameter.VAR_KEYWORD, default={}, annotation=dict)
