"""`python -m lightbus run`: the same as the `lightbus` command."""

from lightbus.commands import lightbus_entry_point

lightbus_entry_point()
