"""Roles, who of them logs in with a PIN, and the scopes each may hold.

Authorisation is by role; scopes only narrow it: a user's access token carries every
scope of the role, an API key (a machine client) a subset chosen when it is made, so a
read-only integration cannot write even if its owner may.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["EMPLOYEE_ROLES", "ROLE_SCOPES", "SCOPES", "Role"]


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    SUPPORT = "support"
    MOSIE = "mosie"  # field technician
    CUSTOMER = "customer"


#: Roles held by the company's people: they may have an employee number and a PIN.
EMPLOYEE_ROLES = frozenset({Role.ADMIN, Role.OPERATOR, Role.SUPPORT, Role.MOSIE})

#: ``read``: see what the role may see; ``write``: change it; ``admin``: users and keys.
SCOPES = ("read", "write", "admin")

ROLE_SCOPES: dict[Role, frozenset[str]] = {
    Role.ADMIN: frozenset({"read", "write", "admin"}),
    Role.OPERATOR: frozenset({"read", "write"}),
    Role.SUPPORT: frozenset({"read", "write"}),
    Role.MOSIE: frozenset({"read", "write"}),
    Role.CUSTOMER: frozenset({"read", "write"}),
}
