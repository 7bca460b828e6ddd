"""Mutation testing of the correctness core, and a score per module.

mutmut (configured in pyproject.toml, [tool.mutmut]) mutates the modules of MODULES and runs, for each
mutant, only the selected tests that executed the mutated function. This runs it from a fresh ``mutants/``
folder, on every module or on the ones named, and prints killed / total per module. A mutant counts as
killed when a test failed or timed out; the total holds every mutant mutmut made in the module, so one no
test reaches counts against the score.

    python tools/mutation.py                                  # every module of MODULES
    python tools/mutation.py orchestrator/cleaning/columns.py  # one module
    python tools/mutation.py --max-children 1 ...             # one test process at a time (a shared machine)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "mutants"
# The modules whose mistakes silently change the data or its judgement: the contract and the rules it gives,
# cleaning, corruptions and scoring. Each must be listed in [tool.mutmut] only_mutate as well.
MODULES = (
    "orchestrator/cleaning/columns.py",
    "orchestrator/cleaning/constraints.py",
    "orchestrator/domain/contract.py",
    "orchestrator/domain/rules.py",
    "orchestrator/generation/corrupt.py",
    "orchestrator/quality/scoring.py",
)
KILLED = {"killed", "timeout"}


def _status(exit_code: int | None) -> str:
    from mutmut.stats import status_by_exit_code

    return "not run" if exit_code is None else status_by_exit_code[exit_code]


def _mutant_glob(module: str) -> str:
    return module.removesuffix(".py").replace("/", ".") + ".*"


def scores(modules: tuple[str, ...]) -> list[tuple[str, int, int, list[str]]]:
    """Per module: killed, total and the names of the mutants that survived."""
    rows = []
    for module in modules:
        meta = MUTANTS / f"{module}.meta"
        codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
        statuses = {name: _status(code) for name, code in codes.items()}
        killed = sum(status in KILLED for status in statuses.values())
        survivors = sorted(name for name, status in statuses.items() if status not in KILLED)
        rows.append((module, killed, len(statuses), survivors))
    return rows


def main(argv: list[str]) -> int:
    children: list[str] = []
    if argv[:1] == ["--max-children"]:
        children, argv = argv[:2], argv[2:]
    modules = tuple(argv) or MODULES
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        print(
            f"not a module mutation testing covers: {', '.join(unknown)} (choose from {', '.join(MODULES)})"
        )
        return 2
    shutil.rmtree(MUTANTS, ignore_errors=True)  # results are only as fresh as the tests that made them
    names = [] if modules == MODULES else [_mutant_glob(m) for m in modules]
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "mutmut", "run", *children, *names], cwd=ROOT, check=False)
    elapsed = time.monotonic() - started
    if run.returncode != 0:
        print(f"mutmut failed (exit code {run.returncode})")
        return run.returncode
    print(f"\nMutation score ({elapsed:.0f} s)")
    for module, killed, total, survivors in scores(modules):
        share = f"{100 * killed / total:.1f}%" if total else "-"
        print(f"  {module}: {killed} / {total} killed ({share})")
        for name in survivors:
            print(f"      survived: {name}")
    print("Show a mutant's change with: mutmut show NAME")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
