"""The facility schema: one model used by the store, the finder, the API and the maps.

A facility is a mother room (爱心妈咪小屋), a worker station (工会驿站) or an outdoor rest stop
(户外劳动者爱心驿站). Its location is stored as a WGS-84 point (``lon``, ``lat`` in degrees); the
coordinate system the location was *given* in is kept in ``source_crs`` so that a wrong ``--crs`` at
import time can be traced.

Two representations exist and carry the same fields:

* :class:`Facility`, a pydantic model for one facility (API bodies, ``store.get``);
* a *facility frame*, a ``pandas.DataFrame`` with one row per facility and the columns of
  :data:`COLUMNS` (bulk import, index build, export). ``amenities`` is a ``;``-joined string there.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from geodata.crs import CrsName as CrsName
from geodata.entry_methods import ENTRY_METHODS as ENTRY_METHODS
from geodata.geodesy import LAT_RANGE, LON_RANGE
from geodata.kinds import KINDS as KINDS

if TYPE_CHECKING:
    Kind = str
    EntryMethod = str
else:
    # the kinds live in geodata.kinds, the entry methods in geodata.entry_methods; pydantic and
    # FastAPI see a Literal (an enum in OpenAPI)
    Kind = Literal[KINDS]
    EntryMethod = Literal[ENTRY_METHODS]
Format = Literal["room", "corner", "box", "mobile"]
Access = Literal["public", "members", "employees"]
Status = Literal["open", "temporarily_closed", "closed"]

FORMATS: tuple[str, ...] = get_args(Format)
ACCESS_CLASSES: tuple[str, ...] = get_args(Access)
STATUSES: tuple[str, ...] = get_args(Status)

#: The controlled amenity vocabulary. The order is part of the format: the finder turns a
#: facility's amenities into a bit mask with bit ``i`` for ``AMENITIES[i]``; append, never reorder.
AMENITIES: tuple[str, ...] = (
    "fridge",
    "microwave",
    "hot_water",
    "drinking_water",
    "air_conditioning",
    "charging",
    "toilet",
    "wifi",
    "seating",
    "sofa",
    "bed",
    "sink",
    "disinfection_cabinet",
    "changing_table",
    "smart_lock",
    "first_aid",
    "breast_pump",
    "nursing_chair",
    "privacy_curtain",
    "books",
    "umbrella",
    "repair_kit",
    "heating",
    "fan",
    "shower",
    "locker",
    "accessible",
    "parking_ebike",
)
AMENITY_BIT: dict[str, int] = {name: i for i, name in enumerate(AMENITIES)}

ADCODE_RE = re.compile(r"^[1-8]\d{5}$")
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")

#: Columns of a facility frame, in the order they are stored and exported.
COLUMNS: tuple[str, ...] = (
    "id",
    "name",
    "kind",
    "format",
    "address",
    "province",
    "city",
    "district",
    "adcode",
    "lon",
    "lat",
    "source_crs",
    "access",
    "organization",
    "opening_hours",
    "amenities",
    "star_rating",
    "area_m2",
    "phone",
    "entry_method",
    "entry_phone",
    "entry_note",
    "operator",
    "status",
    "verified_at",
    "source",
    "created_at",
    "updated_at",
    "version",
)

#: Columns a writer may set; the rest (timestamps, version) belong to the store.
EDITABLE_COLUMNS: tuple[str, ...] = tuple(
    c for c in COLUMNS if c not in ("created_at", "updated_at", "version")
)

ShortText = Annotated[str, Field(max_length=200)]


class Facility(BaseModel):
    """One facility, validated.

    ``lon``/``lat`` are WGS-84 degrees. ``access == "employees"`` requires ``organization``, the
    host organisation whose employees may use the room; ``entry_method == "call_keeper"``
    requires ``entry_phone``, the number that gets the door opened.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ID_RE.pattern, description="stable unique id")
    name: str = Field(min_length=1, max_length=200)
    kind: Kind
    format: Format | None = None
    address: ShortText | None = None
    province: ShortText | None = None
    city: ShortText | None = None
    district: ShortText | None = None
    adcode: str | None = Field(default=None, pattern=ADCODE_RE.pattern)
    lon: float = Field(ge=LON_RANGE[0], le=LON_RANGE[1], description="WGS-84 longitude, degrees")
    lat: float = Field(ge=LAT_RANGE[0], le=LAT_RANGE[1], description="WGS-84 latitude, degrees")
    source_crs: CrsName = "wgs84"
    access: Access = "public"
    organization: ShortText | None = None
    opening_hours: str | None = Field(default=None, max_length=500)
    amenities: tuple[str, ...] = ()
    star_rating: int | None = Field(default=None, ge=1, le=5)
    area_m2: float | None = Field(default=None, gt=0, le=100_000)
    phone: str | None = Field(default=None, max_length=50)
    entry_method: EntryMethod | None = Field(default=None, description="how to get in")
    entry_phone: str | None = Field(
        default=None, max_length=50, description="the number to call to be let in (call_keeper)"
    )
    entry_note: ShortText | None = Field(default=None, description="how to get in, in words")
    operator: ShortText | None = None
    status: Status = "open"
    verified_at: dt.date | None = None
    source: str = Field(default="", max_length=500)
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    version: int = 0

    @field_validator("amenities", mode="before")
    @classmethod
    def _split_amenities(cls, value: Any) -> Any:
        if value is None:
            return ()
        if isinstance(value, str):
            return tuple(a for a in value.split(";") if a)
        return value

    @field_validator("amenities")
    @classmethod
    def _known_amenities(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [a for a in value if a not in AMENITY_BIT]
        if unknown:
            raise ValueError(f"unknown amenities {unknown}; known: {', '.join(AMENITIES)}")
        return tuple(sorted(set(value), key=AMENITY_BIT.__getitem__))

    @model_validator(mode="after")
    def _organisation_for_employees(self) -> Facility:
        if self.access == "employees" and not self.organization:
            raise ValueError("access 'employees' needs the host organization")
        return self

    @model_validator(mode="after")
    def _number_for_call_keeper(self) -> Facility:
        if self.entry_method == "call_keeper" and not self.entry_phone:
            raise ValueError("entry_method 'call_keeper' needs the number to call (entry_phone)")
        return self

    def to_row(self) -> dict[str, Any]:
        """The facility as a frame row (amenities ``;``-joined)."""
        row = self.model_dump()
        row["amenities"] = ";".join(self.amenities)
        return row


class Viewer(BaseModel):
    """Who is asking, for access control.

    The anonymous viewer (``Viewer()``) sees only ``public`` facilities. A union member also sees
    ``members`` facilities; a viewer acting for organisations also sees the ``employees``
    facilities of those organisations. ``see_all`` is for administrators and planners' analytics.
    """

    model_config = ConfigDict(frozen=True)

    member: bool = False
    organizations: frozenset[str] = frozenset()
    see_all: bool = False

    def may_see(self, access: str, organization: str | None) -> bool:
        """Whether this viewer may see (and use) a facility of this access class."""
        if self.see_all or access == "public":
            return True
        if access == "members":
            return self.member or bool(organization and organization in self.organizations)
        return bool(organization and organization in self.organizations)


ANONYMOUS = Viewer()


ReportType = Literal[
    "locked_during_hours", "closed_for_good", "moved", "wrong_details", "missing_amenity", "other"
]
ReportStatus = Literal["pending", "confirmed", "dismissed"]
#: What a user may report about a facility (``POST /facilities/{id}/reports``).
REPORT_TYPES: tuple[str, ...] = get_args(ReportType)
#: What became of a report: staff confirm or dismiss a pending one.
REPORT_STATUSES: tuple[str, ...] = get_args(ReportStatus)


class Report(BaseModel):
    """One user's report about a facility, as stored.

    ``source`` is a keyed hash of where the report came from (never the address itself);
    ``token_hash`` the SHA-256 of the token that lets the reporter see what became of it;
    ``has_photo`` whether the reporter sent a photo with it. Times are timezone-aware UTC.
    """

    model_config = ConfigDict(frozen=True)

    report_id: int
    facility_id: str
    type: ReportType
    note: str | None = Field(default=None, max_length=500)
    source: str
    token_hash: str
    created_at: dt.datetime
    status: ReportStatus = "pending"
    resolved_at: dt.datetime | None = None
    resolved_by: str | None = None
    has_photo: bool = False
