"""Named types shared by every layer: roles, admin levels, codes."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints


class Role(StrEnum):
    """What a user may do; the area they may do it in is their ``scope_code``."""

    admin = "admin"
    planner = "planner"
    surveyor = "surveyor"
    commander = "commander"
    grid_worker = "grid_worker"
    viewer = "viewer"


class AdminLevel(StrEnum):
    """Levels of the GB/T 2260 + 统计用区划代码 hierarchy."""

    province = "province"
    prefecture = "prefecture"
    county = "county"
    township = "township"
    village = "village"


#: 6 (province/prefecture/county), 9 (township) or 12 (village) digits.
AdminCode = Annotated[str, StringConstraints(pattern=r"^(\d{6}|\d{9}|\d{12})$")]
#: 6 county + 3 township + 3 community + 3 sequence.
GridCode = Annotated[str, StringConstraints(pattern=r"^\d{15}$")]
#: A finite longitude/latitude value; NaN and Infinity are refused.
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]

#: Storage SRID: CGCS2000 geographic, lon/lat order.
STORAGE_SRID = 4490

#: China's bounding box in lon/lat (with a margin), used to reject rows far outside.
CHINA_BBOX = (73.0, 3.0, 136.0, 54.0)
