"""The doctor's result types: one line of the checklist, and the report they make up.

A floor below the checks (:mod:`.local`, :mod:`.remote`, :mod:`.tenant`) and the order they
run in (:mod:`.report`), so that the checks and their runner need not import each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """One line of the checklist."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


@dataclass
class DoctorReport:
    """Every check run, in order; ``failed`` decides the exit code."""

    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, status: Status, detail: str, fix: str = "") -> Check:
        check = Check(name, status, detail, "" if status == "ok" else fix)
        self.checks.append(check)
        return check

    @property
    def failed(self) -> bool:
        return any(check.status == "fail" for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.failed,
            "checks": [check.to_dict() for check in self.checks],
        }
