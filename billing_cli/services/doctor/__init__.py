"""``billing doctor``: the seed's troubleshooting checklist, run by the tool in one go.

Each check says ``ok``, ``warn`` or ``fail`` with one line of detail and, unless ok, the fix
(usually the exact command). The checks follow the chain a webhook travels, so the first
``fail`` is usually the cause of the ones after it: the configuration (:mod:`.local`), the
database (:mod:`.local`), Stripe and its webhook endpoint, the deliveries and the plan catalogue
(:mod:`.remote`), and with ``--tenant`` one tenant's link, subscription, events and suspension
(:mod:`.tenant`). A check that cannot run because an earlier one failed is left out rather than
reported as a second failure. Everything here is read-only: no Stripe write, no database write.

The service receives the database and a gateway *factory*: building the gateway checks the key,
and a missing or malformed key is itself a finding to report, not an error that stops the run.
"""

from billing_cli.services.doctor.report import Check, DoctorReport, run_doctor

__all__ = ["Check", "DoctorReport", "run_doctor"]
