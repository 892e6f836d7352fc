"""Plans as code: the catalogue written out as TOML, and a TOML file applied to the plans table.

Why: ops review a catalogue change as a diff of one file instead of a string of ``plans add``
and ``plans update`` commands. ``plans export`` writes the file, ops edit it, ``plans apply``
makes the table follow it, and ``plans sync`` (or ``apply --sync``) brings Stripe in line.

The file, one ``[[plan]]`` table per plan (chosen so a person can write it and an export reads
back unchanged)::

    [[plan]]
    slug = "team"
    name = "Team"
    amount = "19.00"      # major units, as a string: a TOML float cannot hold 0.10 exactly
    currency = "usd"
    interval = "month"
    interval_count = 1    # optional, default 1
    trial_days = 14       # optional, default 0
    per_seat = false      # optional, default false
    active = true         # optional, default true

``amount`` may also be written as a TOML integer or decimal (``amount = 19.5``); an export always
writes the string. Stripe ids are not in the file: they are Stripe's state, owned by sync.

Applying is a database-only change: every plan of the file is added or updated, and with
``prune`` every active plan the file does not name is deactivated, all in one transaction with an
audit entry per plan changed (a dry run rolls it back). A plan the file does not name is never
deleted. Applying the exported file changes nothing, and so does a second apply.

A bad file is refused whole, before anything is written, with one line naming the file and the
line: tomllib's syntax errors carry their own line; for the rest (unknown keys, duplicate slugs,
bad amounts or currencies, control characters) the line is found by scanning the text for the
plan's ``[[plan]]`` header or its ``key =`` line (:class:`_Lines`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session

from billing_cli.errors import UsageError
from billing_cli.ids import check_slug
from billing_cli.models import Invocation, SubscriptionPlan, utcnow
from billing_cli.money import check_currency, major_units, to_minor_units
from billing_cli.repository import Database
from billing_cli.repository import plans as plans_repo
from billing_cli.services import audit
from billing_cli.services.catalog.plans import check_name, check_schedule
from billing_cli.services.views import plan_view
from billing_cli.text import has_control, shown

REQUIRED = ("slug", "name", "amount", "currency", "interval")
DEFAULTS: dict[str, Any] = {"interval_count": 1, "trial_days": 0, "per_seat": False, "active": True}
FIELDS = (*REQUIRED, *DEFAULTS)
# What a plan file may weigh: a catalogue is a few dozen plans, never megabytes.
MAX_FILE_BYTES = 1_000_000
# The fields a plan's before -> after shows (the view's ``price`` carries amount and currency).
SHOWN = ("name", "price", "interval", "interval_count", "trial_days", "per_seat", "active")
HEADER = (
    "# Plans for `billing plans apply FILE`: one [[plan]] table each. amount is in major units\n"
    '# (a string, e.g. "19.00"); interval is month or year. Stripe follows on `plans sync`.\n\n'
)


@dataclass(frozen=True)
class FilePlan:
    """One ``[[plan]]`` of a file, checked: what the plan's row must say."""

    slug: str
    name: str
    amount: int
    currency: str
    interval: str
    interval_count: int
    trial_days: int
    per_seat: bool
    active: bool

    def new_row(self) -> SubscriptionPlan:
        return SubscriptionPlan(
            slug=self.slug,
            name=self.name,
            amount=self.amount,
            currency=self.currency,
            interval=self.interval,
            created_at=utcnow(),
        )

    def write_to(self, plan: SubscriptionPlan) -> None:
        for field in ("name", "amount", "currency", "interval", "interval_count"):
            setattr(plan, field, getattr(self, field))
        plan.trial_days, plan.per_seat, plan.active = self.trial_days, self.per_seat, self.active


@dataclass(frozen=True)
class PlanChange:
    """What applying did (or would do) to one plan: ``add``, ``update`` or ``deactivate``."""

    slug: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any]

    def moved(self) -> list[tuple[str, Any, Any]]:
        """The shown fields that differ, as (field, before, after)."""
        before = self.before or {}
        return [
            (key, before.get(key), self.after[key])
            for key in SHOWN
            if before.get(key) != self.after[key]
        ]


@dataclass(frozen=True)
class ApplyReport:
    """A plan file applied: the plans changed, those left alone, and those the file omits."""

    source: str
    dry_run: bool
    changes: tuple[PlanChange, ...]
    unchanged: tuple[str, ...]
    unlisted: tuple[str, ...]  # active plans the file does not name, kept (no --prune)

    def count(self, action: str) -> int:
        return sum(1 for change in self.changes if change.action == action)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.source,
            "dry_run": self.dry_run,
            "changed": bool(self.changes),
            "changes": [
                {"slug": c.slug, "action": c.action, "before": c.before, "after": c.after}
                for c in self.changes
            ],
            "unchanged": list(self.unchanged),
            "not_in_file": list(self.unlisted),
        }


# -- export ------------------------------------------------------------------------------------


def export_plans(db: Database) -> tuple[str, int]:
    """The whole catalogue as a plan file, plans in slug order, and how many plans it holds."""
    import tomli_w

    with db.read() as session:
        plans = [_file_entry(plan) for plan in plans_repo.list_all(session=session)]
    return HEADER + tomli_w.dumps({"plan": plans}), len(plans)


def _file_entry(plan: SubscriptionPlan) -> dict[str, Any]:
    return {
        "slug": plan.slug,
        "name": plan.name,
        "amount": major_units(plan.amount, plan.currency),
        "currency": plan.currency,
        "interval": plan.interval,
        "interval_count": plan.interval_count,
        "trial_days": plan.trial_days,
        "per_seat": plan.per_seat,
        "active": plan.active,
    }


# -- reading a file ----------------------------------------------------------------------------


def read_plan_file(path: Path) -> list[FilePlan]:
    """The plans of ``path``, every one checked; a bad file is one UsageError naming its line."""
    source = str(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise UsageError(f"{source}: larger than {MAX_FILE_BYTES:,} bytes; not a plan file")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{source}: not UTF-8 text") from None
    return parse_plans(text, source=source)


_TOML_WHERE = re.compile(
    r"^(?P<what>.*) \((?:at line (?P<line>\d+), column \d+|at end of document)\)$"
)


def parse_plans(text: str, *, source: str) -> list[FilePlan]:
    """Parse and check a plan file's text; ``source`` names it in the refusal."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_WHERE.match(str(exc))
        if found is None:
            raise UsageError(f"{source}: not valid TOML: {exc}") from None
        line = found["line"] or len(text.rstrip("\n").split("\n"))  # "end of document"
        raise UsageError(f"{source}, line {line}: not valid TOML: {found['what']}") from None
    lines = _Lines(text)
    for key in data:
        if key != "plan":
            where = f"{source}, line {lines.top_key(key)}"
            raise UsageError(f"{where}: unknown key {shown(key)}; the file holds [[plan]] tables")
    tables = data.get("plan", [])
    if not isinstance(tables, list):
        raise UsageError(f"{source}, line {lines.top_key('plan')}: plan must be [[plan]] tables")
    if not tables:  # the wrong file, or an emptied one: with --prune it would retire every plan
        raise UsageError(f"{source}: no [[plan]] tables; a plan file lists at least one plan")
    plans: list[FilePlan] = []
    first_at: dict[str, int] = {}
    for index, table in enumerate(tables):
        plan = _check_plan(table, _Where(source, lines, index))
        line = lines.key(index, "slug")
        if plan.slug in first_at:
            raise UsageError(
                f"{source}, line {line}: duplicate slug {plan.slug!r} "
                f"(first at line {first_at[plan.slug]})"
            )
        first_at[plan.slug] = line
        plans.append(plan)
    return plans


class _Lines:
    """Where things sit in the text, found by a light scan (tomllib keeps no positions).

    The n-th ``[[plan]]`` header opens the n-th plan; a key's line is the first ``key =`` in
    that plan's span. A file written some other way (inline tables) falls back to the header,
    or to line 1."""

    _HEADER = re.compile(r"^\s*\[\[\s*plan\s*\]\]")
    _TABLE = re.compile(r"^\s*\[")

    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")  # TOML counts lines by \n only; splitlines() splits more
        self.headers = [n for n, line in enumerate(self.lines, 1) if self._HEADER.match(line)]

    def table(self, index: int) -> int:
        return self.headers[index] if index < len(self.headers) else 1

    def key(self, index: int, key: str) -> int:
        start = self.table(index)
        pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        for number in range(start + 1, len(self.lines) + 1):
            line = self.lines[number - 1]
            if self._TABLE.match(line):
                break
            if pattern.match(line):
                return number
        return start

    def top_key(self, key: str) -> int:
        pattern = re.compile(rf"^\s*\[*\s*[\"']?{re.escape(key)}[\"']?\s*[\]=.]")
        for number, line in enumerate(self.lines, 1):
            if pattern.match(line):
                return number
        return 1


@dataclass(frozen=True)
class _Where:
    """One plan's place in the file: turns a refusal into ``FILE, line N: ...``."""

    source: str
    lines: _Lines
    index: int

    def fail(self, what: str, key: str | None = None) -> UsageError:
        line = self.lines.key(self.index, key) if key else self.lines.table(self.index)
        return UsageError(f"{self.source}, line {line}: {what}")

    def check(self, key: str, rule: Callable[[], Any]) -> Any:
        """``rule()``, its UsageError placed at ``key``'s line."""
        try:
            return rule()
        except UsageError as exc:
            raise self.fail(str(exc), key) from None


def _check_plan(table: Any, where: _Where) -> FilePlan:
    if not isinstance(table, dict):
        raise where.fail("each plan must be a [[plan]] table")
    unknown = [key for key in table if key not in FIELDS]
    if unknown:
        key, known = unknown[0], ", ".join(FIELDS)
        raise where.fail(f"unknown key {shown(key)} in [[plan]] (known: {known})", key)
    missing = [key for key in REQUIRED if key not in table]
    if missing:
        raise where.fail(f"[[plan]] lacks {', '.join(missing)}")
    values = {**DEFAULTS, **table}
    for key, value in _typed(values, where):
        if isinstance(value, str) and has_control(value):
            raise where.fail(f"{key} must not contain control characters or line breaks", key)
    slug = where.check("slug", lambda: check_slug(values["slug"]))
    currency = where.check("currency", lambda: check_currency(values["currency"]))
    amount = where.check("amount", lambda: to_minor_units(_amount_text(values["amount"]), currency))
    name = where.check("name", lambda: check_name(values["name"], option=str))
    try:
        check_schedule(
            values["interval"], values["interval_count"], values["trial_days"], option=str
        )
    except UsageError as exc:  # the message starts with the key it refuses
        raise where.fail(str(exc), str(exc).split()[0]) from None
    return FilePlan(
        slug=slug,
        name=name,
        amount=amount,
        currency=currency,
        interval=values["interval"],
        interval_count=values["interval_count"],
        trial_days=values["trial_days"],
        per_seat=values["per_seat"],
        active=values["active"],
    )


_TYPES: dict[str, tuple[type, ...]] = {
    "slug": (str,),
    "name": (str,),
    "amount": (str, int, float),
    "currency": (str,),
    "interval": (str,),
    "interval_count": (int,),
    "trial_days": (int,),
    "per_seat": (bool,),
    "active": (bool,),
}
_TYPE_NAMES = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}


def _typed(values: dict[str, Any], where: _Where) -> Iterator[tuple[str, Any]]:
    """Each value, once it has its key's TOML type (a bool is not a number here)."""
    for key, value in values.items():
        allowed = _TYPES[key]
        if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
            wanted = " or ".join(_TYPE_NAMES[t] for t in allowed)
            raise where.fail(f"{key} must be {wanted}, not {shown(str(value))}", key)
        yield key, value


def _amount_text(value: str | int | float) -> str:
    """A TOML number as the decimal a person wrote: ``19.5`` -> ``"19.5"`` (repr is shortest)."""
    return value if isinstance(value, str) else repr(value)


# -- applying ----------------------------------------------------------------------------------


def apply_plan_file(
    db: Database, *, invocation: Invocation, path: Path, prune: bool = False
) -> ApplyReport:
    """Make the plans table follow ``path``: add, update, and with ``prune`` deactivate."""
    wanted = read_plan_file(path)
    source = str(path)
    changes: list[PlanChange] = []
    unchanged: list[str] = []
    with db.transaction(dry_run=invocation.dry_run) as session:
        rows = {plan.slug: plan for plan in plans_repo.list_all(session=session)}
        for plan in wanted:
            change = _follow(session, rows.get(plan.slug), plan)
            if change is None:
                unchanged.append(plan.slug)
            else:
                changes.append(change)
        named = {plan.slug for plan in wanted}
        left = [row for slug, row in rows.items() if slug not in named and row.active]
        kept = [] if prune else [row.slug for row in left]
        if prune:
            changes += [_deactivate(session, row) for row in left]
        for change in changes:
            _audit(session, invocation, change, source)
    return ApplyReport(
        source=source,
        dry_run=invocation.dry_run,
        changes=tuple(changes),
        unchanged=tuple(unchanged),
        unlisted=tuple(kept),
    )


def _follow(session: Session, row: SubscriptionPlan | None, plan: FilePlan) -> PlanChange | None:
    """Add the plan or bring its row in line; None when the row already says it all."""
    if row is None:
        row = plan.new_row()
        plan.write_to(row)
        plans_repo.add(session=session, plan=row)
        return PlanChange(plan.slug, "add", None, plan_view(row))
    before = plan_view(row)
    plan.write_to(row)
    after = plan_view(row)
    if after == before:
        return None
    row.updated_at = utcnow()
    plans_repo.add(session=session, plan=row)
    return PlanChange(plan.slug, "update", before, after)


def _deactivate(session: Session, row: SubscriptionPlan) -> PlanChange:
    before = plan_view(row)
    row.active = False
    row.updated_at = utcnow()
    plans_repo.add(session=session, plan=row)
    return PlanChange(row.slug, "deactivate", before, plan_view(row))


_OUTCOMES = {"add": "created", "update": "updated", "deactivate": "deactivated"}


def _audit(session: Session, invocation: Invocation, change: PlanChange, source: str) -> None:
    audit.record(
        session,
        invocation=invocation,
        target=f"plan:{change.slug}",
        outcome=f"{_OUTCOMES[change.action]} from {source}"[:500],
        before=change.before,
        after=change.after,
    )
