"""The 单四制 state machine as data: which step leads where, and which roles may take it.

Pure (no database): the ledger module applies a step inside one transaction, and the API
lists the steps a caller may take. States follow DESIGN §7::

    found ─assign(交办)→ assigned ─start→ rectifying ─request_closeout→ closeout_requested
    closeout_requested ─close(销号)→ closed        closeout_requested ─reject→ rectifying
    escalate (挂牌督办) is a flag: any open state, status unchanged.

``overdue`` is never stored: it is derived from the deadline and the database clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gis_service.db.models import (
    HAZARD_CATEGORIES,
    HAZARD_FOUND_VIA,
    HAZARD_LEVELS,
    SUPERVISION_LEVELS,
)
from gis_service.types import Latitude, Longitude, Role

OPEN_STATES = ("found", "assigned", "rectifying", "closeout_requested")


@dataclass(frozen=True)
class Step:
    """One workflow action: from which states, to which state, by which roles."""

    action: str
    label_zh: str
    sources: tuple[str, ...]
    #: None keeps the status (escalate).
    target: str | None
    roles: frozenset[Role]


_BUREAU = frozenset({Role.admin, Role.planner})
_FIELD = frozenset({Role.admin, Role.surveyor, Role.grid_worker})

STEPS: dict[str, Step] = {
    s.action: s
    for s in (
        Step("assign", "交办", ("found",), "assigned", _BUREAU),
        Step("start", "开始整改", ("assigned",), "rectifying", _FIELD),
        Step("request_closeout", "申请销号", ("rectifying",), "closeout_requested", _FIELD),
        Step("close", "复核销号", ("closeout_requested",), "closed", _BUREAU),
        Step("reject", "退回整改", ("closeout_requested",), "rectifying", _BUREAU),
        Step("escalate", "挂牌督办", OPEN_STATES, None, _BUREAU | {Role.commander}),
    )
}

#: Who may add synthetic histories to imported rows.
BACKFILLERS = _BUREAU

#: Who may register a newly found 隐患 (viewers only read).
CREATORS = frozenset({Role.admin, Role.planner, Role.surveyor, Role.commander, Role.grid_worker})

#: Actions whose actor counts as the rectifier (a reviewer must be someone else).
RECTIFIER_ACTIONS = ("start", "request_closeout")


def legal_actions(status: str, *, escalated: bool) -> list[str]:
    """Actions the state machine allows from ``status`` (whoever asks)."""
    return [
        s.action
        for s in STEPS.values()
        if status in s.sources and not (s.action == "escalate" and escalated)
    ]


def allowed_actions(status: str, *, escalated: bool, role: Role) -> list[str]:
    """Actions ``role`` may take now: the buttons a user sees."""
    return [a for a in legal_actions(status, escalated=escalated) if role in STEPS[a].roles]


class FileRef(BaseModel):
    """A photo or evidence file: as returned by ``POST /hazard-files``, or a hash/URL."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=200)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    url: str | None = Field(default=None, max_length=500, pattern=r"^(https?://|/)\S+$")
    media_type: Literal["image/jpeg", "image/png", "application/pdf"] | None = None
    bytes: int | None = Field(default=None, ge=1, le=10 * 1024 * 1024)


Text200 = Annotated[str, Field(min_length=1, max_length=200)]
Text2000 = Annotated[str, Field(min_length=1, max_length=2000)]
Level = Literal[HAZARD_LEVELS]  # type: ignore[valid-type]
Category = Literal[HAZARD_CATEGORIES]  # type: ignore[valid-type]
FoundVia = Literal[HAZARD_FOUND_VIA]  # type: ignore[valid-type]
Supervision = Literal[SUPERVISION_LEVELS]  # type: ignore[valid-type]


class HazardCreate(BaseModel):
    """A newly found 隐患: a point, or an enterprise whose point is used."""

    model_config = ConfigDict(extra="forbid", strict=True)

    title: Text200
    description: str | None = Field(default=None, max_length=2000)
    level: Level
    category: Category | None = None
    found_via: FoundVia
    legal_basis: str | None = Field(default=None, max_length=300)
    enterprise_id: int | None = Field(default=None, ge=1, le=2**62)
    lon: Longitude | None = None
    lat: Latitude | None = None
    photos: list[FileRef] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _place_and_basis(self) -> HazardCreate:
        if (self.lon is None) != (self.lat is None):
            raise ValueError("lon and lat must be given together")
        if self.lon is None and self.enterprise_id is None:
            raise ValueError("give lon/lat, or an enterprise_id whose location is used")
        if self.level == "major" and not self.legal_basis:
            raise ValueError("a major hazard (重大事故隐患) needs legal_basis (判定标准条款)")
        return self


class FiveInPlace(BaseModel):
    """重大隐患 五落实: all five must be in place before it is assigned."""

    model_config = ConfigDict(extra="forbid", strict=True)

    measures: bool
    funds: bool
    deadline: bool
    person: bool
    plan: bool


class AssignBody(BaseModel):
    """交办: to an organisation and a person, with a deadline and measures."""

    model_config = ConfigDict(extra="forbid", strict=True)

    responsible_org: Text200
    responsible_person: Annotated[str, Field(min_length=1, max_length=60)]
    deadline: dt.date = Field(strict=False)
    measures: Text2000
    five_in_place: FiveInPlace | None = None
    note: str | None = Field(default=None, max_length=2000)


class NoteBody(BaseModel):
    """A step that carries only an optional note (start)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    note: str | None = Field(default=None, max_length=2000)


class CloseoutBody(BaseModel):
    """申请销号: what was done, with the evidence (at least one file)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    evidence: list[FileRef] = Field(min_length=1, max_length=20)
    note: Text2000


class ReviewBody(BaseModel):
    """复核: the reviewer's opinion (销号 or 退回)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    opinion: Text2000


class EscalateBody(BaseModel):
    """挂牌督办 at a supervision level."""

    model_config = ConfigDict(extra="forbid", strict=True)

    supervision_level: Supervision
    note: str | None = Field(default=None, max_length=2000)


#: The body model of each action.
BODIES: dict[str, type[BaseModel]] = {
    "assign": AssignBody,
    "start": NoteBody,
    "request_closeout": CloseoutBody,
    "close": ReviewBody,
    "reject": ReviewBody,
    "escalate": EscalateBody,
}
