"""The shop's tables: columns, types, keys, references and what a valid value is.

This is the single declaration of "valid" that the generator corrupts against and the quality and
cleaning engines check against.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import faker_commerce

from orchestrator.generation.pools import LOCALES

# Column types. Money is held as integer cents, decimal1 as integer tenths, timestamps as epoch seconds.
ID, FK, INT, MONEY, DECIMAL1, TIMESTAMP, TEXT, CATEGORY, EMAIL, PHONE, CODE = (
    "id",
    "fk",
    "int",
    "money",
    "decimal1",
    "timestamp",
    "text",
    "category",
    "email",
    "phone",
    "code",
)
NUMERIC_TYPES = frozenset({INT, MONEY, DECIMAL1})
STRING_TYPES = frozenset({TEXT, CATEGORY, EMAIL, PHONE, CODE})

EMAIL_PATTERN = r"^[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$"
PHONE_PATTERN = r"^\+[1-9][0-9]{7,14}$"
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"


@dataclass(frozen=True)
class Column:
    """One column and the rule its values obey."""

    name: str
    type: str
    nullable: bool = False  # clean data may hold nulls here
    references: str | None = None  # table whose primary key a foreign key points at
    categories: tuple[str, ...] = ()
    case: str | None = None  # canonical case ("title", "lower", "upper"); None: case is free
    minimum: float | None = None  # valid range, in the column's own unit (e.g. 0.01 for money)
    maximum: float | None = None
    pattern: str | None = None  # regular expression a valid value matches
    required: bool = False  # a row without a valid value here is unusable (keys are always required)

    @property
    def is_required(self) -> bool:
        return self.required or (self.type in (ID, FK) and not self.nullable)


@dataclass(frozen=True)
class Table:
    """A table of the shop; rows are keyed by ``key`` and de-duplicated on ``business_key``."""

    name: str
    columns: tuple[Column, ...]
    business_key: tuple[str, ...]
    parent: str | None = None  # generated per row of this table (None: a dimension with its own count)
    description: str = ""
    column_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "column_names", tuple(c.name for c in self.columns))

    @property
    def key(self) -> str:
        return self.columns[0].name

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


COUNTRIES = tuple(sorted(info.country for info in LOCALES.values()))
CURRENCIES = tuple(sorted({info.currency for info in LOCALES.values()}))
SEGMENTS = ("business", "consumer", "vip")
WAREHOUSES = ("AMS1", "BER1", "LON1", "MAD1", "NYC1")
ORDER_STATUSES = ("cancelled", "delivered", "paid", "shipped")
PAYMENT_METHODS = ("apple_pay", "bank_transfer", "card", "gift_card", "paypal")
PAYMENT_STATUSES = ("captured", "refunded")
CARRIERS = ("dhl", "dpd", "fedex", "gls", "royal_mail", "ups", "usps")
SHIPMENT_STATUSES = ("delivered", "in_transit")
RETURN_REASONS = ("changed_mind", "damaged", "late_delivery", "not_as_described", "wrong_size")
EVENT_TYPES = ("add_to_cart", "checkout", "product_view", "purchase")
DEVICES = ("desktop", "mobile", "tablet")
PRODUCT_CATEGORIES = tuple(sorted({c.lower() for c in faker_commerce.CATEGORIES}))


def _ts(name: str, nullable: bool = False) -> Column:
    return Column(name, TIMESTAMP, nullable=nullable, pattern=TIMESTAMP_PATTERN)


def _money(name: str, minimum: float, maximum: float, required: bool = False) -> Column:
    return Column(name, MONEY, minimum=minimum, maximum=maximum, required=required)


def _category(name: str, values: tuple[str, ...], case: str = "lower") -> Column:
    return Column(name, CATEGORY, categories=values, case=case)


def _fk(name: str, table: str, nullable: bool = False) -> Column:
    return Column(name, FK, references=table, nullable=nullable)


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "customers",
            (
                Column("customer_id", ID),
                Column("first_name", TEXT, case="title"),
                Column("last_name", TEXT, case="title"),
                Column("email", EMAIL, case="lower", pattern=EMAIL_PATTERN),
                Column("phone", PHONE, pattern=PHONE_PATTERN),
                Column("city", TEXT, case="title"),
                _category("country", COUNTRIES, case="upper"),
                _category("segment", SEGMENTS),
                _ts("signup_at"),
            ),
            business_key=("email",),
            description="People who signed up; name, e-mail, phone and country agree with each other.",
        ),
        Table(
            "sellers",
            (
                Column("seller_id", ID),
                Column("name", TEXT),
                Column("email", EMAIL, case="lower", pattern=EMAIL_PATTERN),
                _category("country", COUNTRIES, case="upper"),
                Column("rating", DECIMAL1, minimum=1.0, maximum=5.0),
                _ts("joined_at"),
            ),
            business_key=("email",),
            description="Marketplace sellers offering the products.",
        ),
        Table(
            "products",
            (
                Column("product_id", ID),
                Column("sku", CODE, case="upper", pattern=r"^SKU-[0-9]{8}$"),
                Column("name", TEXT, case="title"),
                _category("category", PRODUCT_CATEGORIES),
                _money("price", 0.01, 10_000),
                _fk("seller_id", "sellers"),
                _ts("created_at"),
            ),
            business_key=("sku",),
            description="The catalogue (faker-commerce names and categories); popularity is skewed.",
        ),
        Table(
            "inventory",
            (
                Column("inventory_id", ID),
                _fk("product_id", "products"),
                _category("warehouse", WAREHOUSES, case="upper"),
                Column("quantity_on_hand", INT, minimum=0, maximum=100_000),
                Column("reorder_level", INT, minimum=0, maximum=10_000),
                _ts("updated_at"),
            ),
            business_key=("product_id", "warehouse"),
            description="Stock per product and warehouse.",
        ),
        Table(
            "coupons",
            (
                Column("coupon_id", ID),
                Column("code", CODE, case="upper", pattern=r"^[A-Z]+[0-9]{2}-[0-9]{6}$"),
                Column("discount_pct", INT, minimum=1, maximum=90),
                _ts("valid_from"),
                _ts("valid_to"),
            ),
            business_key=("code",),
            description="Discount codes an order may use.",
        ),
        Table(
            "orders",
            (
                Column("order_id", ID),
                _fk("customer_id", "customers"),
                _fk("coupon_id", "coupons", nullable=True),
                _ts("order_ts"),
                _category("status", ORDER_STATUSES),
                _category("currency", CURRENCIES, case="upper"),
                _money("discount_amount", 0, 100_000),
                _money("total_amount", 0.01, 100_000, required=True),
            ),
            business_key=("order_id",),
            description="Orders; the total equals the sum of the order's items; placed after signup.",
        ),
        Table(
            "order_items",
            (
                Column("item_id", ID),
                _fk("order_id", "orders"),
                Column("line_no", INT, minimum=1, maximum=50),
                _fk("product_id", "products"),
                Column("quantity", INT, minimum=1, maximum=100, required=True),
                _money("unit_price", 0.01, 10_000, required=True),
                _money("line_total", 0.01, 100_000, required=True),
            ),
            business_key=("order_id", "line_no"),
            parent="orders",
            description="Lines of an order: quantity times the product's price.",
        ),
        Table(
            "payments",
            (
                Column("payment_id", ID),
                _fk("order_id", "orders"),
                _category("method", PAYMENT_METHODS),
                _category("status", PAYMENT_STATUSES),
                _money("amount", 0.01, 100_000, required=True),
                _ts("paid_at"),
            ),
            business_key=("order_id",),
            parent="orders",
            description="One payment per order: the total less the coupon's discount.",
        ),
        Table(
            "shipments",
            (
                Column("shipment_id", ID),
                _fk("order_id", "orders"),
                _category("carrier", CARRIERS),
                Column("tracking_number", CODE, case="upper", pattern=r"^[A-Z]{2}[0-9]{10}$"),
                _category("status", SHIPMENT_STATUSES),
                _ts("shipped_at"),
                _ts("delivered_at", nullable=True),
            ),
            business_key=("order_id",),
            parent="orders",
            description="Shipped after the order was placed; delivered after it was shipped.",
        ),
        Table(
            "returns",
            (
                Column("return_id", ID),
                _fk("order_item_id", "order_items"),
                _fk("order_id", "orders"),
                _category("reason", RETURN_REASONS),
                _money("refund_amount", 0.01, 100_000),
                _ts("returned_at"),
            ),
            business_key=("order_item_id",),
            parent="orders",
            description="Items sent back after delivery.",
        ),
        Table(
            "reviews",
            (
                Column("review_id", ID),
                _fk("order_id", "orders"),
                _fk("product_id", "products"),
                _fk("customer_id", "customers"),
                Column("rating", INT, minimum=1, maximum=5, required=True),
                Column("title", TEXT),
                Column("body", TEXT),
                _ts("created_at"),
            ),
            business_key=("order_id", "product_id"),
            parent="orders",
            description="Written after delivery by the customer who ordered.",
        ),
        Table(
            "events",
            (
                Column("event_id", ID),
                Column("session_id", INT, minimum=1),
                _fk("customer_id", "customers"),
                _category("event_type", EVENT_TYPES),
                _fk("product_id", "products", nullable=True),
                _category("device", DEVICES),
                _ts("event_ts"),
            ),
            business_key=("event_id",),
            parent="orders",
            description="Clickstream: browsing sessions, abandoned carts and the sessions that converted.",
        ),
    )
}
TABLE_NAMES = tuple(TABLES)
DIMENSIONS = tuple(name for name, t in TABLES.items() if t.parent is None and name != "orders")
