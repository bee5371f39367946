"""A planner's manual edits of a proposal: move a unit, merge two grids, split one in two.

Each edit is validated on the unit graph before it is applied: the grids it touches must stay
one piece (contiguity) and inside their community (units never leave it: nesting holds by
construction); grids outside the household tolerance come back as warnings, not errors.
Applied edits re-dissolve and re-code the community's grids.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, text

from gis_service.domain.scope import Principal
from gis_service.errors import Conflict, FieldProblem, InvalidInput
from gis_service.grids.partition import Params, UnitGraph, components, partition
from gis_service.grids.store import dissolve, proposal_graph, proposal_row

__all__ = ["Edit", "apply_edit", "validate_labels"]

I64 = np.ndarray[Any, np.dtype[np.int64]]


class Edit(BaseModel):
    """One edit. ``move``: unit → to_label; ``merge``: labels[0] absorbs labels[1]; ``split``."""

    model_config = ConfigDict(extra="forbid")

    op: Literal["move", "merge", "split"]
    community_code: str = Field(pattern=r"^\d{12}$")
    unit: int | None = Field(default=None, ge=0)
    to_label: int | None = Field(default=None, ge=0)
    labels: list[int] | None = Field(default=None, min_length=1, max_length=2)
    seed: int = Field(default=0, ge=0, lt=2**31)


def _bad(field: str, message: str) -> InvalidInput:
    return InvalidInput(detail=f"{field}: {message}", fields=[FieldProblem(field, message)])


def validate_labels(
    g: UnitGraph, labels: I64, target: float, tolerance: float, touched: list[int]
) -> dict[str, Any]:
    """Problems (contiguity) and warnings (tolerance) of a labelling, for the touched grids."""
    indptr, indices, _, _ = g.csr()
    comp, _ = components(indptr, indices, labels)
    problems, warnings = [], []
    for lab in touched:
        m = labels == lab
        if not m.any():
            continue
        if len(np.unique(comp[m])) > 1:
            problems.append({"label": int(lab), "problem": "not one piece"})
        hh = int(g.households[m].sum())
        if abs(hh - target) > tolerance * target:
            warnings.append(
                {
                    "label": int(lab),
                    "households": hh,
                    "warning": f"outside {target:g} ± {tolerance:.0%}",
                }
            )
    return {"ok": not problems, "problems": problems, "warnings": warnings}


def apply_edit(
    conn: Connection, proposal_id: int, edit: Edit, principal: Principal
) -> dict[str, Any]:
    """Validate and apply one edit; nothing changes when validation fails (422 with the reasons)."""
    row = proposal_row(conn, proposal_id, principal)
    if row.status != "ready":
        raise Conflict(
            detail=f"proposal {proposal_id} is {row.status}; only a ready one can be edited"
        )
    if edit.community_code not in row.community_codes:
        raise _bad("community_code", "not part of this proposal")
    params = row.params
    target, tolerance = float(params["target"]), float(params["tolerance"])
    g, labels, srid = proposal_graph(conn, proposal_id, edit.community_code)
    new, touched = _edited(g, labels, edit, target)
    report = validate_labels(g, new, target, tolerance, touched)
    if not report["ok"]:
        raise InvalidInput(
            detail=f"edit refused: grid {report['problems'][0]['label']} would not be one piece",
            detail_zh="调整后网格不连通，已拒绝",
            fields=[FieldProblem("op", "result is not contiguous")],
            extra={"validation": report},
        )
    _, new = np.unique(new, return_inverse=True)
    conn.execute(
        text(
            """UPDATE grid_proposal_unit u SET label = s.label
               FROM unnest(CAST(:idx AS int[]), CAST(:label AS int[])) AS s(idx, label)
               WHERE u.proposal_id = :p AND u.community_code = :c AND u.idx = s.idx
                 AND u.label <> s.label"""
        ),
        {
            "p": proposal_id,
            "c": edit.community_code,
            "idx": list(range(g.n)),
            "label": new.astype(int).tolist(),
        },
    )
    dissolve(conn, proposal_id, edit.community_code, srid)
    report["grids"] = int(new.max()) + 1
    return report


def _edited(g: UnitGraph, labels: I64, edit: Edit, target: float) -> tuple[I64, list[int]]:
    new = labels.copy()
    k = int(labels.max()) + 1
    if edit.op == "move":
        if edit.unit is None or edit.to_label is None:
            raise _bad("unit", "move needs unit and to_label")
        if edit.unit >= g.n:
            raise _bad("unit", f"no unit {edit.unit} in this community")
        if edit.to_label >= k:
            raise _bad("to_label", f"no grid label {edit.to_label}")
        u, src = edit.unit, int(labels[edit.unit])
        if src == edit.to_label:
            raise _bad("to_label", "the unit is already in that grid")
        nb = np.r_[g.edge_b[g.edge_a == u], g.edge_a[g.edge_b == u]]
        if not (labels[nb] == edit.to_label).any():
            raise _bad("to_label", "the unit does not border that grid")
        new[u] = edit.to_label
        return new, [src, edit.to_label]
    if edit.op == "merge":
        if not edit.labels or len(edit.labels) != 2 or edit.labels[0] == edit.labels[1]:
            raise _bad("labels", "merge needs two different grid labels")
        a, b = edit.labels
        if max(a, b) >= k:
            raise _bad("labels", "unknown grid label")
        ma, mb = labels == a, labels == b
        touching = (ma[g.edge_a] & mb[g.edge_b]) | (mb[g.edge_a] & ma[g.edge_b])
        if not touching.any():
            raise _bad("labels", "the two grids are not adjacent")
        new[mb] = a
        return new, [a]
    # split
    if not edit.labels or len(edit.labels) != 1:
        raise _bad("labels", "split needs one grid label")
    lab = edit.labels[0]
    if lab >= k:
        raise _bad("labels", "unknown grid label")
    idx = np.nonzero(labels == lab)[0]
    if idx.size < 2:
        raise _bad("labels", "a one-unit grid cannot be split")
    local = -np.ones(g.n, dtype=np.int64)
    local[idx] = np.arange(idx.size)
    keep = (labels[g.edge_a] == lab) & (labels[g.edge_b] == lab)
    sub = UnitGraph(
        xy=g.xy[idx],
        area=g.area[idx],
        households=g.households[idx],
        population=g.population[idx],
        edge_a=local[g.edge_a[keep]],
        edge_b=local[g.edge_b[keep]],
        edge_len=g.edge_len[keep],
        edge_cost=g.edge_cost[keep],
    )
    half = float(sub.households.sum()) / 2
    plan = partition(sub, 2, Params(target=max(half, 1.0), seed=edit.seed))
    new[idx[plan.labels == 1]] = k
    return new, [lab, k]
