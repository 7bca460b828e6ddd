"""Value pools built with Faker and faker-commerce, once per locale and library version.

Rows never call Faker: the generator samples pool indices with its counter-based streams, so the seed of a
job chooses values from the pools and the pools themselves do not depend on it (a new seed costs nothing).
The pools of the pinned Faker versions ship beside this module (``pool_data/``); with any other version
they are built on first use and cached on disk under the data directory. Pools keep only values whose
canonical form survives the normalisations cleaning applies (a name equal to its own title case, no
stray or doubled spaces), so case and whitespace errors stay repairable.
"""

from __future__ import annotations

import json
import os
import random
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import pyarrow as pa

POOL_VERSION = 3
POOL_SIZE = 400
BUILD_SEED = 0  # the one seed Faker draws every pool with (so jobs of seed 0 kept their values)
SHIPPED = Path(__file__).with_name("pool_data")


@dataclass(frozen=True)
class LocaleInfo:
    """What a locale fixes about a customer: country, currency and the shape of a mobile number."""

    country: str
    currency: str
    calling_code: str
    national_digits: int
    leading: str  # digits a national mobile number may start with


LOCALES: dict[str, LocaleInfo] = {
    "en_US": LocaleInfo("US", "USD", "1", 10, "23456789"),
    "en_GB": LocaleInfo("GB", "GBP", "44", 10, "7"),
    "de_DE": LocaleInfo("DE", "EUR", "49", 11, "1"),
    "fr_FR": LocaleInfo("FR", "EUR", "33", 9, "67"),
    "es_ES": LocaleInfo("ES", "EUR", "34", 9, "67"),
    "it_IT": LocaleInfo("IT", "EUR", "39", 10, "3"),
    "nl_NL": LocaleInfo("NL", "EUR", "31", 9, "6"),
}
LOCALE_WEIGHTS: dict[str, float] = {
    "en_US": 0.30,
    "en_GB": 0.15,
    "de_DE": 0.20,
    "fr_FR": 0.12,
    "es_ES": 0.08,
    "it_IT": 0.08,
    "nl_NL": 0.07,
}

_CLEAN_TEXT = re.compile(r"[^\s](?:[^\t\n\r]*[^\s])?")


@cache
def pool_library_versions() -> dict[str, str]:
    """The versions of the libraries the pools are built with, for a job's manifest and the pools' file
    names (read from the installed distributions, so a job whose pools exist never imports Faker)."""
    return {"faker": metadata.version("Faker"), "faker_commerce": metadata.version("faker-commerce")}


def ascii_slug(text: str) -> str:
    """Lower-case ASCII letters only (for e-mail local parts and domains)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]", "", folded.lower())


def _keep_text(value: str) -> bool:
    """Trimmed, single-spaced, and nothing JSON must escape (so clean values are quoted without a scan)."""
    return bool(_CLEAN_TEXT.fullmatch(value)) and "  " not in value and not set(value) & set('"\\\t\n\r')


def _keep_name(value: str) -> bool:
    return bool(_CLEAN_TEXT.fullmatch(value)) and "  " not in value and value == value.title()


def _unique(values: list[str], keep) -> list[str]:
    """Distinct values in first-seen order (so truncating a pool does not bias it alphabetically)."""
    return [v for v in dict.fromkeys(values) if keep(v)]


def _stable_order(fake) -> None:
    """Faker's it_IT address provider lists its cities from a set, so their order (and so the cities a seed
    draws) changes with Python's hash seed from one process to the next; sorted, a seed draws the same."""
    for provider in fake.factories[0].providers:
        if isinstance(getattr(provider, "cities", None), list):
            provider.cities = sorted(provider.cities)


def _build_locale_pool(locale: str, seed: int = BUILD_SEED) -> dict[str, list[str]]:
    from faker import Faker

    fake = Faker(locale)
    _stable_order(fake)
    fake.seed_instance(seed)
    draw = range(POOL_SIZE * 3)
    firsts = _unique([fake.first_name() for _ in draw], lambda v: _keep_name(v) and ascii_slug(v))
    lasts = _unique([fake.last_name() for _ in draw], lambda v: _keep_name(v) and ascii_slug(v))
    return {
        "first_name": firsts[:POOL_SIZE],
        "last_name": lasts[:POOL_SIZE],
        "city": _unique([fake.city() for _ in draw], _keep_name)[:POOL_SIZE],
        "company": _unique([fake.company() for _ in draw], _keep_text)[:POOL_SIZE],
        "email_domain": _unique([fake.free_email_domain() for _ in range(200)], lambda v: v.isascii()),
        "review_title": _unique([fake.sentence(nb_words=4) for _ in draw], _keep_text)[:POOL_SIZE],
        "review_body": _unique([fake.paragraph(nb_sentences=2) for _ in draw], _keep_text)[:POOL_SIZE],
        # drawn after the shop's pools, so adding them left the shop's values as they were
        "street": _unique([fake.street_name() for _ in draw], _keep_text)[:POOL_SIZE],
        "word": _unique([fake.word() for _ in draw], _keep_text)[:POOL_SIZE],
        "sentence": _unique([fake.sentence(nb_words=6) for _ in draw], _keep_text)[:POOL_SIZE],
    }


def _build_product_pool(seed: int = BUILD_SEED) -> dict[str, list[str]]:
    import faker_commerce
    from faker import Faker

    fake = Faker("en_US")
    fake.add_provider(faker_commerce.Provider)
    fake.seed_instance(seed)
    state = random.getstate()
    random.seed(seed)  # faker-commerce picks the name shape with the module-level random
    try:
        names = _unique([fake.ecommerce_name() for _ in range(POOL_SIZE * 10)], _keep_name)
    finally:
        random.setstate(state)
    return {"product_name": names}


def pool_files() -> dict[str, str]:
    """The file name of each pool (a locale's, and ``commerce``: faker-commerce's), tagged with the pool
    format's version and the versions of the libraries that build it: a new Faker builds new pools, never
    reuses old ones."""
    versions = pool_library_versions()
    tag = f"v{POOL_VERSION}-faker{versions['faker']}"
    names = {locale: f"{locale}-{tag}.json" for locale in LOCALES}
    return {**names, "commerce": f"commerce-{tag}-{versions['faker_commerce']}.json"}


def build_pool(name: str) -> dict[str, list[str]]:
    """A locale's pool, or faker-commerce's (``name`` as in pool_files), drawn with Faker."""
    return _build_product_pool() if name == "commerce" else _build_locale_pool(name)


def _cached(cache_dir: Path, name: str) -> dict[str, list[str]]:
    file = pool_files()[name]
    for path in (SHIPPED / file, cache_dir / file):
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))
    pool = build_pool(name)
    path = cache_dir / file
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(pool, handle, ensure_ascii=False)
    os.replace(tmp, path)
    return pool


@dataclass(frozen=True)
class Pools:
    """Arrow arrays of pool values per locale, plus the locale-independent product pools."""

    locales: dict[str, dict[str, pa.Array]]
    products: dict[str, pa.Array]


def load_pools(cache_dir: Path, locales: tuple[str, ...]) -> Pools:
    """Pools for the given locales: shipped, cached under ``cache_dir``, or built there on first use."""
    by_locale = {
        locale: {k: pa.array(v, pa.string()) for k, v in _cached(cache_dir, locale).items()}
        for locale in locales
    }
    products = _cached(cache_dir, "commerce")
    return Pools(by_locale, {k: pa.array(v, pa.string()) for k, v in products.items()})


@cache
def ascii_names(values: tuple[str, ...]) -> pa.Array:
    """ASCII slugs of pool names, for e-mail local parts."""
    return pa.array([ascii_slug(v) for v in values], pa.string())


def write_shipped() -> None:
    """Build the pools of the installed Faker versions into ``pool_data/`` (after a Faker upgrade or a change
    to how pools are drawn: ``python -m orchestrator.generation.pools``), removing those of other versions."""
    files = pool_files()
    SHIPPED.mkdir(exist_ok=True)
    for old in SHIPPED.glob("*.json"):
        if old.name not in files.values():
            old.unlink()
    for name, file in files.items():
        text = json.dumps(build_pool(name), ensure_ascii=False)
        (SHIPPED / file).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write_shipped()
