"""The bus client (`bus.client`)."""

from lightbus.client.bus_client import BusClient

__all__ = ["BusClient"]
