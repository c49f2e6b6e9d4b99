"""What index queries answer: one result per facility, or arrays for batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

#: Walking speed behind ``walk_s_est``: 4.8 km/h, straight line, no detour factor.
WALK_SPEED_M_S = 4.8 / 3.6


class NearestResult(NamedTuple):
    """One facility found by a query, seen from the query point (an immutable named tuple).

    Attributes
    ----------
    facility_id
        The facility's id.
    position
        Its position in this index snapshot (for :meth:`FacilityIndex.record`); positions change
        when the index is rebuilt, ids do not.
    distance_m
        Geodesic distance on the WGS-84 ellipsoid, metres.
    bearing_deg
        Forward azimuth from the query point to the facility, degrees clockwise from north.
    walk_s_est
        Straight-line walking time estimate, seconds: ``distance_m / WALK_SPEED_M_S``, with no
        detour factor (a walking route is ``finder.walk``'s job).
    lon, lat
        The facility's location in ``crs``, degrees.
    crs
        The coordinate system of ``lon``/``lat``: the one the caller asked for.
    """

    facility_id: str
    position: int
    distance_m: float
    bearing_deg: float
    walk_s_est: float
    lon: float
    lat: float
    crs: str


@dataclass(frozen=True, slots=True)
class BatchNearest:
    """Answers of :meth:`FacilityIndex.nearest_batch`, one row per query point.

    ``positions[i, j]`` is the position of the ``j``-th nearest passing facility of query ``i``
    (``-1`` where fewer than ``k`` exist within ``max_distance_m``) and ``distance_m[i, j]`` its
    geodesic distance in metres (NaN there). Rows are ordered by distance, ties by facility id.
    """

    positions: NDArray[np.int64]
    distance_m: NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class BatchWithin:
    """Answers of :meth:`FacilityIndex.within_batch` in compressed-row form.

    The facilities of query ``i`` are ``positions[offsets[i]:offsets[i + 1]]`` with geodesic
    distances ``distance_m[offsets[i]:offsets[i + 1]]`` (metres), nearest first, ties by id.
    """

    offsets: NDArray[np.int64]
    positions: NDArray[np.int64]
    distance_m: NDArray[np.float64]

    def counts(self) -> NDArray[np.int64]:
        """How many facilities each query point has within the radius."""
        return np.diff(self.offsets)
