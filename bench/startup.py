"""Start-up cost of ``billing --help`` and of every group's and top-level command's ``--help``,
against the floor of ``python -c "import typer"``.

Runs all commands interleaved (so machine noise hits them alike), prints each median and its
ratio to the floor. Target: every ratio <= 1.5. Usage: ``python bench/startup.py [--runs 30]``.

The children inherit the environment: run with ``PYTHONPATH=<checkout>`` to time a checkout other
than the installed one (the first line says which ``billing_cli`` is timed). Under
``PYTHONDONTWRITEBYTECODE`` no ``.pyc`` is written, so ``billing_cli`` is compiled from source on
every run while typer's installed ``.pyc`` are read: the output says so. Setting
``PYTHONPYCACHEPREFIX`` to a scratch directory times both with cached bytecode without writing
into the checkout.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import billing_cli
from billing_cli.cli.main import COMMAND_GROUPS, COMMANDS

FLOOR = 'python -c "import typer"'
TARGET = 1.5


def _time(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def _bytecode() -> str:
    if sys.dont_write_bytecode:
        return "not written (PYTHONDONTWRITEBYTECODE): billing_cli compiled on every run"
    if sys.pycache_prefix:
        return f"cached under {sys.pycache_prefix}"
    return "cached (__pycache__)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs
    billing = str(Path(sys.executable).with_name("billing"))
    commands = {
        FLOOR: [sys.executable, "-c", "import typer"],
        "billing --help": [billing, "--help"],
        **{f"billing {name} --help": [billing, name, "--help"] for name in COMMAND_GROUPS},
        **{f"billing {name} --help": [billing, name, "--help"] for name in COMMANDS},
    }
    for command in commands.values():  # warm the OS file cache and .pyc files
        _time(command)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            samples[name].append(_time(command))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    floor = medians[FLOOR]
    print(f"timing {Path(billing_cli.__file__).parent}; bytecode: {_bytecode()}")
    print(f"{FLOOR:<32} median {floor * 1000:7.1f} ms  ({runs} runs)")
    worst = 0.0
    for name, value in medians.items():
        if name == FLOOR:
            continue
        ratio = value / floor
        worst = max(worst, ratio)
        print(f"{name:<32} median {value * 1000:7.1f} ms  ratio {ratio:.2f}")
    verdict = "met" if worst <= TARGET else "NOT met"
    print(f"{'worst ratio':<32} {worst:.2f}  (target <= {TARGET}: {verdict})")


if __name__ == "__main__":
    main()
