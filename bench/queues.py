"""Throughput of the local queue (send, receive, delete) beside raw SQLite inserts in the same run.

The issue asks for at least 1,000 messages a second per operation; the ratio to single-row SQLite
inserts (same file settings) shows what the queue's bookkeeping costs on this machine.
Run from the repository root: `python -m bench.queues [--messages N]`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from orchestrator.queues import LocalQueue, Message
from orchestrator.queues.local import connect_sqlite

TARGET_PER_SECOND = 1_000


def _rate(count: int, run: Callable[[], object]) -> float:
    """Operations per second of ``run``, which performs ``count`` of them."""
    start = time.perf_counter()
    run()
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=5_000, help="messages per measurement")
    n = parser.parse_args().messages
    body = {"job_id": "c-20250101t000000-abcdef", "user": "alice"}

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        conn = connect_sqlite(root / "baseline.sqlite")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        baseline = _rate(
            n, lambda: [conn.execute("INSERT INTO t (body) VALUES (?)", ("x" * 50,)) for _ in range(n)]
        )
        conn.close()

        queue = LocalQueue("bench", root / "queues.sqlite")
        received: list[Message] = []
        results = {
            "send": _rate(n, lambda: [queue.send(body) for _ in range(n)]),
            "receive (1 per call)": _rate(n, lambda: [received.extend(queue.receive()) for _ in range(n)]),
            "delete": _rate(n, lambda: [queue.delete(m.id, m.pop_receipt) for m in received]),
        }
        assert len(received) == n and queue.approximate_count() == 0
        for _ in range(n):
            queue.send(body)
        received.clear()
        batches = -(-n // 32)
        results["receive (32 per call)"] = _rate(
            n, lambda: [received.extend(queue.receive(32)) for _ in range(batches)]
        )
        assert len(received) == n
        queue.close()

    print(f"{n:,} messages; baseline: raw SQLite single-row inserts {baseline:,.0f}/s")
    print(f"{'operation':<24}{'messages/s':>12}{'vs baseline':>13}  target >= {TARGET_PER_SECOND:,}/s")
    for name, rate in results.items():
        verdict = "ok" if rate >= TARGET_PER_SECOND else "BELOW TARGET"
        print(f"{name:<24}{rate:>12,.0f}{rate / baseline:>12.2f}x  {verdict}")


if __name__ == "__main__":
    main()
