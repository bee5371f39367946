"""Who is asking, and the one predicate that keeps every read and write inside their area.

Scope is resolved through the explicit ``admin_division.ancestors`` hierarchy, never by
string prefixes of codes (BAD_INPUTS E7): a row is in scope when its village's chain of
ancestors contains the user's ``scope_code``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.orm import InstrumentedAttribute

from gis_service.db.models import AdminDivision
from gis_service.types import Role

#: Roles that see names and phone numbers unmasked (DESIGN §11).
PII_ROLES = frozenset({Role.admin, Role.planner, Role.commander, Role.grid_worker})


@dataclass(frozen=True)
class Principal:
    """An authenticated (or anonymous) caller."""

    login: str
    role: Role
    #: Admin code the caller may see and change; None means the whole country (admins only).
    scope_code: str | None
    user_id: int | None = None
    anonymous: bool = False

    @property
    def sees_pii(self) -> bool:
        """Whether names and phones are shown unmasked to this caller."""
        return self.role in PII_ROLES and not self.anonymous


def in_scope(
    column: ColumnElement[Any] | InstrumentedAttribute[Any], principal: Principal
) -> ColumnElement[bool]:
    """SQL predicate: ``column`` (an admin code) lies inside the principal's area.

    Rows with a NULL code (outside every village) are visible only to national users.
    """
    if principal.scope_code is None:
        return true()
    units = select(AdminDivision.code).where(
        AdminDivision.ancestors.contains([principal.scope_code])
    )
    return column.in_(units)
