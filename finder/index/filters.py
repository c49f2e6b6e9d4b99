"""Query filters compiled against one index snapshot's vocabularies."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geodata.errors import (
    InvalidQuery,
)
from geodata.schema import (
    AMENITIES,
    AMENITY_BIT,
)

#: Statuses a query keeps unless told otherwise: closed and temporarily closed rooms are hidden.
DEFAULT_STATUSES: tuple[str, ...] = ("open",)

FILTER_CACHE_SIZE = 256
SHARE_SAMPLE = 2048


def filter_key(values: Iterable[str] | str | None) -> tuple[str, ...] | str | None:
    if values is None or isinstance(values, str):
        return values
    return tuple(values)


def vocabulary_lut(
    values: Iterable[str] | str | None, vocabulary: Sequence[str], field: str
) -> NDArray[np.bool_] | None:
    if values is None:
        return None
    chosen = {values} if isinstance(values, str) else set(values)
    unknown = sorted(chosen.difference(vocabulary))
    if unknown:
        raise InvalidQuery(
            f"unknown {field} {unknown}; known: {', '.join(vocabulary)}", field=field
        )
    return np.array([v in chosen for v in vocabulary], dtype=bool)


def amenity_mask(amenities: Iterable[str] | str | None) -> int:
    if amenities is None:
        return 0
    chosen = [amenities] if isinstance(amenities, str) else list(amenities)
    unknown = sorted(set(chosen).difference(AMENITY_BIT))
    if unknown:
        raise InvalidQuery(
            f"unknown amenities {unknown}; known: {', '.join(AMENITIES)}", field="amenities"
        )
    bits = 0
    for name in chosen:
        bits |= 1 << AMENITY_BIT[name]
    return bits


# --- filters ------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CompiledFilter:
    """A compiled set of query filters, bound to one index snapshot's vocabularies."""

    cls_any: NDArray[np.bool_]
    cls_org: NDArray[np.bool_]
    org_codes: NDArray[np.int32]
    amenity_bits: int
    min_stars: int
    open_at: datetime | None
    static_key: tuple[Any, ...]
    static_trivial: bool
    pass_share: float
