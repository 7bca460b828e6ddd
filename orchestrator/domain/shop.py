"""The shop, the workbench's first data set, as its contract (contracts/shop.yaml) declares it: its tables
and the allowed values its generator draws from. The single declaration of "valid" that the generator
corrupts against and the quality and cleaning engines check against."""

from __future__ import annotations

from orchestrator.domain.contract import built_in
from orchestrator.domain.model import (  # noqa: F401  (the column kinds and patterns, as the shop's users name them)
    CATEGORY,
    CODE,
    DECIMAL1,
    EMAIL,
    EMAIL_PATTERN,
    FK,
    ID,
    INT,
    MONEY,
    NUMERIC_TYPES,
    PHONE,
    PHONE_PATTERN,
    STRING_TYPES,
    TEXT,
    TIMESTAMP,
    TIMESTAMP_PATTERN,
    Column,
    Table,
)

SOURCE = built_in("shop")
CONTRACT = SOURCE.contract
TABLES: dict[str, Table] = CONTRACT.tables
TABLE_NAMES = tuple(TABLES)
DIMENSIONS = tuple(name for name, t in TABLES.items() if t.parent is None and name != CONTRACT.driving_table)


def _values(table: str, column: str) -> tuple[str, ...]:
    return TABLES[table].column(column).categories


COUNTRIES = _values("customers", "country")
CURRENCIES = _values("orders", "currency")
SEGMENTS = _values("customers", "segment")
WAREHOUSES = _values("inventory", "warehouse")
ORDER_STATUSES = _values("orders", "status")
PAYMENT_METHODS = _values("payments", "method")
PAYMENT_STATUSES = _values("payments", "status")
CARRIERS = _values("shipments", "carrier")
SHIPMENT_STATUSES = _values("shipments", "status")
RETURN_REASONS = _values("returns", "reason")
EVENT_TYPES = _values("events", "event_type")
DEVICES = _values("events", "device")
PRODUCT_CATEGORIES = _values("products", "category")
