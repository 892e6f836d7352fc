"""Start-up cost of ``billing --help`` against the floor of ``python -c "import typer"``.

Runs both commands interleaved (so machine noise hits both alike), prints each median and the
ratio. Target: ratio <= 1.5. Usage: ``python bench/startup.py [--runs 30]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _time(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs
    billing = str(Path(sys.executable).with_name("billing"))
    commands = {
        "billing --help": [billing, "--help"],
        'python -c "import typer"': [sys.executable, "-c", "import typer"],
    }
    for command in commands.values():  # warm the OS file cache and .pyc files
        _time(command)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            samples[name].append(_time(command))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    for name, value in medians.items():
        print(f"{name:<28} median {value * 1000:7.1f} ms  ({runs} runs)")
    ratio = medians["billing --help"] / medians['python -c "import typer"']
    print(f"{'ratio':<28} {ratio:.2f}  (target <= 1.5)")


if __name__ == "__main__":
    main()
