"""`python -m orchestrator ...`: the engine from the command line (the UI calls the same functions)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from orchestrator import stopping
from orchestrator.cleaning import engines
from orchestrator.errors import InvalidInput, WorkbenchError
from orchestrator.generation.catalogue import KINDS
from orchestrator.generation.pools import LOCALES

EXIT_USAGE = 2
# The option a user types for each field the engine's checks name, per command. A field that is none of the
# command's options (a setting such as ORCHESTRATOR_SMALL_BATCH_MAX_ROWS, a job's state) keeps its own name;
# ``job_id`` is the positional argument, named as in the usage line.
OPTIONS: dict[str, dict[str, str]] = {
    "generate": {
        "user": "--user",
        "tables": "--tables",
        "rows": "--rows",
        "error_rate": "--error-rate",
        "seed": "--seed",
        "kind_rates": "--kind-rate",
        "table_rates": "--table-rate",
        "locales": "--locales",
        "chunk_rows": "--chunk-rows",
        "contract": "--contract",
        "cloud": "--cloud",
    },
    "run": {"job_id": "job_id", "user": "--user", "cloud": "--cloud"},
    "delete": {"job_id": "job_id"},
    "sync": {"job_id": "job_id", "to": "--to", "cloud": "--to"},
    "worker": {"visibility_timeout": "--visibility-timeout"},
    "invoke-small": {"job_id": "--job", "cloud": "--cloud"},
    "contracts": {"output": "-o/--output", "contract": "NAME"},
    "quality": {
        "job_id": "job_id",
        "user": "--user",
        "compare_job": "--compare-job",
        "output": "-o/--output",
        "sample_rows": "--samples",
    },
}


def _pairs(field: str, text: str | None) -> dict[str, float]:
    """Parse ``name=rate,name=rate`` for the spec's ``field``."""
    result: dict[str, float] = {}
    for item in filter(None, (text or "").split(",")):
        name, sep, value = item.partition("=")
        try:
            result[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise InvalidInput(field, f"{item!r} is not NAME=RATE (for example missing=0.05)")
    return result


def _names(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from orchestrator.config import get_settings
    from orchestrator.generation.spec import GenerationSpec
    from orchestrator.service import generate_job
    from orchestrator.storage.paths import check_user

    contract = str(Path(args.contract).resolve()) if Path(args.contract).is_file() else args.contract
    spec = GenerationSpec(
        rows=args.rows,
        seed=args.seed,
        contract=contract,
        tables=_names(args.tables or ""),
        error_rate=args.error_rate,
        kind_rates=_pairs("kind_rates", args.kind_rate),
        table_rates=_pairs("table_rates", args.table_rate),
        locales=_names(args.locales),
        chunk_rows=args.chunk_rows,
    )
    check_user(args.user)
    get_settings().on_cloud(args.cloud)  # a cloud not configured is refused before anything starts
    if args.json:
        result = generate_job(spec, args.user, cloud=args.cloud, engine=args.engine)
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    with tqdm(total=100, unit="%", desc="generating", file=sys.stderr) as bar:

        def progress(fraction: float, message: str) -> None:
            bar.n = round(fraction * 100, 1)
            bar.set_postfix_str(message)

        result = generate_job(spec, args.user, progress=progress, cloud=args.cloud, engine=args.engine)
        bar.n = 100
    print(f"job {result.job_id}: {result.errors_injected:,} errors injected in {result.seconds:.1f} s")
    for name, table in result.tables.items():
        print(f"  {name:<12} {table.rows:>12,} lines  {table.raw_path}")
    print(f"  answer key   {result.answer_key_path}")
    for note in result.notes:
        print(f"  note: {note}")
    return 0


def _quality(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from orchestrator import quality
    from orchestrator.storage.paths import check_job_id

    output = _report_file(args.output, args.force) if args.output else None
    if output is None and args.format == "xlsx":
        raise InvalidInput("output", "an xlsx report is binary; name a file with -o")
    if args.compare_job:
        try:
            check_job_id(args.compare_job)
        except InvalidInput as exc:
            raise InvalidInput("compare_job", _reason(exc)) from None
    user = args.user or _job_owner(args.job_id)
    with tqdm(total=100, unit="%", desc="profiling", file=sys.stderr, disable=not sys.stderr.isatty()) as bar:

        def progress(fraction: float, message: str) -> None:
            bar.n = round(fraction * 100, 1)
            bar.set_postfix_str(message)

        run = quality.profile_job(user, args.job_id, args.layer, sample_rows=args.samples, progress=progress)
    comparison = None
    if args.compare_layer or args.compare_job:
        other = quality.profile_job(
            user, args.compare_job or args.job_id, args.compare_layer or args.layer, sample_rows=args.samples
        )
        comparison = quality.compare(other, run)
    if output is None:
        quality.write_report(run, args.format, sys.stdout, comparison, args.samples)
        return 0
    output = _report_file(args.output, args.force)  # again: a file may have appeared while profiling
    try:
        quality.write_report(run, args.format, output, comparison, args.samples)
    except OSError as exc:
        raise InvalidInput("output", f"cannot write {output}: {exc.strerror}; name another file") from None
    print(f"{args.format} report of {run.job_id} ({run.layer}) written to {args.output}", file=sys.stderr)
    return 0


def _report_file(output: str, force: bool) -> Path:
    """The file ``-o`` names, symlinks and ``..`` resolved; refused before any work when writing it would
    replace the workbench's own data (anything under the data folder), replace a file without ``--force``,
    or fail (not a file, a missing folder, a folder this process cannot write in)."""
    from orchestrator.config import get_settings

    path = Path(output).resolve()
    data_dir = get_settings().data_dir
    if path == data_dir or data_dir in path.parents:
        raise InvalidInput(
            "output",
            f"{output} is inside the workbench's data folder {data_dir}, whose files only the workbench "
            "writes; name a file outside it",
        )
    if path.is_dir():
        raise InvalidInput("output", f"{output} is a folder; name a file in it instead")
    if path.exists() and not path.is_file():
        raise InvalidInput("output", f"{output} is not a regular file; name a file")
    if path.exists() and not force:
        raise InvalidInput(
            "output", f"{output} exists already; add --force to replace it, or name another file"
        )
    if not path.parent.is_dir():
        raise InvalidInput(
            "output", f"the folder {path.parent} does not exist; create it, or name a file in another folder"
        )
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise InvalidInput(
            "output",
            f"this user may not create files in the folder {path.parent}; name a file in a folder you can "
            "write in",
        )
    return path


def _contracts(args: argparse.Namespace) -> int:
    from orchestrator.domain.contract import built_in, built_in_names, read_contract

    if args.action == "list":
        for name in built_in_names():
            contract = built_in(name).contract
            columns = sum(len(table.columns) for table in contract.tables.values())
            size = f"{len(contract.tables)} tables, {columns} columns"
            print(f"{name:<12} {contract.name} {contract.version}: {size}")
        return 0
    if args.action == "validate":
        if not args.target:
            raise InvalidInput("contract", "name the contract file to validate")
        source = read_contract(Path(args.target))
        contract = source.contract
        print(
            f"{args.target}: a valid ODCS contract, {contract.id} {contract.version}, {len(contract.tables)} "
            f"tables, {len(contract.constraints)} constraints (sha256 {source.sha256})"
        )
        for warning in source.warnings:
            print(f"warning: {warning}")
        return 0
    if not args.target:
        raise InvalidInput("contract", f"name a contract to {args.action}; `contracts list` shows them")
    source = built_in(args.target)
    if args.action == "export":
        if not args.output:
            raise InvalidInput("output", "name the file to write the contract to")
        path = _report_file(args.output, args.force)
        path.write_text(source.text, encoding="utf-8")
        print(f"contract {args.target} written to {args.output}", file=sys.stderr)
        return 0
    contract = source.contract
    print(f"{contract.name} ({contract.id} {contract.version}): {contract.description}")
    for table in contract.tables.values():
        parent = f", per {table.parent} row" if table.parent else ""
        key = ", ".join(table.primary_key)
        print(f"\n{table.name}: key {key}, business key {', '.join(table.business_key)}{parent}")
        for column in table.columns:
            refers = f" -> {column.references}" if column.references else ""
            required = "required" if column.is_required else "optional" if column.nullable else "expected"
            print(f"  {column.name:<20} {column.type:<10} {required}{refers}")
    for constraint in contract.constraints:
        kind = f"{constraint.kind}, {constraint.severity}"
        print(f"\nconstraint {constraint.id} ({kind}): {constraint.description}")
    return 0


def _job_owner(job_id: str) -> str:
    """The user a job belongs to, from the job store (generation and cleaning jobs are both recorded)."""
    from orchestrator.jobs.store import JobStore

    store = JobStore.default()
    try:
        return store.get(job_id).user
    finally:
        store.close()


def _job_json(job, outputs: dict | None = None) -> dict:
    data = {
        "job_id": job.job_id,
        "user": job.user,
        "kind": job.kind,
        "parent_id": job.parent_id,
        "state": job.state,
        "route": job.route,
        "engine": job.engine,
        "rows_in": job.rows_in,
        "rows_out": job.rows_out,
        "rows_quarantined": job.rows_quarantined,
        "attempts": job.attempts,
        "timings": job.timings,
        "progress": job.progress,
        "progress_text": job.progress_text,
        "remote_run": job.remote_run,
        "error": job.error,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }
    if outputs is not None:
        data.update(outputs)
    return data


def _run(args: argparse.Namespace) -> int:
    from orchestrator import worker
    from orchestrator.config import get_settings
    from orchestrator.service import clean_now, execute_job, job_outputs, launch_clean, waits_for_schedule

    user = args.user or _job_owner(args.job_id)
    if args.wait:
        launched = launch_clean(user, args.job_id, engine=args.engine, cloud=args.cloud)
        job = execute_job(launched.job.job_id) if launched.to_start else launched.job
    elif args.scheduled:
        launched = launch_clean(user, args.job_id, engine=args.engine, scheduled=True, cloud=args.cloud)
        job = launched.job
    else:  # clean now, in a process of its own, and return at once
        launched = clean_now(user, args.job_id, engine=args.engine, cloud=args.cloud)
        job = launched.job
    if args.json:
        print(json.dumps(_job_json(job, job_outputs(job)), indent=2))
    else:
        print(f"{job.job_id}: {job.state} (route {job.route}, engine {launched.engine})")
        if waits_for_schedule(job):
            next_run = worker.next_run(job.route, get_settings())
            print(f"  the scheduler cleans it at {next_run:%Y-%m-%d %H:%M} UTC")
        if job.error:
            print(f"  error: {job.error}")
    return 0 if job.state != "failed" else 1


def _delete(args: argparse.Namespace) -> int:
    from orchestrator.service import delete_job

    deletion = delete_job(args.job_id, user=args.user, is_admin=args.user is None)
    if args.json:
        print(json.dumps({"deleted": [job.job_id for job in deletion.jobs], "pending": deletion.pending}))
    else:
        for job in deletion.jobs:
            print(f"{job.job_id}: deleted ({job.kind} job of {job.user})")
    if deletion.pending:
        print(
            f"warning: some of their data is still to be removed, which the scheduler retries at its next "
            f"wake (worker --once does it now): {deletion.pending}",
            file=sys.stderr,
        )
    return 0


def _sync(args: argparse.Namespace) -> int:
    from orchestrator.sync import sync_job

    def told(done: int, total: int, what: str) -> None:
        if not args.json:
            print(f"[{done}/{total}] {what}", flush=True)

    synced = sync_job(args.job_id, args.to, user=args.user, is_admin=args.user is None, progress=told)
    if args.json:
        fields = ("source", "target", "copied", "kept", "bytes_copied", "seconds")
        print(
            json.dumps(
                {"jobs": [job.job_id for job in synced.jobs]} | {f: getattr(synced, f) for f in fields}
            )
        )
    else:
        print(synced.line)
    return 0


def _jobs(args: argparse.Namespace) -> int:
    from orchestrator.jobs.store import JobStore

    store = JobStore.default()
    try:
        listed = store.list_jobs(args.user or "", is_admin=args.user is None, limit=args.limit)
    finally:
        store.close()
    if args.json:
        print(json.dumps([_job_json(job) for job in listed], indent=2))
        return 0
    for job in listed:
        rows = (
            f"{job.rows_in or 0:,} in, {job.rows_out or 0:,} out, {job.rows_quarantined or 0:,} quarantined"
        )
        print(f"{job.job_id:<28} {job.user:<12} {job.kind:<9} {job.state:<10} {job.route or '-':<6} {rows}")
    return 0


def _worker(args: argparse.Namespace) -> int:
    from orchestrator import worker
    from orchestrator.config import get_settings
    from orchestrator.service import PROFILE, execute_job, profile_cleaning

    if args.profile:
        job = profile_cleaning(args.profile)
        print(f"{job.job_id}: profiled in {job.params[PROFILE]['seconds']:.1f} s")
        return 0
    if args.once:
        worker.recover()  # the cleanings whose holder is gone first: followed, finished or started again
        for line in worker.sweep():
            print(line)
        settings = get_settings()
        if left := worker.routes_left(settings):
            print(left)  # the small queues a function's own timer trigger drains are left to it
        for route in worker.routes_served(settings):
            for job in worker.drain_clouds(route, settings, visibility_timeout=args.visibility_timeout):
                print(worker.job_line(job))
            worker.record_served(route)
        return 0
    # make run and service managers stop a worker with SIGTERM, a person with Ctrl-C: either way (see
    # orchestrator.stopping) it leaves quietly, a scheduler removing its heartbeat record at once, so the
    # pages stop promising scheduled runs, a generation recording itself as cancelled and a cleaning going
    # back to its queue
    with contextlib.suppress(KeyboardInterrupt):
        if args.job:
            print(worker.job_line(execute_job(args.job)))
        else:
            worker.run_forever()
    return 0


def _invoke_small(args: argparse.Namespace) -> int:
    from orchestrator.service import ask_small_runner

    print(ask_small_runner(args.job, cloud=args.cloud))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m orchestrator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    gen = commands.add_parser("generate", help="generate a dirty data set of a contract, with its answer key")
    gen.add_argument("--user", required=True, help="owner of the job (lower-case letters, digits, _ or -)")
    gen.add_argument("--cloud", help="the configured cloud the job lives on (default: ORCHESTRATOR_PROFILE)")
    gen.add_argument(
        "--contract",
        default="shop",
        help="the contract to generate from: a built-in's NAME, USER/NAME or a YAML file (default: shop)",
    )
    gen.add_argument("--tables", help="comma-separated tables (default: all of the contract's)")
    gen.add_argument(
        "--rows",
        type=int,
        required=True,
        help="rows of the contract's driving table (the shop's orders); other tables scale with it",
    )
    gen.add_argument("--error-rate", type=float, default=0.3, help="overall error knob, 0..1 (default 0.3)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument(
        "--kind-rate", help=f"absolute rate per error kind, e.g. missing=0.05 ({', '.join(KINDS)})"
    )
    gen.add_argument("--table-rate", help="error rate per table, e.g. orders=0.1")
    gen.add_argument("--locales", default=",".join(LOCALES), help="comma-separated Faker locales")
    gen.add_argument("--chunk-rows", type=int, default=100_000, help="orders per chunk (memory bound)")
    gen.add_argument(
        "--engine",
        choices=("local", "spark", "auto"),
        default="auto",
        help="where the chunks are built: this process, Spark tasks (the same files), or auto: Spark from "
        "ORCHESTRATOR_SPARK_GENERATION_MIN_ROWS rows on (default 5,000,000)",
    )
    gen.add_argument("--json", action="store_true", help="print one JSON object instead of a progress bar")
    gen.set_defaults(run=_generate)

    run = commands.add_parser(
        "run",
        help="clean a generated job, now or at its next scheduled run (route by size, clean, write, load)",
    )
    run.add_argument("job_id", help="the generation job to clean")
    run.add_argument("--user", help="owner of the job (default: the job's owner in the job store)")
    run.add_argument("--engine", choices=engines.CHOICES, default=engines.AUTO)
    run.add_argument("--cloud", help="clean it on this cloud, one holding its data (default: the job's own)")
    when = run.add_mutually_exclusive_group()
    when.add_argument("--wait", action="store_true", help="clean in this process and wait for the end")
    when.add_argument(
        "--scheduled", action="store_true", help="queue it for its route's next scheduled run (see worker)"
    )
    run.add_argument("--json", action="store_true", help="print the job's final state as one JSON object")
    run.set_defaults(run=_run)

    jobs = commands.add_parser("jobs", help="list jobs, newest first")
    jobs.add_argument("--user", help="only this user's jobs (default: everyone's)")
    jobs.add_argument("--limit", type=int, default=50)
    jobs.add_argument("--json", action="store_true")
    jobs.set_defaults(run=_jobs)

    delete = commands.add_parser(
        "delete",
        help="delete a finished job from every system (a generation with every cleaning of its data)",
    )
    delete.add_argument("job_id", help="the job to delete")
    delete.add_argument("--user", help="only if it is this user's job (default: whoever owns it)")
    delete.add_argument("--json", action="store_true", help="print the deleted job ids as one JSON object")
    delete.set_defaults(run=_delete)

    sync = commands.add_parser(
        "sync",
        help="copy a job (a generation with its cleanings) to another configured cloud, verified; run it "
        "again after a stop to go on where it stopped",
    )
    sync.add_argument("job_id", help="the generation (or one cleaning of it) to copy")
    sync.add_argument("--to", required=True, help="the configured cloud to copy it to (ORCHESTRATOR_CLOUDS)")
    sync.add_argument("--user", help="only if it is this user's job (default: whoever owns it)")
    sync.add_argument("--json", action="store_true", help="print what was copied as one JSON object")
    sync.set_defaults(run=_sync)

    worker = commands.add_parser("worker", help="drain the queues on their schedules (or --once: now)")
    worker.add_argument(
        "--once",
        action="store_true",
        help="drain both queues now (a small queue a function drains is left to it), then exit",
    )
    worker.add_argument("--job", help="run this one queued job (a cleaning or a generation) now, then exit")
    worker.add_argument(
        "--profile",
        metavar="JOB_ID",
        help="profile a succeeded cleaning's silver and, unless a run of it is stored, its raw; then exit",
    )
    worker.add_argument(
        "--visibility-timeout", type=int, help="seconds a received job stays hidden from other workers"
    )
    worker.set_defaults(run=_worker)

    invoke = commands.add_parser(
        "invoke-small",
        help="ask the function that cleans a cloud's small batches (Azure Functions, Function Compute) to "
        "drain its small queue now, and print what it reported",
    )
    invoke.add_argument("--job", help="for this queued small job: what happened is kept on the job")
    invoke.add_argument("--cloud", help="the configured cloud whose function to ask (default: the job's own)")
    invoke.set_defaults(run=_invoke_small)

    contracts = commands.add_parser("contracts", help="the data contracts (ODCS v3.1) the workbench knows")
    contracts.add_argument("action", choices=("list", "show", "validate", "export"))
    contracts.add_argument(
        "target", nargs="?", help="a built-in contract's NAME (show, export) or a PATH (validate)"
    )
    contracts.add_argument("-o", "--output", help="file to export the contract to")
    contracts.add_argument("--force", action="store_true", help="replace the file -o names if it exists")
    contracts.set_defaults(run=_contracts)

    qual = commands.add_parser("quality", help="profile a layer of a job, score it against the truth, report")
    qual.add_argument("job_id", help="generation job (raw) or cleaning job (silver, gold)")
    qual.add_argument("--user", help="owner of the job (found from the lake when omitted)")
    qual.add_argument("--layer", choices=("raw", "silver", "gold"), default="raw")
    qual.add_argument("--format", choices=("json", "html", "csv", "xlsx"), default="json")
    qual.add_argument("-o", "--output", help="file to write (default: standard output; required for xlsx)")
    qual.add_argument("--force", action="store_true", help="replace the -o file if it exists")
    qual.add_argument("--samples", type=int, default=5, help="failing rows shown per rule (0-100, default 5)")
    qual.add_argument("--compare-layer", choices=("raw", "silver", "gold"), help="add a before/after section")
    qual.add_argument("--compare-job", help="compare with this job (same user) instead of another layer")
    qual.set_defaults(run=_quality)
    return parser


def _reason(exc: InvalidInput) -> str:
    """What is wrong with the input, without the field the message begins with."""
    return str(exc).removeprefix(f"{exc.field}: ")


def _named(command: str, exc: InvalidInput) -> str:
    """An input error naming the option as the user typed it (``--kind-rate: missing must be ...``)."""
    field, _, item = exc.field.partition(".")
    option = OPTIONS[command].get(field)
    if option is None:
        return str(exc)
    return f"{option}: {item + ' ' if item else ''}{_reason(exc)}"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with stopping.stop_signals_raise():
        try:
            from orchestrator.config import get_settings, private_data_root

            private_data_root(get_settings())  # what this command writes is for the data root's owner alone
            return args.run(args)
        except (Exception, KeyboardInterrupt) as exc:
            if (signum := stopping.received()) is not None:  # however the stop surfaced
                print(f"error: stopped by {signal.Signals(signum).name} before it finished", file=sys.stderr)
                return 128 + signum
            if isinstance(exc, InvalidInput):
                print(f"error: {_named(args.command, exc)}", file=sys.stderr)
                return EXIT_USAGE
            if isinstance(exc, WorkbenchError):
                print(f"error: {exc}", file=sys.stderr)
                return 1
            raise
