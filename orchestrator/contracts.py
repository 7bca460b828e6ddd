"""The contracts a user can generate from: the built-in ones and their own, kept under the data root; and the
contract a job followed, read from the copy beside its raw files.

A reference names a contract: a built-in's name (``shop``), a user's own as ``USER/NAME``, or (from the
command line) the path of a YAML file. A user's contracts are theirs; an administrator reaches everyone's.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from orchestrator.config import Settings, get_settings
from orchestrator.domain.contract import (
    ContractError,
    ContractSource,
    built_in,
    built_in_names,
    parse_contract,
    read_contract,
)
from orchestrator.errors import NotFound
from orchestrator.storage import Storage, paths
from orchestrator.storage.paths import check_user

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
USER_REF = re.compile(r"^[a-z0-9_-]{1,32}/[a-z0-9][a-z0-9_-]{0,47}$")


@dataclass(frozen=True)
class ContractEntry:
    """A contract as a list shows it: its reference, who owns it (None: built in) and what it declares; a
    stored one that no longer validates (an older version of the rules, a hand edit) has no source but the
    error that refuses it."""

    ref: str
    owner: str | None
    source: ContractSource | None
    error: ContractError | None = None


def _folder(settings: Settings, user: str) -> Path:
    return settings.data_dir / "contracts" / check_user(user)


def check_name(name: str) -> str:
    """A user contract's name: 1-48 lower-case letters, digits, '_' or '-', not starting with '_' or '-'."""
    if not NAME.fullmatch(name or ""):
        raise ContractError(
            "name", f"{name!r} is not a contract name; use 1-48 lower-case letters, digits, _ or -"
        )
    if name in built_in_names():
        raise ContractError("name", f"{name!r} is a built-in contract's name; choose another")
    return name


def save(user: str, name: str, text: str, settings: Settings | None = None) -> ContractEntry:
    """Validate ``text`` and keep it as ``user``'s contract ``name`` (replacing their earlier one). A contract
    that does not validate is refused with the YAML path of what to change, and nothing is stored."""
    settings = settings or get_settings()
    check_name(name)
    source = parse_contract(text)
    folder = _folder(settings, user)
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, folder / f"{name}.yaml")
    finally:
        Path(temporary).unlink(missing_ok=True)
    return ContractEntry(f"{user}/{name}", user, source)


def delete(ref: str, user: str, is_admin: bool = False, settings: Settings | None = None) -> None:
    """Remove a user's own contract; jobs generated from it keep their copies."""
    if ref in built_in_names():
        raise ContractError("contract", f"{ref!r} is built in; only your own contracts can be deleted")
    path = _own_path(ref, user, is_admin, settings or get_settings())
    path.unlink()


def _own_path(ref: str, user: str, is_admin: bool, settings: Settings) -> Path:
    """The file of the contract ``USER/NAME`` if ``user`` may reach it; any other reference is not found."""
    owner, _, name = ref.partition("/")
    if not USER_REF.fullmatch(ref) or (owner != user and not is_admin):
        raise NotFound(f"contract {ref} does not exist")
    path = _folder(settings, owner) / f"{name}.yaml"
    if not path.is_file():
        raise NotFound(f"contract {ref} does not exist")
    return path


def listed(user: str, is_admin: bool = False, settings: Settings | None = None) -> list[ContractEntry]:
    """The built-in contracts, then the user's own (everyone's for an administrator), by reference; one that
    no longer validates is listed with its error."""
    settings = settings or get_settings()
    entries = [ContractEntry(name, None, built_in(name)) for name in built_in_names()]
    root = settings.data_dir / "contracts"
    owners = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    for owner in owners if is_admin else [user] if user in owners else []:
        for path in sorted(_folder(settings, owner).glob("*.yaml")):
            ref = f"{owner}/{path.stem}"
            try:
                entries.append(ContractEntry(ref, owner, read_contract(path)))
            except ContractError as error:
                entries.append(ContractEntry(ref, owner, None, error))
    return entries


def _read(path: Path) -> ContractSource:
    """A contract file, parsed once per version of it (a generation spec resolves its contract when built)."""
    stat = path.stat()
    return _read_version(path.resolve(), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=64)
def _read_version(path: Path, _mtime_ns: int, _size: int) -> ContractSource:
    return read_contract(path)


def resolve(ref: str, user: str, is_admin: bool = False, settings: Settings | None = None) -> ContractSource:
    """The contract a reference names, validated: a built-in's name, a user's ``USER/NAME`` or a file."""
    if ref in built_in_names():
        return built_in(ref)
    if USER_REF.fullmatch(ref) and not Path(ref).is_file():
        return _read(_own_path(ref, user, is_admin, settings or get_settings()))
    if Path(ref).is_file():
        return _read(Path(ref))
    raise ContractError(
        "contract",
        f"{ref!r} is neither a built-in contract ({', '.join(built_in_names())}), one of yours (USER/NAME) "
        "nor a contract file",
    )


def job_contract(storage: Storage, user: str, generation_id: str) -> ContractSource:
    """The contract a generation followed, from the copy beside its raw files (the shop for a job generated
    before jobs kept their contract)."""
    path = paths.raw_contract(user, generation_id)
    if not storage.exists(path):
        return built_in("shop")
    with storage.open_read(path) as handle:
        return parse_contract(handle.read().decode("utf-8"))
