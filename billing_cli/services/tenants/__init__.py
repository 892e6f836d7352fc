"""Tenants: the rules of access and suspension (``rules``), the support desk's tenant commands
(``desk``), and removing a tenant (``offboarding``).

See docs/architecture.md, Layers.
"""
