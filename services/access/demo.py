"""The demo accounts `gridtwin up` creates beside the demo fleet, so that a person can log in at
once: an operator (admin over every group), a viewer, and homeowners bound to the first simulated
installations. Their passwords are public (this README prints them): a demo, never production."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from services.access.model import Kind, Role
from services.access.service import ensure_user
from services.access.store import AccessStore


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    kind: Kind
    role: Role | None = None
    installation_id: str = ""

    @property
    def what(self) -> str:
        if self.kind is Kind.OPERATOR:
            return f"{self.role.value if self.role else ''} over every group"
        return f"{self.kind.value} of {self.installation_id}"


def demo_accounts(installation_ids: Sequence[str]) -> list[DemoAccount]:
    """The operator, the viewer, and a homeowner for each of (up to) the first two installations."""
    accounts = [DemoAccount("operator", "operator-demo-password", Kind.OPERATOR, Role.ADMIN),
                DemoAccount("viewer", "viewer-demo-password", Kind.OPERATOR, Role.VIEWER)]
    accounts += [DemoAccount(f"homeowner{n}", f"homeowner{n}-demo-password", Kind.HOMEOWNER,
                             installation_id=installation_id)
                 for n, installation_id in enumerate(installation_ids[:2], start=1)]
    return accounts


async def seed_demo_accounts(pool: asyncpg.Pool, installation_ids: Sequence[str]) -> list[DemoAccount]:
    """Creates the accounts that are missing (an existing one keeps its password); idempotent."""
    store = AccessStore(pool)
    accounts = demo_accounts(installation_ids)
    for account in accounts:
        await ensure_user(store, account.username, account.password, account.kind, role=account.role,
                          paths=("",) if account.kind is Kind.OPERATOR else (),
                          installation_ids=(account.installation_id,) if account.installation_id else ())
    return accounts
