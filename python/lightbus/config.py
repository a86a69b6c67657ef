"""The configuration in force, read-only, as the engine loaded it.

The file is the one Python Lightbus and lightbus-rs share (`LIGHTBUS_CONFIG`, `--config`, or
`lightbus.create(config_file=..., config={...})`). Sections read as attributes:
`bus.client.config.api("auth").rpc_timeout`, `bus.client.config.bus().log_level`.
"""

import json

__all__ = ["Config"]


class Section:
    """A read-only view of one mapping of the configuration; nested mappings are sections."""

    def __init__(self, values):
        self._values = values

    def __getattr__(self, name):
        try:
            value = self._values[name]
        except KeyError:
            raise AttributeError(name) from None
        return Section(value) if isinstance(value, dict) else value

    def __getitem__(self, name):
        return self._values[name]

    def get(self, name, default=None):
        return self._values.get(name, default)

    def as_dict(self):
        """The section as plain data."""
        return json.loads(json.dumps(self._values))

    def __repr__(self):
        return f"<config {self._values!r}>"


class Config:
    """The configuration of one bus client."""

    def __init__(self, engine):
        self._engine = engine
        self._file = json.loads(engine.config_json())
        self._apis = {}

    @property
    def service_name(self):
        return self._engine.service_name

    @property
    def process_name(self):
        return self._engine.process_name

    def api(self, api_name="default"):
        """The options of `api_name` (its own entry, else the `default` one)."""
        section = self._apis.get(api_name)
        if section is None:
            section = self._apis[api_name] = Section(
                json.loads(self._engine.api_config_json(api_name))
            )
        return section

    def apis(self):
        """Every API entry of the file, by name."""
        return {name: self.api(name) for name in self._file.get("apis", {})}

    def bus(self):
        """The `bus` section (`log_level`, `schema`)."""
        return Section(self._file.get("bus", {}))

    def plugin(self, plugin_name):
        """The options of a built-in plugin (`internal_state`, `internal_metrics`)."""
        return Section(self._file.get("plugins", {}).get(plugin_name, {}))

    def as_dict(self):
        """The whole file, defaults filled in."""
        return json.loads(json.dumps(self._file))
