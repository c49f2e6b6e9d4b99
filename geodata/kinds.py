"""The facility kinds: the one place that spells each kind's names, looks and import aliases.

Everything that names kinds reads :data:`KIND_SPECS`: the schema's ``Kind`` and :data:`KINDS`,
the stores' ``CHECK`` constraint (:func:`kind_check_sql`), import validation (aliases, id
prefixes), the sample generator, the web map (labels; colours and shapes through
:func:`maps.assets.kind_css`) and the printed maps (labels, markers, colours).

The order of :data:`KIND_SPECS` is part of the data format: the finder and the web map payload
encode a kind as its position. Append a new kind, never reorder.

Adding a kind
-------------
1. Append a :class:`KindSpec` here.
2. Replace the ``facilities_kind`` constraint of existing PostGIS databases in a new Alembic
   migration (``ALTER TABLE facilities DROP CONSTRAINT facilities_kind, ADD CONSTRAINT
   facilities_kind CHECK (...)``, the condition from :func:`kind_check_sql` as a literal);
   new GeoPackage stores take their constraint from :func:`kind_check_sql`.
3. The finder codes a kind in the high half of a one-byte class code; its filter table still
   assumes at most four kinds (``finder/facility_columns.py``, ``finder/index.py``).

Examples
--------
>>> KINDS
('mother_room', 'worker_station', 'rest_stop')
>>> KIND_BY_NAME["rest_stop"].label_en
"Outdoor workers' rest stop"
>>> kind_check_sql()
"kind IN ('mother_room', 'worker_station', 'rest_stop')"
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

#: How the web map draws a kind's marker and legend swatch (classes ``fm-shape-*`` of
#: ``maps/static/facilitymap.css``).
WebShape = Literal["circle", "square", "diamond"]

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_COLOUR_RE = re.compile(r"^#[0-9a-f]{6}$")


@dataclass(frozen=True)
class KindSpec:
    """One facility kind and everything spelled per kind.

    Attributes
    ----------
    name
        The stored value (``snake_case`` ASCII), e.g. ``"mother_room"``.
    label_zh, label_en
        What the maps, legends and lists call it.
    colour
        Marker colour on every map, ``#rrggbb`` (lower case).
    web_shape
        Marker shape on the web map (:data:`WebShape`).
    print_marker
        Marker of the printed maps, a matplotlib marker code (``"o"``, ``"s"``, ``"^"``...).
    id_prefix
        Prefix of the ids the importer and the service make for this kind (``mr-3f2a...``).
    aliases
        Regular expression (case-insensitive, searched) recognising this kind in an imported
        list's free text, in Chinese and English.
    alias_rank
        Order in which the aliases are tried, lowest first; the first match wins, so a kind with
        generic aliases (``驿站``) ranks after the kinds whose aliases are more specific.
    """

    name: str
    label_zh: str
    label_en: str
    colour: str
    web_shape: WebShape
    print_marker: str
    id_prefix: str
    aliases: str
    alias_rank: int

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(f"kind name {self.name!r} is not snake_case ASCII")
        if not _COLOUR_RE.match(self.colour):
            raise ValueError(f"kind {self.name!r}: colour {self.colour!r} is not #rrggbb")

    def label(self, language: str) -> str:
        """The label in ``language`` (``"zh"`` or ``"en"``)."""
        return {"zh": self.label_zh, "en": self.label_en}[language]


#: The kinds, in code order (append, never reorder).
KIND_SPECS: tuple[KindSpec, ...] = (
    KindSpec(
        name="mother_room",
        label_zh="爱心妈咪小屋",
        label_en="Mother room",
        colour="#c2255c",
        web_shape="circle",
        print_marker="o",
        id_prefix="mr",
        aliases=r"mother|nursing|妈咪|母婴|妈妈|哺乳|爱心小屋",
        alias_rank=0,
    ),
    KindSpec(
        name="worker_station",
        label_zh="工会驿站",
        label_en="Union worker station",
        colour="#1864ab",
        web_shape="square",
        print_marker="s",
        id_prefix="ws",
        aliases=r"worker.?station|station|工会驿站|职工驿站|职工之家|驿站",
        alias_rank=2,
    ),
    KindSpec(
        name="rest_stop",
        label_zh="户外劳动者爱心驿站",
        label_en="Outdoor workers' rest stop",
        colour="#e67700",
        web_shape="diamond",
        print_marker="^",
        id_prefix="rs",
        aliases=r"rest.?stop|outdoor|户外|劳动者|爱心驿站|休息点|暖心驿站",
        alias_rank=1,
    ),
)

#: The stored kind names, in code order.
KINDS: tuple[str, ...] = tuple(k.name for k in KIND_SPECS)
#: Each kind's :class:`KindSpec` by name.
KIND_BY_NAME: dict[str, KindSpec] = {k.name: k for k in KIND_SPECS}


def kind_labels(language: str) -> dict[str, str]:
    """``{kind: label}`` in ``language`` (``"zh"`` or ``"en"``), in code order."""
    return {k.name: k.label(language) for k in KIND_SPECS}


def kind_alias_rules() -> tuple[tuple[str, str], ...]:
    """``(pattern, kind)`` pairs in the order an importer tries them (by ``alias_rank``)."""
    ranked = sorted(KIND_SPECS, key=lambda k: k.alias_rank)
    return tuple((k.aliases, k.name) for k in ranked)


def kind_check_sql(column: str = "kind") -> str:
    """The SQL condition a store's ``CHECK`` constraint puts on the kind column.

    Parameters
    ----------
    column
        The column's name (an SQL identifier, unquoted).

    Returns
    -------
    str
        ``"kind IN ('mother_room', ...)"``, valid in SQLite and PostgreSQL.
    """
    names = ", ".join(f"'{k.name}'" for k in KIND_SPECS)
    return f"{column} IN ({names})"
