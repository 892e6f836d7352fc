"""The rules of the tool. Each service function receives its database (and gateway, when it talks
to Stripe) as arguments, never builds them, so tests can hand in a recorded or sandboxed one."""
