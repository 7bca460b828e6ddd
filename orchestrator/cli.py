"""`python -m orchestrator ...`: the engine from the command line (the UI calls the same functions)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from orchestrator.errors import InvalidInput, WorkbenchError
from orchestrator.generation.catalogue import KINDS
from orchestrator.generation.pools import LOCALES
from orchestrator.generation.schema import TABLE_NAMES

EXIT_USAGE = 2


def _pairs(option: str, text: str | None) -> dict[str, float]:
    """Parse ``name=rate,name=rate``."""
    result: dict[str, float] = {}
    for item in filter(None, (text or "").split(",")):
        name, sep, value = item.partition("=")
        try:
            result[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise InvalidInput(option, f"{item!r} is not NAME=RATE (for example missing=0.05)")
    return result


def _names(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from orchestrator.generation.generator import generate
    from orchestrator.generation.spec import GenerationSpec

    spec = GenerationSpec(
        rows=args.rows,
        seed=args.seed,
        tables=_names(args.tables),
        error_rate=args.error_rate,
        kind_rates=_pairs("kind_rate", args.kind_rate),
        table_rates=_pairs("table_rate", args.table_rate),
        locales=_names(args.locales),
        chunk_rows=args.chunk_rows,
    )
    if args.json:
        result = generate(spec, args.user)
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    with tqdm(total=100, unit="%", desc="generating", file=sys.stderr) as bar:

        def progress(fraction: float, message: str) -> None:
            bar.n = round(fraction * 100, 1)
            bar.set_postfix_str(message)

        result = generate(spec, args.user, progress=progress)
        bar.n = 100
    print(f"job {result.job_id}: {result.errors_injected:,} errors injected in {result.seconds:.1f} s")
    for name, table in result.tables.items():
        print(f"  {name:<12} {table.rows:>12,} lines  {table.raw_path}")
    print(f"  answer key   {result.answer_key_path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m orchestrator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    gen = commands.add_parser("generate", help="generate a dirty e-commerce data set with its answer key")
    gen.add_argument("--user", required=True, help="owner of the job (lower-case letters, digits, _ or -)")
    gen.add_argument("--tables", default=",".join(TABLE_NAMES), help="comma-separated tables (default: all)")
    gen.add_argument("--rows", type=int, required=True, help="number of orders; other tables scale with it")
    gen.add_argument("--error-rate", type=float, default=0.3, help="overall error knob, 0..1 (default 0.3)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument(
        "--kind-rate", help=f"absolute rate per error kind, e.g. missing=0.05 ({', '.join(KINDS)})"
    )
    gen.add_argument("--table-rate", help="error rate per table, e.g. orders=0.1")
    gen.add_argument("--locales", default=",".join(LOCALES), help="comma-separated Faker locales")
    gen.add_argument("--chunk-rows", type=int, default=100_000, help="orders per chunk (memory bound)")
    gen.add_argument("--json", action="store_true", help="print one JSON object instead of a progress bar")
    gen.set_defaults(run=_generate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except InvalidInput as exc:
        print(
            f"error: --{exc.field.split('.')[0].replace('_', '-')}: {str(exc).split(': ', 1)[1]}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
