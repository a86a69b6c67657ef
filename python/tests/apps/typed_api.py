"""An API with many kinds of type hints, served by Python Lightbus 1.1.2 and by the Python
front in the tests: both must store the same schema, and the front casts to these hints."""

import asyncio
import dataclasses
import datetime
import decimal
import enum
import uuid
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Set, Tuple, Union

import lightbus

bus = lightbus.create()


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Size(enum.IntEnum):
    SMALL = 1
    LARGE = 2


class Point(NamedTuple):
    x: int
    y: int = 0


@dataclasses.dataclass
class Order:
    sku: str
    quantity: int = 1
    placed: Optional[datetime.datetime] = None


@dataclasses.dataclass
class Basket:
    owner: str
    orders: List[Order] = dataclasses.field(default_factory=list)


class TypedApi(lightbus.Api):
    named = lightbus.Event(parameters=("username", "email"))
    typed = lightbus.Event(
        parameters=[
            lightbus.Parameter("when", datetime.datetime),
            lightbus.Parameter("amount", decimal.Decimal),
            lightbus.Parameter("point", Point),
            lightbus.Parameter("note", Optional[str], default=None),
        ]
    )
    empty = lightbus.Event()

    class Meta:
        name = "typed"
        version = 3

    def scalars(self, text: str, number: int, ratio: float, flag: bool, anything: Any,
                untyped) -> bool:
        return True

    def defaults(self, a: int = 3, b: Optional[str] = None, c="x", d=None, e: float = 1.5,
                 f: bool = False, g: List[int] = [1, 2]) -> Optional[int]:
        return a

    def rich(self, when: datetime.datetime, day: datetime.date, amount: decimal.Decimal,
             ident: uuid.UUID, blob: bytes, colour: Colour, size: Size) -> Dict[str, str]:
        values = dict(when=when, day=day, amount=amount, ident=ident, blob=blob,
                      colour=colour, size=size)
        return {name: type(value).__name__ for name, value in values.items()}

    def shapes(self, numbers: List[int], table: Dict[str, float], pair: Tuple[int, str],
               point: Point, order: Order, union: Union[int, str], tags: Set[str],
               items: Sequence[int], mapping: Mapping[str, List[int]],
               basket: Basket, maybe_point: Optional[Point] = None) -> Point:
        assert isinstance(point, Point), point
        assert isinstance(order, Order), order
        assert isinstance(basket, Basket) and all(isinstance(o, Order) for o in basket.orders)
        assert isinstance(pair, tuple) and isinstance(tags, set), (pair, tags)
        return Point(x=point.x + numbers[0], y=len(basket.orders))

    def returns_rich(self) -> Dict[str, Any]:
        return {
            "when": datetime.datetime(2021, 3, 1, 12, 30, tzinfo=datetime.timezone.utc),
            "day": datetime.date(2021, 3, 1),
            "amount": decimal.Decimal("1.50"),
            "ident": uuid.UUID("12345678-1234-5678-1234-567812345678"),
            "colour": Colour.GREEN,
            "point": Point(1, 2),
            "order": Order(sku="A-1", quantity=2),
            "blob": b"hi",
            "tags": ("a", "b"),
        }

    def fails(self, x: int) -> int:
        raise ValueError(f"bad x {x}")

    async def doubled(self, x: int) -> int:
        await asyncio.sleep(0.001)
        return x * 2

    def _private(self):
        return "never on the bus"


bus.client.register_api(TypedApi())
