"""What ``--help`` shows beyond each command's docstring: examples and plain metavars.

Kept in one table rather than in each command's docstring so that every command's examples can
be read (and kept true) together, and so that a command group gets them when it is built, lazily
(``billing --help`` pays for none of this). Metavars are named for what to type: ``SLUG``,
``AMOUNT``, ``CURRENCY``, ``DATE``, ``N``, ``PATH``, ``[a|b]`` (Typer's own are ``{slug}``,
``<str>``, ``<list[str]>``; Click's ``TEXT`` says nothing).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

# Command path (without "billing") -> one or two command lines a person would type. A group's
# examples end its help, after its list of commands.
EXAMPLES: dict[str, tuple[str, ...]] = {
    "tenants": ("billing tenants list --status suspended", "billing tenants show acme"),
    "plans": ("billing plans list", "billing plans sync --dry-run"),
    "subs": ("billing subs list --status past_due", "billing subs show acme"),
    "payments": ("billing payments list acme", "billing payments methods list acme"),
    "payments methods": ("billing payments methods list acme",),
    "invoices": (
        "billing invoices list acme --status open",
        "billing invoices show in_1Q2w3E4r5T6y",
    ),
    "coupons": ("billing coupons list",),
    "webhooks": (
        "billing webhooks list --status failed",
        "billing webhooks retry-failed --dry-run",
    ),
    "notifications": ("billing notifications list", "billing notifications send --dry-run"),
    "intents": ("billing intents list --open", "billing intents show bi_0123456789abcdef01234567"),
    "audit": ("billing audit list --tenant acme --since 7d",),
    "db": ("billing db status", "billing db upgrade"),
    "config": ("billing config", "billing --env-file prod.env config --json"),
    "demo": ("billing demo", "billing demo --keep"),
    "sandbox": ("billing sandbox --port 8420",),
    "tenants add": (
        'billing tenants add acme --name "Acme Inc" --email billing@acme.test',
        "billing tenants add acme --name Acme --email billing@acme.test --dry-run",
    ),
    "tenants list": ("billing tenants list", "billing tenants list --status suspended --json"),
    "tenants show": ("billing tenants show acme", "billing tenants show acme --json"),
    "tenants suspend": (
        'billing tenants suspend acme --reason "chargeback" --dry-run',
        'billing tenants suspend acme --reason "chargeback"',
        'billing tenants suspend acme --reason "chargeback" --customer-message "Please call us."',
    ),
    "tenants reactivate": ("billing tenants reactivate acme",),
    "tenants remove": ("billing tenants remove acme --dry-run", "billing tenants remove acme"),
    "plans add": (
        "billing plans add pro --name Pro --amount 29.00 --currency usd --interval month",
        "billing plans add team --name Team --amount 290 --currency eur --interval year "
        "--trial-days 14",
    ),
    "plans update": (
        "billing plans update pro --amount 39.00",
        "billing plans update pro --name Pro+",
    ),
    "plans deactivate": ("billing plans deactivate pro",),
    "plans activate": ("billing plans activate pro",),
    "plans list": ("billing plans list", "billing plans list --local --json"),
    "plans sync": ("billing plans sync --dry-run", "billing plans sync --archive-stale"),
    "plans remove": ("billing plans remove typo --dry-run", "billing plans remove typo"),
    "plans export": ("billing plans export", "billing plans export plans.toml"),
    "plans apply": (
        "billing plans apply plans.toml --dry-run",
        "billing plans apply plans.toml --prune --sync",
    ),
    "subs create": (
        "billing subs create acme --plan pro --payment-method pm_card_visa",
        "billing subs create acme --plan pro --trial-days 0 --dry-run",
    ),
    "subs upgrade": (
        "billing subs upgrade acme --plan team --dry-run",
        "billing subs upgrade acme --plan team --proration none",
    ),
    "subs cancel": ("billing subs cancel acme", "billing subs cancel acme --now --dry-run"),
    "subs resume": ("billing subs resume acme",),
    "subs show": ("billing subs show acme", "billing subs show acme --json"),
    "subs list": ("billing subs list", "billing subs list --status past_due"),
    "payments charge": (
        'billing payments charge acme --amount 12.50 --currency usd --description "Setup fee"',
        'billing payments charge acme --amount 500 --currency jpy --description "Extra seat" '
        "--dry-run",
    ),
    "payments methods list": ("billing payments methods list acme",),
    "payments methods attach": ("billing payments methods attach acme pm_card_visa --default",),
    "webhooks serve": (
        "billing webhooks serve --port 8000",
        "billing webhooks serve --host 127.0.0.1 --port 8000 --workers 2",
    ),
    "webhooks list": ("billing webhooks list --status failed", "billing webhooks list --since 48h"),
    "webhooks show": ("billing webhooks show evt_1QxYz", "billing webhooks show evt_1QxYz --json"),
    "webhooks replay": (
        "billing webhooks replay --since 48h --type 'invoice.*' --dry-run",
        "billing webhooks replay --from-file events.jsonl",
        "billing webhooks replay --from-file export.jsonl --batch-size 1000 --yes",
    ),
    "webhooks retry-failed": (
        "billing webhooks retry-failed --dry-run",
        "billing webhooks retry-failed",
    ),
    "notifications list": (
        "billing notifications list --tenant acme",
        "billing notifications list --kind payment_failed --json",
    ),
    "audit list": ("billing audit list --tenant acme --since 7d", "billing audit list --limit 10"),
    "intents list": ("billing intents list --open", "billing intents list --tenant acme --json"),
    "intents show": ("billing intents show bi_0123456789abcdef01234567",),
    "intents resume": (
        "billing intents resume bi_0123456789abcdef01234567 --dry-run",
        "billing intents resume bi_0123456789abcdef01234567",
    ),
    "intents abandon": (
        'billing intents abandon bi_0123456789abcdef01234567 --reason "no charge in Stripe"',
    ),
    "webhooks setup": (
        "billing webhooks setup https://billing.example.com/webhooks/stripe/ --dry-run",
        "billing webhooks setup https://billing.example.com/webhooks/stripe/ --write-env .env",
    ),
    "webhooks endpoints": ("billing webhooks endpoints", "billing webhooks endpoints --json"),
    "webhooks endpoints disable": (
        "billing webhooks endpoints disable we_123 --dry-run",
        "billing webhooks endpoints disable we_123",
    ),
    "webhooks endpoints enable": ("billing webhooks endpoints enable we_123",),
    "webhooks endpoints delete": (
        "billing webhooks endpoints delete we_123 --dry-run",
        "billing webhooks endpoints delete we_123 --yes",
    ),
    "doctor": ("billing doctor", "billing doctor --tenant acme --json"),
    "stats": ("billing stats --since 30d", "billing stats --since 90d --by week --json"),
    "check": ("billing check", "billing check --json"),
    "reconcile": (
        "billing reconcile",
        "billing reconcile --tenant acme --fix --dry-run",
    ),
    "subs refresh": ("billing subs refresh acme --dry-run", "billing subs refresh acme"),
    "subs extend-trial": (
        "billing subs extend-trial acme --days 7 --dry-run",
        "billing subs extend-trial acme --until 2027-01-15",
    ),
    "subs end-trial": ("billing subs end-trial acme --dry-run", "billing subs end-trial acme"),
    "subs pause": (
        "billing subs pause acme --behavior void --dry-run",
        "billing subs pause acme --behavior keep_as_draft --resumes-at 2027-02-01",
    ),
    "subs unpause": ("billing subs unpause acme",),
    "subs discount": (
        "billing subs discount acme --coupon SPRING20 --dry-run",
        "billing subs discount acme --remove",
    ),
    "subs quantity": ("billing subs quantity acme 12 --dry-run", "billing subs quantity acme 12"),
    "subs migrate": (
        "billing subs migrate --plan pro --dry-run",
        "billing subs migrate --plan pro --at period-end --rate 10",
    ),
    "coupons create": (
        "billing coupons create SPRING20 --percent-off 20 --duration repeating --months 3",
        "billing coupons create WELCOME5 --amount-off 5.00 --currency usd --duration once",
    ),
    "coupons list": ("billing coupons list", "billing coupons list --json"),
    "coupons delete": (
        "billing coupons delete SPRING20 --dry-run",
        "billing coupons delete SPRING20",
    ),
    "invoices list": (
        "billing invoices list acme",
        "billing invoices list acme --status open --json",
    ),
    "invoices show": ("billing invoices show in_1Q2w3E4r5T6y",),
    "invoices pay": (
        "billing invoices pay in_1Q2w3E4r5T6y --dry-run",
        "billing invoices pay in_1Q2w3E4r5T6y --payment-method pm_1Q2w3E4r5T6y",
    ),
    "invoices void": ("billing invoices void in_1Q2w3E4r5T6y --dry-run",),
    "invoices mark-uncollectible": ("billing invoices mark-uncollectible in_1Q2w3E4r5T6y",),
    "invoices upcoming": (
        "billing invoices upcoming acme",
        "billing invoices upcoming acme --json",
    ),
    "notifications send": (
        "billing notifications send --dry-run",
        "billing notifications send --limit 100",
    ),
    "notifications show": ("billing notifications show 42", "billing notifications show 42 --json"),
    "notifications withdraw": (
        'billing notifications withdraw 42 --reason "told by phone" --dry-run',
        'billing notifications withdraw 42 --reason "told by phone"',
    ),
    "payments list": ("billing payments list acme", "billing payments list acme --json"),
    "payments refund": (
        "billing payments refund pi_1Q2w3E4r5T6y --amount 5.00 --dry-run",
        "billing payments refund pi_1Q2w3E4r5T6y --reason requested_by_customer",
    ),
    "payments methods default": ("billing payments methods default acme pm_1Q2w3E4r5T6y",),
    "payments recover": (
        "billing payments recover acme --payment-method pm_1Q2w3E4r5T6y --dry-run",
        "billing payments recover acme --payment-method pm_1Q2w3E4r5T6y",
    ),
    "payments methods detach": ("billing payments methods detach acme pm_1Q2w3E4r5T6y --dry-run",),
    "tenants credit": (
        'billing tenants credit acme --amount 5.00 --currency usd --reason "outage" --dry-run',
    ),
    "tenants update": (
        'billing tenants update acme --name "Acme Corp"',
        "billing tenants update acme --email ap@acme.test --dry-run",
    ),
    "db upgrade": ("billing db upgrade",),
    "db status": ("billing db status --json",),
}

_POLISHED = "_billing_help_polished"


def polish(command: Any, path: str) -> None:
    """Add examples and plain metavars to ``command`` and, for a group, to all it contains."""
    if getattr(command, _POLISHED, False):
        return
    setattr(command, _POLISHED, True)
    examples = EXAMPLES.get(path)
    if examples:
        lines = "\n".join(f"  {line}" for line in examples)
        # "\b" keeps Click from re-wrapping the example lines into one paragraph.
        block = f"Examples:\n\n\b\n{lines}"
        if hasattr(command, "commands"):
            command.epilog = block  # after the list of commands: the end of the help
        else:
            command.help = f"{(command.help or '').rstrip()}\n\n{block}"
    for param in getattr(command, "params", ()):
        if getattr(param, "metavar", None) is None and not getattr(param, "is_flag", False):
            metavar = _metavar(param)
            if metavar:
                param.metavar = metavar
        if getattr(param, "param_type_name", "") == "argument":
            _plain_argument(param)
    for name, sub in getattr(command, "commands", {}).items():
        polish(sub, f"{path} {name}")


def _plain_argument(param: Any) -> None:
    """Show an argument as Click does (``SLUG``, ``[SLUG]``), not as ``{SLUG}`` and
    ``SLUG <str>``: Typer builds both strings in methods, so this instance's are replaced."""
    name = str(param.metavar or param.name).upper()
    usage = name if param.required else f"[{name}]"
    if param.nargs != 1:
        usage += "..."
    param._usage_display_name = lambda: usage
    param.display_type_rich = lambda ctx=None: ""


def _metavar(param: Any) -> str | None:
    """SLUG/TENANT for arguments (their name), TEXT/N/PATH/[a|b] for options (their type)."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None:
        return None
    annotation = descriptor.annotation
    if annotation is bool:
        return None
    choices = descriptor.choices
    if choices:
        return "[" + "|".join(str(c.value if isinstance(c, Enum) else c) for c in choices) + "]"
    if getattr(param, "param_type_name", "") == "argument":
        return str(param.name).upper()
    inner = getattr(annotation, "__args__", (annotation,))[0] if descriptor.is_list else annotation
    if inner is int:
        return "N"
    if inner is Path:
        return "PATH"
    return _named(param)


# Options whose value has a name people know better than the option's own.
_VALUES = {
    "--amount": "AMOUNT",
    "--amount-off": "AMOUNT",
    "--percent-off": "PERCENT",
    "--currency": "CURRENCY",
    "--tenant": "TENANT",
    "--since": "DATE",
    "--until": "DATE",
    "--resumes-at": "DATE",
    "--coupon": "COUPON",
    "--payment-method": "PM_ID",
    "--reason": "REASON",
}


def _named(param: Any) -> str:
    """What a text option takes, named for it (``AMOUNT``, ``TENANT``, ``DATE``): the table
    above, else the option's own name (``--email EMAIL``)."""
    longest = max(getattr(param, "opts", ()) or ["--" + str(param.name)], key=len)
    return _VALUES.get(longest) or longest.lstrip("-").replace("-", "_").upper()
