"""Medallion paths and the validation that keeps every path inside the lake."""

from __future__ import annotations

import re

from orchestrator.errors import InvalidInput

_USER = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_JOB = re.compile(r"[a-z0-9][a-z0-9-]{2,63}")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def check_user(user: str) -> str:
    """A user name as used in paths: lower-case letters, digits, '_' or '-', starting with a letter."""
    if not isinstance(user, str) or not _USER.fullmatch(user):
        raise InvalidInput(
            "user",
            f"{user!r} is not a valid user name; use 1-32 lower-case letters, digits, '_' or '-', "
            "starting with a letter",
        )
    return user


def check_job_id(job_id: str) -> str:
    """A job id as used in paths: lower-case letters, digits and '-'."""
    if not isinstance(job_id, str) or not _JOB.fullmatch(job_id):
        raise InvalidInput(
            "job_id", f"{job_id!r} is not a valid job id; use 3-64 lower-case letters, digits or '-'"
        )
    return job_id


def check_name(field: str, name: str) -> str:
    """A table or file stem: lower-case letters, digits and '_'."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(field, f"{name!r} is not a valid name; use lower-case letters, digits and '_'")
    return name


def check_lake_path(path: str) -> str:
    """A lake path: relative, '/'-separated, no empty segment and no segment starting with '.'."""
    if not isinstance(path, str) or not path or any(not s or s.startswith(".") for s in path.split("/")):
        raise InvalidInput(
            "path",
            f"{path!r} must be a relative lake path such as 'raw/alice/job-1/orders.jsonl': "
            "no leading '/', no empty segment, no segment starting with '.'",
        )
    return path


def raw_dir(user: str, job_id: str) -> str:
    """Bronze folder of a generation job: written once, never modified."""
    return f"raw/{check_user(user)}/{check_job_id(job_id)}"


def raw_table(user: str, job_id: str, table: str) -> str:
    return f"{raw_dir(user, job_id)}/{check_name('table', table)}.jsonl"


def raw_contract(user: str, job_id: str) -> str:
    """The copy of the contract a generation followed, so profiling and cleaning it read exactly that one."""
    return f"{raw_dir(user, job_id)}/contract.yaml"


def raw_manifest(user: str, job_id: str) -> str:
    """Written last: a raw job exists for readers only once its manifest does."""
    return f"{raw_dir(user, job_id)}/manifest.json"


def truth_dir(user: str, job_id: str) -> str:
    """The generator's clean truth and answer key: outside raw, never read by cleaning."""
    return f"truth/{check_user(user)}/{check_job_id(job_id)}"


def truth_table(user: str, job_id: str, table: str) -> str:
    return f"{truth_dir(user, job_id)}/{check_name('table', table)}.parquet"


def answer_key(user: str, job_id: str) -> str:
    return f"{truth_dir(user, job_id)}/answer_key.parquet"


def duplicate_map(user: str, job_id: str) -> str:
    return f"{truth_dir(user, job_id)}/duplicates.parquet"


def silver_dir(user: str, parent_id: str, job_id: str) -> str:
    """Silver output of one cleaning job (typed, cleaned, de-duplicated parquet)."""
    return f"silver/cleaned/{check_user(user)}/{check_job_id(parent_id)}/{check_job_id(job_id)}"


def silver_table(user: str, parent_id: str, job_id: str, table: str) -> str:
    return f"{silver_dir(user, parent_id, job_id)}/{check_name('table', table)}.parquet"


def quarantine_table(user: str, parent_id: str, job_id: str, table: str) -> str:
    """Rows cleaning rejected, with the rule that rejected them."""
    return f"{silver_dir(user, parent_id, job_id)}/quarantine/{check_name('table', table)}.parquet"


def silver_manifest(user: str, parent_id: str, job_id: str) -> str:
    """Written last: a cleaning job's outputs are complete once it exists."""
    return f"{silver_dir(user, parent_id, job_id)}/manifest.json"


def gold_dir(user: str, parent_id: str, job_id: str) -> str:
    return f"gold/analytics/{check_user(user)}/{check_job_id(parent_id)}/{check_job_id(job_id)}"


def gold_table(user: str, parent_id: str, job_id: str, name: str) -> str:
    return f"{gold_dir(user, parent_id, job_id)}/{check_name('gold table', name)}.parquet"
