"""Outgoing e-mail for the notification outbox: the SMTP transport and the message templates.

Like the gateway for Stripe, this is the one place that talks to the mail server (standard
library ``smtplib`` and ``email``); services receive a :class:`~.smtp.Mailer` and never build one.
"""
