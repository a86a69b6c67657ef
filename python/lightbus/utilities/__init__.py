"""Helpers: casting values to type hints, turning values into JSON, testing tools."""
