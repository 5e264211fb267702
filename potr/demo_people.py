"""The demo's people (issue 13): one user per role — a customer per region owning that
region's demo site, a MOSIE, support, an operator and an admin — and their logins.

Passwords are made up at start and printed, with the staff's PINs: they are the demo's
logins, the only credentials it shows on purpose. Mail (password resets) goes nowhere.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from email.message import EmailMessage

from cloud.bootstrap import link_site
from cloud.customers import AccountIn, CustomersService
from cloud.identity import IdentityService, Role, UserIn
from cloud.registry import RegistryService
from contracts.topics import Region

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoLogin:
    role: str
    region: str
    email: str
    password: str
    employee_no: str | None = None
    pin: str | None = None


class NoMail:
    """The demo sends no mail: a reset link is logged instead."""

    def send(self, message: EmailMessage) -> None:
        log.warning("demo: a mail to %s is not sent (%s)", message["To"], message["Subject"])


def create_people(
    identity: IdentityService,
    customers: CustomersService,
    registry: RegistryService,
    sites: dict[str, int],
) -> list[DemoLogin]:
    """``sites``: region → the demo site id of that region (each gets a customer)."""
    logins: list[DemoLogin] = []
    for region, site_id in sorted(sites.items()):
        email = f"customer-{region}@demo.potr.example"
        account = customers.add_account(
            Region(region), AccountIn(name=f"Demo customer {region.upper()}", email=email)
        )
        link_site(registry, customers, site_id, account.id)
        logins.append(_user(identity, Role.CUSTOMER, region, email, account_id=account.id))
    staff = [(Role.MOSIE, "E1001"), (Role.SUPPORT, "E1002"), (Role.OPERATOR, "E1003")]
    for role, employee_no in staff:
        email = f"{role.value}@demo.potr.example"
        logins.append(_user(identity, role, "au", email, employee_no=employee_no))
    logins.append(_user(identity, Role.ADMIN, "au", "admin@demo.potr.example"))
    return logins


def _user(
    identity: IdentityService,
    role: Role,
    region: str,
    email: str,
    *,
    account_id: str | None = None,
    employee_no: str | None = None,
) -> DemoLogin:
    password = f"demo-{secrets.token_urlsafe(9)}"
    created = identity.create_user(
        UserIn(
            email=email,
            display_name=f"Demo {role.value} {region}",
            role=role,
            home_region=Region(region),
            account_id=account_id,
            employee_no=employee_no,
            password=password,
        ),
        actor="demo",
    )
    return DemoLogin(role.value, region, email, password, employee_no, created.pin)
