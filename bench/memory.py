"""Peak resident memory of the calling process, for the benches that run each engine in a child process."""

from __future__ import annotations

from pathlib import Path


def peak_mb() -> float:
    """This process's own high-water mark of resident memory in MB (``VmHWM``).

    Not ``getrusage``'s ``ru_maxrss``: Linux carries that across fork and exec, so a child started by a
    parent holding 600 MB reports at least 600 MB whatever it uses itself. ``VmHWM`` belongs to the memory
    map that exec makes new.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("/proc/self/status has no VmHWM line: peak memory is read on Linux only")
