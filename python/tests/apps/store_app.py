"""A Python-front service for the worker tests: an RPC that fires an event, listeners (plain,
async, several events, failing), hooks and a task. Records what happens, one JSON object per
line, in the file named by APP_OUT."""

import asyncio
import datetime
import decimal
import json
import os

import lightbus

bus = lightbus.create()


def record(**fields):
    with open(os.environ["APP_OUT"], "a") as out:
        out.write(json.dumps(fields, default=str) + "\n")


class StoreApi(lightbus.Api):
    item_added = lightbus.Event(
        parameters=[
            lightbus.Parameter("sku", str),
            lightbus.Parameter("price", decimal.Decimal),
            lightbus.Parameter("at", datetime.datetime),
        ]
    )
    item_removed = lightbus.Event(parameters=("sku",))

    class Meta:
        name = "store"

    def add(self, sku: str, price: decimal.Decimal) -> decimal.Decimal:
        # A blocking fire from inside a handler.
        bus.store.item_added.fire(sku=sku, price=price, at=datetime.datetime(2024, 1, 2, 3, 4))
        return price * 2

    async def add_async(self, sku: str, price: decimal.Decimal) -> str:
        await bus.store.item_added.fire_async(
            sku=sku, price=price, at=datetime.datetime(2024, 1, 2, 3, 4)
        )
        return sku

    def boom(self, text: str) -> None:
        raise RuntimeError(f"boom: {text}")


def on_item_added(event_message, sku: str, price: decimal.Decimal, at: datetime.datetime):
    record(listener="added", sku=sku, price=type(price).__name__, at=type(at).__name__,
           event=event_message.canonical_name, native_id=event_message.native_id)


async def on_any(event_message, **kwargs):
    await asyncio.sleep(0)
    record(listener="any", event=event_message.event_name, kwargs=kwargs)


def failing(event_message, sku):
    record(listener="failing", sku=sku)
    raise ValueError(f"cannot remove {sku}")


bus.store.item_added.listen(on_item_added, listener_name="added", bus_options={"since": "0"})
bus.client.listen_for_events(
    [("store", "item_added"), ("store", "item_removed")], on_any, listener_name="any",
    options={"since": "0"},
)
if os.environ.get("APP_FAILING"):
    bus.store.item_removed.listen(
        failing, listener_name="failing", on_error=lightbus.OnError(os.environ["APP_FAILING"]),
        bus_options={"since": "0"},
    )


@bus.client.on_start()
def started(client):
    record(hook="start", service=client.config.service_name)


@bus.client.on_stop()
async def stopped(client):
    record(hook="stop")


@bus.client.every(seconds=0.2, also_run_immediately=True)
def tick():
    record(task="tick")


async def watch():
    record(task="background")


bus.client.add_background_task(watch())

try:
    import schedule
except ImportError:  # the `schedule` extra is optional
    schedule = None

if schedule is not None:

    @bus.client.schedule(schedule.every(1).hours, also_run_immediately=True)
    async def hourly():
        record(task="scheduled")
