"""Run ``billing`` in a subprocess where one module cannot be imported, as in an install
without the ``sandbox`` extra (``pip install billing-cli``), whatever this environment holds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# A meta path finder ahead of every other one refuses the module and its submodules, as
# Python does for a package that is not installed; the entry point then runs as `billing`.
PROBE = """
import importlib.abc, sys

class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == {blocked!r} or name.startswith({blocked!r} + "."):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Missing())
sys.argv = ["billing", *{args!r}]
from billing_cli.cli.main import main
main()
"""


def run_billing_without(
    blocked: str, args: list[str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "BILLING_"))}
    env.update({"PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200", "NO_COLOR": "1"})
    return subprocess.run(
        [sys.executable, "-c", PROBE.format(blocked=blocked, args=args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
