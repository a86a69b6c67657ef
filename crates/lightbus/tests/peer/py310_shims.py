"""Makes Python Lightbus 1.1.2 send error results on Python 3.10+, as it does on 3.9.

Lightbus 1.1.2 builds error results with traceback.format_exception(etype=...), a keyword that
Python 3.10 removed, so on 3.10+ a raising handler kills the worker instead of answering
(docs/protocol.md, "Living with the Python peer"). Importing this module accepts the old
keyword again.
"""

import traceback

_format_exception = traceback.format_exception


def _format_exception_accepting_etype(*args, etype=None, **kwargs):
    if etype is not None:
        args = (etype, *args)
    return _format_exception(*args, **kwargs)


traceback.format_exception = _format_exception_accepting_etype
