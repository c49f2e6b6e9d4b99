"""Areas on foot: isochrones of one facility and the walking coverage of districts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from scipy.spatial import cKDTree
from shapely.geometry import MultiPolygon, Polygon

from finder.walk.network import (
    DEFAULT_MAX_SNAP_M,
    DEFAULT_SPEED_KMH,
    FloatArray,
    WalkNetwork,
    _check_positive,
    _gather_rows,
    _metres_per_degree,
)
from finder.walk.search import nearest_walk_many
from finder.walk.tables import FacilityTable

if TYPE_CHECKING:
    from finder.coverage import SampleGrid


@dataclass(frozen=True, eq=False)
class WalkCoverage:
    """Share of sample points within a walking time of the nearest facility.

    Attributes
    ----------
    n_points : int
        Sample points given.
    n_within : int
        Points whose whole walk (snap legs included) fits within the time.
    n_off_network : int
        Points farther than ``max_snap_m`` from any street; counted as not within. Callers may
        fall back to a straight-line test for them.
    share : float
        ``n_within / n_points`` (0 when there are no points).
    walk_m : numpy.ndarray of float64
        Per point walk to the nearest facility, metres (``inf`` off the network).
    """

    n_points: int
    n_within: int
    n_off_network: int
    share: float
    walk_m: FloatArray


def walk_coverage_share(
    network: WalkNetwork,
    table: FacilityTable,
    sample_lon: npt.ArrayLike,
    sample_lat: npt.ArrayLike,
    *,
    minutes: float,
    speed_kmh: float = DEFAULT_SPEED_KMH,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
) -> WalkCoverage:
    """Share of sample points (e.g. a district grid) within ``minutes`` on foot of a facility.

    Parameters
    ----------
    network : WalkNetwork
        The walking network.
    table : FacilityTable
        Facilities of one kind.
    sample_lon, sample_lat : array_like of float
        Sample points, WGS-84 degrees.
    minutes : float
        Walking time, minutes.
    speed_kmh : float, default 4.8
        Walking speed, km/h.
    max_snap_m : float, default 500
        Largest straight distance from a point to a street, metres.

    Returns
    -------
    WalkCoverage

    Raises
    ------
    InvalidInput
        If ``minutes`` or ``speed_kmh`` is not positive, or coordinates are invalid.
    """
    budget_m = _check_positive(minutes, "minutes") * 60.0 * _check_positive(speed_kmh, "speed_kmh")
    budget_m /= 3.6
    nearest = nearest_walk_many(network, table, sample_lon, sample_lat, max_snap_m=max_snap_m)
    n_points = int(nearest.walk_m.shape[0])
    n_within = int(np.count_nonzero(nearest.walk_m <= budget_m))
    return WalkCoverage(
        n_points=n_points,
        n_within=n_within,
        n_off_network=int(np.count_nonzero(~nearest.on_network)),
        share=n_within / n_points if n_points else 0.0,
        walk_m=nearest.walk_m,
    )


def isochrone(
    network: WalkNetwork,
    lon: float,
    lat: float,
    *,
    minutes: float,
    speed_kmh: float = DEFAULT_SPEED_KMH,
    buffer_m: float = 40.0,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
    quad_segs: int = 2,
) -> Polygon | MultiPolygon:
    """The area within ``minutes`` on foot of a point (e.g. a facility), WGS-84.

    Streets reachable within the budget (``minutes * speed`` minus the point's snap leg), whole
    and partial edges, are merged into polylines, buffered by ``buffer_m`` in a local metric
    frame around the point (equirectangular, WGS-84 radii at the point's latitude) and unioned.
    The result is a (possibly multi-part) polygon in lon/lat degrees, ready for
    ``shapely.geometry.mapping`` / GeoJSON.

    Parameters
    ----------
    network : WalkNetwork
        The walking network.
    lon, lat : float
        The point, WGS-84 degrees.
    minutes : float
        Walking time, minutes.
    speed_kmh : float, default 4.8
        Walking speed, km/h.
    buffer_m : float, default 40
        Half-width of the band around reachable streets, metres.
    max_snap_m : float, default 500
        Largest straight distance from the point to a street, metres.
    quad_segs : int, default 2
        Segments per quarter circle of the buffer's round ends.

    Returns
    -------
    shapely.geometry.Polygon or shapely.geometry.MultiPolygon
        Empty polygon when the snap leg alone uses up the budget.

    Raises
    ------
    OffNetwork
        If the point is farther than ``max_snap_m`` from every street.
    InvalidInput
        If ``minutes``, ``speed_kmh`` or ``buffer_m`` is not positive.
    """
    from scipy.sparse.csgraph import dijkstra  # walking only: not loaded by a lean worker

    budget_m = _check_positive(minutes, "minutes") * 60.0 * _check_positive(speed_kmh, "speed_kmh")
    budget_m = budget_m / 3.6
    buffer_m = _check_positive(buffer_m, "buffer_m")
    snap = network.snap(lon, lat, max_snap_m=max_snap_m)
    reach_m = budget_m - snap.snap_m
    if reach_m <= 0:
        return Polygon()
    streets = network.streets
    length_m = float(streets.edge_length_m[snap.edge])
    a, b = int(streets.edge_u[snap.edge]), int(streets.edge_v[snap.edge])
    two = dijkstra(network.adjacency, directed=True, indices=[a, b], limit=reach_m)
    dist = np.minimum(two[0] + snap.offset_m, two[1] + (length_m - snap.offset_m))

    reached = np.flatnonzero(dist <= reach_m)
    entry = _gather_rows(network.adjacency.indptr.astype(np.int64), reached)
    edges = np.unique(network.adjacency_edge[entry])
    length = streets.edge_length_m[edges]
    du = dist[streets.edge_u[edges]]
    dv = dist[streets.edge_v[edges]]
    full = (du + dv + length) / 2 <= reach_m
    with np.errstate(invalid="ignore"):
        end_u = np.where(full, 1.0, np.clip((reach_m - du) / length, 0.0, 1.0))
        start_v = np.where(full, 1.0, np.clip(1.0 - (reach_m - dv) / length, 0.0, 1.0))
    from_u = full | (du <= reach_m)
    from_v = ~full & (dv <= reach_m)
    piece_edge = np.concatenate([edges[from_u], edges[from_v], [snap.edge]])
    piece_start = np.concatenate([np.zeros(int(from_u.sum())), start_v[from_v]])
    piece_end = np.concatenate([end_u[from_u], np.ones(int(from_v.sum()))])
    piece_start = np.append(piece_start, max(0.0, snap.fraction - reach_m / length_m))
    piece_end = np.append(piece_end, min(1.0, snap.fraction + reach_m / length_m))

    kx, ky = _metres_per_degree(np.array([lat]))
    u, v = streets.edge_u[piece_edge], streets.edge_v[piece_edge]
    ux, uy = (streets.node_lon[u] - lon) * kx[0], (streets.node_lat[u] - lat) * ky[0]
    vx, vy = (streets.node_lon[v] - lon) * kx[0], (streets.node_lat[v] - lat) * ky[0]
    start = np.stack([ux + piece_start * (vx - ux), uy + piece_start * (vy - uy)], axis=1)
    end = np.stack([ux + piece_end * (vx - ux), uy + piece_end * (vy - uy)], axis=1)
    keep = piece_end > piece_start
    lines = shapely.linestrings(np.stack([start[keep], end[keep]], axis=1))
    merged = shapely.get_parts(shapely.line_merge(shapely.multilinestrings(lines)))
    area = shapely.union_all(shapely.buffer(merged, buffer_m, quad_segs=quad_segs))
    scale = np.array([kx[0], ky[0]])
    origin = np.array([lon, lat])
    return cast(Polygon | MultiPolygon, shapely.transform(area, lambda xy: xy / scale + origin))


def walk_coverage_by_district(
    grid: SampleGrid,
    network: WalkNetwork,
    table: FacilityTable,
    *,
    minutes: float = 15.0,
    speed_kmh: float = DEFAULT_SPEED_KMH,
    radius_m: float = 1000.0,
    adcodes: Sequence[str] | None = None,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
) -> pd.DataFrame:
    """Per district: share within ``minutes`` on foot beside share within ``radius_m`` in a line.

    The sample points are the coverage grid's cells (:func:`finder.coverage.build_sample_grid`).
    Both shares are taken over the same points: those within ``max_snap_m`` of the walking
    network (a district the loaded network covers only in part is compared where it is
    covered; ``points_on_network`` says how much that is); an on-network point that reaches no
    facility along the network counts as not within. Straight-line distances are metres in
    the district's local azimuthal equidistant projection.

    Returns
    -------
    pandas.DataFrame
        ``adcode``, ``name``, ``points``, ``points_on_network``, ``walk_share``, ``line_share``,
        ``minutes``, ``radius_m``; shares are NaN where no point is on the network.
    """
    budget_m = _check_positive(minutes, "minutes") * _check_positive(speed_kmh, "speed_kmh") / 3.6
    budget_m *= 60.0
    rows = []
    for cells in grid.cells:
        if adcodes is not None and cells.adcode not in adcodes:
            continue
        lon, lat = cells.to_lonlat.transform(cells.x_m, cells.y_m)
        walks = nearest_walk_many(network, table, lon, lat, max_snap_m=max_snap_m)
        on = walks.on_network
        n_on = int(np.count_nonzero(on))
        walk_share = line_share = float("nan")
        if n_on:
            walk_share = float(np.mean(walks.walk_m[on] <= budget_m))
            line_share = 0.0
            if len(table.lon):
                fx, fy = cells.to_local.transform(table.lon, table.lat)
                line_m, _ = cKDTree(np.column_stack([fx, fy])).query(
                    np.column_stack([cells.x_m[on], cells.y_m[on]])
                )
                line_share = float(np.mean(line_m <= radius_m))
        rows.append(
            {
                "adcode": cells.adcode,
                "name": cells.name,
                "points": len(on),
                "points_on_network": n_on,
                "walk_share": walk_share,
                "line_share": line_share,
                "minutes": minutes,
                "radius_m": radius_m,
            }
        )
    return pd.DataFrame(rows)
