"""The Python API without a worker: definitions, mocks, argument checks and the exceptions
a Python Lightbus user expects (a private Redis serves where the engine needs one)."""

import asyncio
import datetime
import decimal
import enum
import json
import sys
import textwrap
from typing import NamedTuple, Optional

import pytest

import lightbus
from lightbus.utilities.casting import cast_to_hint
from lightbus.utilities.deforming import deform_to_bus
from lightbus.utilities.testing import BusMocker


class ShopApi(lightbus.Api):
    order_placed = lightbus.Event(parameters=("order_id", "total"))

    class Meta:
        name = "shop_unit"

    def price(self, sku: str) -> decimal.Decimal:
        return decimal.Decimal("9.99")


@pytest.fixture
def local_bus(bus):
    """A bus client in this process, on the test's private Redis."""
    return lightbus.create(config_file=str(bus.config), service_name="unit")


def test_api_classes_need_a_meta_name():
    with pytest.raises(lightbus.MisconfiguredApiOptions):
        class NoMeta(lightbus.Api):
            pass
    with pytest.raises(lightbus.MisconfiguredApiOptions):
        class Reserved(lightbus.Api):
            class Meta:
                name = "default"
    with pytest.raises(lightbus.InvalidApiEventConfiguration):
        lightbus.Event(parameters="username")


def test_bus_mocker_records_and_asserts(local_bus):
    local_bus.client.register_api(ShopApi())
    with BusMocker(local_bus) as bus_mock:
        bus_mock.mock_rpc_call("stock.level", result=7)
        bus_mock.mock_event_firing("shop_unit.order_placed")
        assert local_bus.stock.level(sku="A") == 7
        message = local_bus.shop_unit.order_placed.fire(order_id=1, total=decimal.Decimal("2.50"))
        assert message.kwargs == {"order_id": 1, "total": "2.50"}
        bus_mock.assert_rpc_called("stock.level", times=1)
        bus_mock.assertEventFired("shop_unit.order_placed")
        bus_mock.assert_event_not_fired("shop_unit.other")
        assert [m.kwargs for m in bus_mock.get_rpc_messages("stock.level")] == [{"sku": "A"}]
        with pytest.raises(AssertionError, match="without a mocked result"):
            local_bus.stock.missing()
        with pytest.raises(AssertionError):
            bus_mock.assert_rpc_called("stock.level", times=2)
        bus_mock.mock_rpc_call("stock.broken", error=True, result="ValueError('x')", trace="t")
        with pytest.raises(lightbus.LightbusWorkerError, match="ValueError"):
            local_bus.stock.broken()

    @BusMocker(local_bus, require_mocking=False)
    def decorated(bus_mock):
        assert local_bus.anything.goes() is None
        return bus_mock.rpc_names_called

    assert decorated() == ["anything.goes"]


def test_async_calls_are_mocked_too(local_bus):
    async def main():
        with BusMocker(local_bus) as bus_mock:
            bus_mock.mock_rpc_call("stock.level", result=3)
            return await local_bus.stock.level.call_async(sku="B")

    assert asyncio.run(main()) == 3


def test_argument_mistakes_raise_upstreams_exceptions(local_bus):
    local_bus.client.register_api(ShopApi())
    with pytest.raises(lightbus.InvalidParameters, match="keyword arguments only"):
        local_bus.shop_unit.price("A")
    with pytest.raises(lightbus.InvalidEventArguments, match="order_id"):
        local_bus.shop_unit.order_placed.fire(order_id=1)
    with pytest.raises(lightbus.EventNotFound):
        local_bus.shop_unit.nope.fire()
    with pytest.raises(lightbus.UnknownApi):
        local_bus.elsewhere.happened.fire(x=1)
    with pytest.raises(lightbus.InvalidName):
        local_bus.shop_unit._private()
    with pytest.raises(lightbus.DeformError, match="shop_unit.order_placed"):
        local_bus.shop_unit.order_placed.fire(order_id=object(), total=1)
    with pytest.raises(lightbus.InvalidApiRegistryEntry):
        local_bus.client.register_api(ShopApi)

    async def blocking_inside_a_loop():
        local_bus.shop_unit.price(sku="A")

    with pytest.raises(lightbus.CannotBlockHere):
        asyncio.run(blocking_inside_a_loop())


def test_no_worker_means_lightbus_timeout(bus):
    bus.configure(rpc_timeout=0.5)
    completed = bus.run([sys.executable, "-c", textwrap.dedent("""
        import lightbus
        bus = lightbus.create()
        try:
            bus.nobody.home(x=1)
        except lightbus.LightbusTimeout as error:
            print("TIMEOUT", "nobody.home" in str(error))
    """)])
    assert completed.stdout.strip() == "TIMEOUT True", completed.stderr


def test_unreachable_redis_is_a_clear_error(tmp_path):
    from conftest import free_port, write_config

    config = write_config(tmp_path, f"redis://127.0.0.1:{free_port()}/0", rpc_timeout=2)
    bus = lightbus.create(config_file=str(config))
    with pytest.raises(lightbus.LightbusException) as raised:
        bus.somewhere.something()
    assert isinstance(raised.value, (lightbus.LightbusConnectionError, lightbus.LightbusTimeout))


def test_fired_events_reach_redis_with_the_peers_fields(bus, local_bus):
    local_bus.client.register_api(ShopApi())
    message = local_bus.shop_unit.order_placed.fire(order_id=5, total=decimal.Decimal("1.5"))
    entries = bus.redis.command("XRANGE", "shop_unit.*:stream", "-", "+")
    [(entry_id, fields)] = entries
    assert entry_id == message.native_id
    assert dict(zip(fields[::2], fields[1::2])) == {
        "id": message.id, "api_name": "shop_unit", "event_name": "order_placed",
        "version": "1", ":order_id": "5", ":total": '"1.5"',
    }


class Colour(enum.Enum):
    RED = "red"


class Pair(NamedTuple):
    a: int
    b: Optional[datetime.date] = None


def test_casting_and_deforming_round_trip():
    value = Pair(a=1, b=datetime.date(2020, 1, 2))
    assert deform_to_bus({"p": value, "c": Colour.RED, "s": {1}}) == {
        "p": {"a": 1, "b": "2020-01-02"}, "c": "red", "s": [1],
    }
    assert cast_to_hint({"a": "1", "b": "2020-01-02"}, Pair) == value
    assert cast_to_hint("red", Colour) is Colour.RED
    assert cast_to_hint("aGk=", bytes) == b"hi"
    assert cast_to_hint("x", int) == "x"  # does not cast: passed on, with a warning
    assert json.loads(json.dumps(deform_to_bus(decimal.Decimal("0.1")))) == "0.1"


def test_a_bus_used_after_fork_raises_instead_of_hanging(local_bus):
    import os

    local_bus.client.register_api(ShopApi())
    local_bus.shop_unit.order_placed.fire(order_id=1, total=1)  # the engine runs here
    child = os.fork()
    if child == 0:
        try:
            local_bus.shop_unit.order_placed.fire(order_id=2, total=2)
        except lightbus.UnsupportedUse:
            os._exit(7)
        except BaseException:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(child, 0)
    assert os.WEXITSTATUS(status) == 7
