"""Schemas: a Python-front worker stores byte for byte what Python Lightbus 1.1.2 stores for
the same API (tests/apps/typed_api.py covers the kinds of type hints upstream handles).

Upstream lists the required fields of an annotated class (a dataclass) in the iteration order
of a set of names, which depends on the string hash: equal bytes need the same Python
version and PYTHONHASHSEED on both sides (the tests fix the seed). Across Python versions
the lists are compared as sets.
"""

import json
import subprocess
import sys

from conftest import PEER_PYTHON


def sorted_required(value):
    """`value` with every `required` list sorted."""
    if isinstance(value, dict):
        return {k: sorted(v) if k == "required" else sorted_required(v) for k, v in value.items()}
    if isinstance(value, list):
        return [sorted_required(item) for item in value]
    return value


def same_python_as_peer():
    version = subprocess.run([str(PEER_PYTHON), "-c", "import sys; print(sys.version_info[:2])"],
                             stdout=subprocess.PIPE, text=True, check=True).stdout.strip()
    return version == str(sys.version_info[:2])


def test_stored_schema_is_byte_identical_to_upstreams(bus, tmp_path):
    peer = bus.peer_worker("typed_api")
    bus.wait_for_schema("typed")
    upstream = bus.redis.command("GET", "schema:typed")
    peer.stop()
    bus.redis.command("DEL", "schema:typed")

    front = bus.front_worker("typed_api")
    bus.wait_for_schema("typed")
    ours = bus.redis.command("GET", "schema:typed")
    assert front.stop() == 0, front.output

    if same_python_as_peer():
        assert ours == upstream
    else:
        assert sorted_required(json.loads(ours)) == sorted_required(json.loads(upstream))
    schema = json.loads(ours)
    # The comparison covers what it should: every RPC and event, typed parameters.
    assert sorted(schema["rpcs"]) == [
        "defaults", "doubled", "fails", "returns_rich", "rich", "scalars", "shapes",
    ]
    assert sorted(schema["events"]) == ["empty", "named", "typed"]
    rich = schema["rpcs"]["rich"]["parameters"]["properties"]
    assert rich["when"] == {"type": "string", "format": "date-time"}
    assert rich["colour"] == {"type": "string", "enum": ["red", "green"]}
    order = schema["rpcs"]["shapes"]["parameters"]["properties"]["order"]
    assert order["title"] == "Order" and order["required"] == ["sku"]
