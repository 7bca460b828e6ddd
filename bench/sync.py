"""Sync throughput between the local lake and each cloud twin, and the contract suites' timings.

One shop job (every table) is generated on the local cloud and cleaned with pandas, so its silver and gold
exist; ``sync_job`` then copies it to an ADLS Gen2 file system on Azurite (``azure``) and to an OSS bucket on
tests/fake_oss.py (``aliyun``, served from a process of its own), each through its real SDK. A second job,
generated and cleaned on ``azure``, is synced back from there to the local lake and to ``aliyun`` (a job is
copied from the cloud it lives on, so the way back needs a job that lives on the cloud twin). Each sync is
printed beside two baselines measured in the same run: a plain streaming copy of the same files between
the same two lakes through the Storage protocol, with no hashing and no read-back (the ratio is what
verification costs), and ``shutil.copyfile`` of the job's local files (the floor). A second sync of each,
which copies nothing and only verifies, is timed too.

Then ``pytest tests/test_storage_contract.py tests/test_queue_contract.py --durations=0`` runs in a
subprocess and its setup, call and teardown times are summed per adapter, as the test ids name it.

Run from the repository root: ``.venv/bin/python -m bench.sync [--orders N] [--tables T ...] [--quick]
[--skip-contracts]``.
Everything lives in temporary folders and services of the bench's own; the configured lake, job store and
secrets are never read or touched.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from azure.storage.blob import BlobServiceClient

from orchestrator.cleaning import engines
from orchestrator.config import get_settings
from orchestrator.generation.spec import GenerationSpec
from orchestrator.service import execute_job, generate_job, launch_clean
from orchestrator.storage import LocalLake, Storage, open_lake, paths
from orchestrator.sync import CHUNK, sync_job
from tests.azurite import running_azurite

ROOT = Path(__file__).resolve().parents[1]
USER = "bench"
OSS_KEY, OSS_SECRET, OSS_REGION, OSS_BUCKET = "LTAI5tSyncBench", "sync-bench-secret", "cn-bench", "lake"
CONTRACTS = ("tests/test_storage_contract.py", "tests/test_queue_contract.py")
QUICK_CONTRACTS = "an_empty_file_is_a_file or queues_are_independent"  # each adapter once, in seconds
ADAPTERS = {  # a test id's parameter (or a word of its name) -> the adapter it exercises
    "local": "local",
    "adls": "azure (Azurite)",
    "azure": "azure (Azurite)",
    "azurite": "azure (Azurite)",
    "oss": "OSS fake",
    "mns": "MNS fake",
}
UNNAMED = "not named in the id"
DURATION = re.compile(r"^\s*([\d.]+)s (setup|call|teardown)\s+(\S+)\s*$")
T = TypeVar("T")

# The fake OSS answers from a process of its own, so its HTTP server does not share the bench's GIL.
OSS_SERVER = """
import os, sys
from tests.fake_oss import FakeOss
key, secret, region, bucket = (os.environ[f"BENCH_OSS_{n}"] for n in ("KEY", "SECRET", "REGION", "BUCKET"))
with FakeOss(key, secret, region, (bucket,)) as oss:
    print(oss.port, flush=True)
    sys.stdin.read()
"""


def _timed(run: Callable[[], T]) -> tuple[float, T]:
    """Wall seconds of ``run`` and its result."""
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


@contextmanager
def fake_oss() -> Iterator[str]:
    """tests/fake_oss.py in a child process; its endpoint."""
    given = {"KEY": OSS_KEY, "SECRET": OSS_SECRET, "REGION": OSS_REGION, "BUCKET": OSS_BUCKET}
    process = subprocess.Popen(
        [sys.executable, "-c", OSS_SERVER],
        cwd=ROOT,
        env={**os.environ, **{f"BENCH_OSS_{name}": value for name, value in given.items()}},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stdin.close()
        process.wait(timeout=10)
        process.stdout.close()


def configure(data_dir: Path, azure_connection: str, oss_endpoint: str) -> None:
    """This process's settings: a local data dir of the bench's own beside Azurite and the fake OSS; every
    setting the environment had is dropped first, so nothing configured is used."""
    for name in [name for name in os.environ if name.startswith("ORCHESTRATOR_")]:
        del os.environ[name]
    file_system = f"lake{uuid.uuid4().hex[:10]}"
    BlobServiceClient.from_connection_string(azure_connection).create_container(file_system)
    os.environ.update(
        {
            "ORCHESTRATOR_DATA_DIR": str(data_dir),
            "ORCHESTRATOR_SECRETS_FILE": str(data_dir.parent / "no-secrets.toml"),
            "ORCHESTRATOR_PROFILE_AFTER_CLEANING": "false",
            "ORCHESTRATOR_CLOUDS": "local,azure,aliyun",
            "ORCHESTRATOR_AZURE_STORAGE_CONNECTION_STRING": azure_connection,
            "ORCHESTRATOR_AZURE_FILE_SYSTEM": file_system,
            "ORCHESTRATOR_ALIYUN_OSS_BUCKET": OSS_BUCKET,
            "ORCHESTRATOR_ALIYUN_OSS_ENDPOINT": oss_endpoint,
            "ORCHESTRATOR_ALIYUN_OSS_REGION": OSS_REGION,
            "ORCHESTRATOR_ALIYUN_OSS_PATH_STYLE": "true",
            "ORCHESTRATOR_ALIYUN_ACCESS_KEY_ID": OSS_KEY,
            "ORCHESTRATOR_ALIYUN_ACCESS_KEY_SECRET": OSS_SECRET,
            "ORCHESTRATOR_ALIYUN_MNS_ENDPOINT": "http://127.0.0.1:9",  # a sync uses no queue
        }
    )


@dataclass(frozen=True)
class Job:
    """A cleaned generation: its id, where it lives, its files (what a sync copies) and their bytes."""

    job_id: str
    cloud: str
    files: tuple[str, ...]
    raw_rows: int


def cleaned_job(orders: int, tables: tuple[str, ...], cloud: str) -> Job:
    """A shop job of ``tables`` (all when empty) generated on ``cloud`` and cleaned there with pandas."""
    generated = generate_job(GenerationSpec(rows=orders, seed=11, tables=tables), USER, cloud=cloud)
    cleaning = execute_job(launch_clean(USER, generated.job_id, engine=engines.PANDAS).job.job_id)
    if cleaning.state != "succeeded":
        raise RuntimeError(f"the cleaning of {generated.job_id} ended {cleaning.state}: {cleaning.error}")
    lake = open_lake(get_settings().on_cloud(cloud))
    folders = (
        paths.raw_dir(USER, generated.job_id),
        paths.truth_dir(USER, generated.job_id),
        paths.silver_dir(USER, generated.job_id, cleaning.job_id),
        paths.gold_dir(USER, generated.job_id, cleaning.job_id),
    )
    files = tuple(path for folder in folders for path in lake.list(folder))
    return Job(generated.job_id, cloud, files, sum(table.rows for table in generated.tables.values()))


def stream_copy(source: Storage, target: Storage, files: tuple[str, ...], prefix: str) -> int:
    """The baseline: every file streamed from ``source`` to ``target`` under ``prefix``, as sync reads and
    writes it (same chunk size) but with no hashing and no read-back. Bytes copied."""
    size = 0
    for path in files:
        with source.open_read(path) as reader, target.open_write(f"{prefix}/{path}") as writer:
            while chunk := reader.read(CHUNK):
                writer.write(chunk)
                size += len(chunk)
    return size


def file_copy(lake: LocalLake, files: tuple[str, ...], to: Path) -> int:
    """The floor: ``shutil.copyfile`` of the job's local files to another folder. Bytes copied."""
    size = 0
    for path in files:
        target = to / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lake.resolve(path), target)
        size += target.stat().st_size
    return size


@dataclass(frozen=True)
class Rate:
    """One measured copy: its wall seconds, bytes and files."""

    seconds: float
    size: int
    files: int

    @property
    def mb_per_s(self) -> float:
        return self.size / self.seconds / 1e6

    @property
    def files_per_s(self) -> float:
        return self.files / self.seconds


def _row(label: str, rate: Rate, stream: Rate | None, floor: Rate, note: str = "") -> str:
    vs_stream = f"{rate.mb_per_s / stream.mb_per_s:>14.2f}x" if stream else f"{'':>15}"
    return (
        f"{label:<46}{rate.seconds:>9.2f}{rate.mb_per_s:>9.1f}{rate.files_per_s:>10.1f}"
        f"{vs_stream}{floor.mb_per_s / rate.mb_per_s:>13.2f}x{note}"
    )


def sync_bench(orders: int, tables: tuple[str, ...], tmp: Path) -> None:
    settings = get_settings()
    local = LocalLake(settings.data_dir)
    started = time.perf_counter()
    outward = cleaned_job(orders, tables, "local")
    made_out = time.perf_counter() - started
    floor_seconds, floor_size = _timed(lambda: file_copy(local, outward.files, tmp / "floor"))
    floor = Rate(floor_seconds, floor_size, len(outward.files))
    what = f"{len(tables)} table(s)" if tables else "all tables"
    print(
        f"sync: {orders:,} orders, {outward.raw_rows:,} raw rows in {what}; a job of {len(outward.files)} "
        f"files, {floor_size / 1e6:,.1f} MB (raw, truth, manifest, silver, gold); generated and cleaned in "
        f"{made_out:.1f} s"
    )
    print(f"{'step':<46}{'seconds':>9}{'MB/s':>9}{'files/s':>10}{'vs stream copy':>15}{'below floor':>14}")
    print(_row("floor: shutil.copyfile (local disk)", floor, None, floor))

    started = time.perf_counter()
    back = cleaned_job(orders, tables, "azure")
    made_back = time.perf_counter() - started
    for job, target in ((outward, "azure"), (outward, "aliyun"), (back, "local"), (back, "aliyun")):
        source_lake = open_lake(settings.on_cloud(job.cloud))
        target_lake = open_lake(settings.on_cloud(target))
        name = f"{job.cloud} -> {target}"
        prefix = f"baseline-{uuid.uuid4().hex[:8]}"
        seconds, size = _timed(lambda: stream_copy(source_lake, target_lake, job.files, prefix))  # noqa: B023
        stream = Rate(seconds, size, len(job.files))
        first = sync_job(job.job_id, target, user=USER)
        if (first.copied, first.kept, first.bytes_copied) != (len(job.files), 0, size):
            raise RuntimeError(f"{name}: sync copied {first.line}, not the {len(job.files)} files listed")
        again = sync_job(job.job_id, target, user=USER)
        if (again.copied, again.kept) != (0, len(job.files)):
            raise RuntimeError(f"{name}: a second sync copied files: {again.line}")
        synced = Rate(first.seconds, size, len(job.files))
        verified = Rate(again.seconds, size, len(job.files))
        print(_row(f"{name}: stream copy (baseline)", stream, stream, floor))
        print(_row(f"{name}: sync_job (hash, read back)", synced, stream, floor))
        print(
            _row(
                f"{name}: second sync (verifies only)",
                verified,
                stream,
                floor,
                f"  {again.seconds / first.seconds:.2f} of the first sync's time",
            )
        )
    print(
        f"(the {back.cloud} job, same spec, was generated and cleaned on Azurite in {made_back:.1f} s; "
        "MB/s counts each file's bytes once, though a sync also reads the copy back and a second sync "
        "reads both sides)"
    )


def adapter_of(test_id: str) -> str:
    """The adapter a contract test exercises, as its id names it: its parameter, else a word of its name."""
    name, _, parameter = test_id.split("::")[-1].partition("[")
    first = parameter.rstrip("]").split("-")[0]
    if first in ADAPTERS:
        return ADAPTERS[first]
    for word in name.split("_"):
        if word in ADAPTERS:
            return ADAPTERS[word]
    return UNNAMED


def _short(test_id: str) -> str:
    """``storage: test_name[param]`` for ``tests/test_storage_contract.py::test_name[param]``."""
    file, _, name = test_id.partition("::")
    return f"{Path(file).stem.removeprefix('test_').removesuffix('_contract')}: {name}"


def contract_timings(quick: bool, environment: dict[str, str]) -> None:
    """Run the storage and queue contract suites and print their seconds per adapter."""
    command = [sys.executable, "-m", "pytest", *CONTRACTS, "-q", "--durations=0", "--durations-min=0"]
    command += ["-p", "no:cacheprovider"]
    if quick:
        command += ["-k", QUICK_CONTRACTS]
    wall, done = _timed(
        lambda: subprocess.run(
            command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=3600
        )
    )
    seconds: dict[str, float] = defaultdict(float)
    tests: dict[str, set[str]] = defaultdict(set)
    per_test_seconds: dict[str, float] = defaultdict(float)  # setup, call and teardown of one test
    for line in done.stdout.splitlines():
        if match := DURATION.match(line):
            adapter = adapter_of(match[3])
            seconds[adapter] += float(match[1])
            per_test_seconds[match[3]] += float(match[1])
            tests[adapter].add(match[3])
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
    print(f"\ncontract suites: {' '.join(CONTRACTS)}: {summary} ({wall:.1f} s wall with start-up)")
    if done.returncode != 0 or not seconds:
        raise RuntimeError(f"the contract suites did not pass:\n{done.stdout[-3000:]}")
    base = seconds["local"] / len(tests["local"]) if tests["local"] else None
    print(f"{'adapter':<22}{'tests':>7}{'seconds':>10}{'s/test':>9}{'per test vs local':>19}")
    for adapter in [*dict.fromkeys(ADAPTERS.values()), UNNAMED]:
        if not tests[adapter]:
            continue
        per_test = seconds[adapter] / len(tests[adapter])
        ratio = f"{per_test / base:>18.2f}x" if base else ""
        print(f"{adapter:<22}{len(tests[adapter]):>7}{seconds[adapter]:>10.2f}{per_test:>9.3f}{ratio}")
    print(f"{'all':<22}{sum(map(len, tests.values())):>7}{sum(seconds.values()):>10.2f}")
    for adapter in [*dict.fromkeys(ADAPTERS.values()), UNNAMED]:
        slowest = sorted(tests[adapter], key=lambda test: -per_test_seconds[test])[:3]
        if slowest:
            named = ", ".join(f"{_short(test)} {per_test_seconds[test]:.2f} s" for test in slowest)
            print(f"slowest, {adapter}: {named}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=10_000, help="orders in each generated job")
    parser.add_argument(
        "--tables", nargs="*", default=[], help="the shop's tables to generate (default: all)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a tiny job of orders alone and one contract test per adapter"
    )
    parser.add_argument("--skip-contracts", action="store_true", help="leave out the contract suites")
    args = parser.parse_args()
    environment = dict(os.environ)  # the contract suites run as they would without the bench
    orders, tables = (300, ("orders",)) if args.quick else (args.orders, tuple(args.tables))

    with tempfile.TemporaryDirectory(prefix="bench-sync-") as folder:
        tmp = Path(folder)
        with running_azurite("blob", "queue") as azurite, fake_oss() as oss_endpoint:
            configure(tmp / "data", azurite.connection_string, oss_endpoint)
            sync_bench(orders, tables, tmp)
    if not args.skip_contracts:
        contract_timings(args.quick, environment)


if __name__ == "__main__":
    main()
