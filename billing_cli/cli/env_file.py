"""Set variables in a dotenv file without disturbing the rest of it.

``billing webhooks setup --write-env FILE`` puts the endpoint's signing secret there, the one
time Stripe shows it. A line that sets the variable (``NAME=...`` or ``export NAME=...``) is
replaced in place; otherwise the variable is appended. A new file is created readable by its
owner only (0600), since it holds a secret; an existing file keeps its permissions. The file is
replaced atomically, so a crash never leaves it half-written.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

from billing_cli.errors import ConfigError


def set_env_values(path: Path, values: Mapping[str, str]) -> None:
    """Write ``values`` into the dotenv file at ``path`` (created if missing)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror or error}") from None
    pending = dict(values)
    for index, line in enumerate(lines):
        for name in list(pending):
            if re.match(rf"^\s*(export\s+)?{re.escape(name)}\s*=", line):
                lines[index] = f"{name}={pending.pop(name)}"
    lines += [f"{name}={value}" for name, value in pending.items()]
    directory = path.resolve().parent
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=".env-", dir=directory)
        try:
            os.fchmod(descriptor, mode)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + "\n")
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as error:
        raise ConfigError(f"cannot write {path}: {error.strerror or error}") from None
