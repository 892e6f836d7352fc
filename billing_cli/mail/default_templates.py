"""The built-in wording of each notification, as Jinja2 templates (see :mod:`.templates`).

Kept as strings rather than package data so the wheel needs no data-file rules; an operator's
``BILLING_MAIL_TEMPLATES`` directory overrides any of them by file name. Each choice below
depends on a variable :func:`~billing_cli.mail.templates.variables` derives from the facts at
send time, so the same template never promises what is not so.
"""

from __future__ import annotations

_SIGNATURE = "-- \nBilling\n"
_WHEN_TRIAL = "{% if trial_end %}on {{ trial_end }}{% else %}in a few days{% endif %}"
_WHEN_DUE = "{% if due_date %} on {{ due_date }}{% else %} soon{% endif %}"
_ATTEMPT = "{% if attempt %} (attempt {{ attempt }} of {{ max_attempts }}){% endif %}"

DEFAULTS: dict[str, str] = {
    "trial_will_end.txt": f"""Subject: Your trial ends {_WHEN_TRIAL}
Hello {{{{ tenant_name }}}},

Your trial ends {_WHEN_TRIAL}. To keep your account running without a break, make sure a \
payment method is on file before then; your subscription then continues on its plan.

{_SIGNATURE}""",
    "upcoming_invoice.txt": f"""Subject: Upcoming invoice: {{{{ amount }}}}{_WHEN_DUE}
Hello {{{{ tenant_name }}}},

Your next invoice, {{{{ amount }}}}, will be charged to your payment method on file{_WHEN_DUE}.
Invoice reference: {{{{ invoice or "not issued yet" }}}}

{_SIGNATURE}""",
    "payment_failed.txt": f"""Subject: Payment failed: {{{{ amount }}}}{_ATTEMPT}
Hello {{{{ tenant_name }}}},

We could not collect {{{{ amount }}}} for your subscription{_ATTEMPT}.
{{% if final_attempt %}}That was the last attempt, so your account is being suspended; it is \
reactivated as soon as the invoice is paid. Please update your payment method.
{{% elif retry_date %}}We will try again on {{{{ retry_date }}}}. After {{{{ max_attempts }}}} \
failed attempts your account is suspended until a payment succeeds. Please update your payment \
method.
{{% else %}}Please update your payment method and pay the open invoice.
{{% endif %}}
{_SIGNATURE}""",
    "suspended.txt": f"""Subject: Your account is suspended
Hello {{{{ tenant_name }}}},

{{% if cause == "canceled" %}}Your subscription has ended, so your account is suspended. To use \
it again, subscribe again from the billing page of your account, or reply to this e-mail and \
we will set up a new subscription for you.
{{% elif cause == "payment" %}}Your account is suspended because the payments for your \
subscription failed. It is reactivated as soon as a payment succeeds: please update your \
payment method.
{{% elif cause == "paused" %}}Your account is suspended while the payments for your \
subscription are paused. It is reactivated when the subscription resumes.
{{% elif customer_message %}}Your account has been suspended by our team: {{{{ customer_message }}}}
{{% else %}}Your account has been suspended by our team. Please reply to this e-mail to find \
out more.
{{% endif %}}
{_SIGNATURE}""",
    "reactivated.txt": f"""Subject: Your account is active again
Hello {{{{ tenant_name }}}},

Your account is active again. Thank you.

{_SIGNATURE}""",
}
