"""Street networks from OpenStreetMap for walking: import, filter, save and load.

A :class:`StreetNetwork` is the plain data of a walking graph: node coordinates (WGS-84 lon/lat,
degrees), undirected edges as node-index pairs, and geodesic edge lengths in metres (pyproj
``Geod`` on the WGS-84 ellipsoid). Every edge is one straight segment between two consecutive
nodes of an OSM way, so edge geometry *is* the node pair. Only the largest connected part is
kept; the sizes of the parts that were dropped are reported in ``dropped_part_sizes``.

One-way tags are ignored: people walk both ways along a one-way street.

Which ways a pedestrian may use (:func:`is_walkable`):

* ``highway`` in :data:`WALKABLE_HIGHWAYS` (footway, path, steps, pedestrian, living_street,
  residential, service, unclassified, road, track, corridor, tertiary/secondary/primary and their
  links);
* ``highway=trunk`` / ``trunk_link`` (elevated expressways in Shanghai) and ``cycleway`` /
  ``bridleway`` only with ``foot=yes|designated|permissive`` or a ``sidewalk`` tag that is not
  ``no``/``none``;
* never ``motorway`` / ``motorway_link``, never ``foot=no``;
* ``access=private`` or ``access=no`` only with ``foot=yes|designated|permissive``.

Example
-------
>>> streets = streets_from_osm("shanghai.osm")  # doctest: +SKIP
>>> save_network(streets, "walk.npz")  # doctest: +SKIP
>>> load_network("walk.npz").n_nodes == streets.n_nodes  # doctest: +SKIP
True
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import osmium
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components

from geodata.errors import InvalidStreetNetwork
from geodata.geodesy import GEOD, invalid_degrees

__all__ = [
    "FOOT_ALLOWED",
    "WALKABLE_HIGHWAYS",
    "StreetNetwork",
    "is_walkable",
    "load_network",
    "save_network",
    "street_network_from_edges",
    "streets_from_osm",
]

WALKABLE_HIGHWAYS: frozenset[str] = frozenset(
    {
        "footway",
        "path",
        "steps",
        "pedestrian",
        "living_street",
        "residential",
        "service",
        "unclassified",
        "road",
        "track",
        "corridor",
        "tertiary",
        "tertiary_link",
        "secondary",
        "secondary_link",
        "primary",
        "primary_link",
    }
)
"""``highway`` values open to pedestrians unless tagged otherwise."""

_WALKABLE_ONLY_IF_FOOT: frozenset[str] = frozenset({"trunk", "trunk_link", "cycleway", "bridleway"})
_NEVER_WALKABLE: frozenset[str] = frozenset({"motorway", "motorway_link"})

FOOT_ALLOWED: frozenset[str] = frozenset({"yes", "designated", "permissive"})
"""``foot=*`` values that explicitly allow pedestrians."""

_SIDEWALK_KEYS = ("sidewalk", "sidewalk:both", "sidewalk:left", "sidewalk:right")
_NO_SIDEWALK = frozenset({"no", "none"})
_FORMAT_VERSION = 1

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def is_walkable(tags: Mapping[str, str]) -> bool:
    """Tell whether an OSM way with these tags may be walked.

    Parameters
    ----------
    tags : Mapping[str, str]
        The way's OSM tags (``highway``, ``foot``, ``access``, ``sidewalk``...).

    Returns
    -------
    bool
        ``True`` when a pedestrian may use the way (rules in the module docstring).

    Examples
    --------
    >>> is_walkable({"highway": "residential", "oneway": "yes"})
    True
    >>> is_walkable({"highway": "trunk"}), is_walkable({"highway": "trunk", "sidewalk": "both"})
    (False, True)
    """
    highway = tags.get("highway")
    if highway is None or highway in _NEVER_WALKABLE:
        return False
    foot = tags.get("foot")
    if foot == "no":
        return False
    foot_allowed = foot in FOOT_ALLOWED
    if tags.get("access") in {"private", "no"} and not foot_allowed:
        return False
    if highway in WALKABLE_HIGHWAYS:
        return True
    if highway in _WALKABLE_ONLY_IF_FOOT:
        has_sidewalk = any(tags.get(key) not in (None, *_NO_SIDEWALK) for key in _SIDEWALK_KEYS)
        return foot_allowed or has_sidewalk
    return False


@dataclass(frozen=True, eq=False)
class StreetNetwork:
    """An undirected walking graph: nodes in WGS-84, straight edges with geodesic lengths.

    Attributes
    ----------
    node_lon, node_lat : numpy.ndarray of float64, shape (n_nodes,)
        Node coordinates, WGS-84 degrees.
    node_osm_id : numpy.ndarray of int64, shape (n_nodes,)
        OSM node id of each node (-1 for nodes not from OSM, e.g. synthetic grids).
    edge_u, edge_v : numpy.ndarray of int64, shape (n_edges,)
        Node indices of each edge, ``edge_u < edge_v``; each street segment appears once.
    edge_length_m : numpy.ndarray of float64, shape (n_edges,)
        Geodesic length of each edge on the WGS-84 ellipsoid, metres (all > 0).
    dropped_part_sizes : tuple[int, ...]
        Node counts of the connected parts that were not the largest and were dropped,
        largest first (empty when the streets were connected).
    """

    node_lon: FloatArray
    node_lat: FloatArray
    node_osm_id: IntArray
    edge_u: IntArray
    edge_v: IntArray
    edge_length_m: FloatArray
    dropped_part_sizes: tuple[int, ...]

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return int(self.node_lon.shape[0])

    @property
    def n_edges(self) -> int:
        """Number of undirected edges."""
        return int(self.edge_u.shape[0])


def street_network_from_edges(
    node_lon: npt.ArrayLike,
    node_lat: npt.ArrayLike,
    edge_u: npt.ArrayLike,
    edge_v: npt.ArrayLike,
    *,
    node_osm_id: npt.ArrayLike | None = None,
) -> StreetNetwork:
    """Build a walking graph from node coordinates and straight edges.

    Nodes at identical coordinates are merged, self-loops and repeated edges are dropped, edge
    lengths are computed geodesically (WGS-84), and only the largest connected part is kept.

    Parameters
    ----------
    node_lon, node_lat : array_like of float, shape (n,)
        Node coordinates, WGS-84 degrees.
    edge_u, edge_v : array_like of int, shape (m,)
        Node indices (into ``node_lon``) of the two ends of each edge; direction is ignored.
    node_osm_id : array_like of int, shape (n,), optional
        OSM node ids kept with the nodes; ``-1`` for every node when omitted.

    Returns
    -------
    StreetNetwork
        The largest connected part, with ``dropped_part_sizes`` listing the other parts.

    Raises
    ------
    InvalidStreetNetwork
        If coordinates are not finite WGS-84 degrees, indices are out of range, or no edge of
        positive length remains.
    """
    lon = np.asarray(node_lon, dtype=np.float64).ravel()
    lat = np.asarray(node_lat, dtype=np.float64).ravel()
    u = np.asarray(edge_u, dtype=np.int64).ravel()
    v = np.asarray(edge_v, dtype=np.int64).ravel()
    osm_id = (
        np.full(lon.shape, -1, dtype=np.int64)
        if node_osm_id is None
        else np.asarray(node_osm_id, dtype=np.int64).ravel()
    )
    if lon.shape != lat.shape or osm_id.shape != lon.shape or u.shape != v.shape:
        raise InvalidStreetNetwork("node and edge arrays differ in length", field="edges")
    if not (np.all(np.isfinite(lon)) and np.all(np.isfinite(lat))):
        raise InvalidStreetNetwork("node coordinates must be finite", field="nodes")
    if invalid_degrees(lon, "lon").any() or invalid_degrees(lat, "lat").any():
        raise InvalidStreetNetwork("node coordinates must be WGS-84 degrees", field="nodes")
    n = lon.shape[0]
    if u.size and (min(int(u.min()), int(v.min())) < 0 or max(int(u.max()), int(v.max())) >= n):
        raise InvalidStreetNetwork("edge node index out of range", field="edges")

    # Merge nodes that share coordinates so that no edge has zero length.
    coords = np.stack([lon, lat], axis=1)
    _, first, inverse = np.unique(coords, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    u, v = inverse[u], inverse[v]
    lon, lat, osm_id = lon[first], lat[first], osm_id[first]

    a, b = np.minimum(u, v), np.maximum(u, v)
    keep = a != b
    pairs = np.unique(np.stack([a[keep], b[keep]], axis=1), axis=0)
    if pairs.shape[0] == 0:
        raise InvalidStreetNetwork("the streets have no edge of positive length", field="edges")
    a, b = pairs[:, 0], pairs[:, 1]
    return _largest_part(lon, lat, osm_id, a, b)


def _largest_part(
    lon: FloatArray, lat: FloatArray, osm_id: IntArray, a: IntArray, b: IntArray
) -> StreetNetwork:
    """Keep the largest connected part of a deduplicated edge list; compute edge lengths."""
    used = np.zeros(lon.shape[0], dtype=bool)
    used[a] = True
    used[b] = True
    n = lon.shape[0]
    graph = coo_array((np.ones(a.shape[0], dtype=np.int8), (a, b)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels[used])
    largest = int(np.argmax(sizes))
    other_sizes = np.delete(sizes, largest)
    dropped = tuple(int(s) for s in np.sort(other_sizes[other_sizes > 0])[::-1])

    keep_node = labels == largest
    new_index = np.cumsum(keep_node) - 1
    keep_edge = keep_node[a]
    a, b = new_index[a[keep_edge]], new_index[b[keep_edge]]
    lon, lat, osm_id = lon[keep_node], lat[keep_node], osm_id[keep_node]
    _, _, length_m = GEOD.inv(lon[a], lat[a], lon[b], lat[b])
    return StreetNetwork(
        node_lon=np.ascontiguousarray(lon),
        node_lat=np.ascontiguousarray(lat),
        node_osm_id=np.ascontiguousarray(osm_id),
        edge_u=np.ascontiguousarray(a, dtype=np.int64),
        edge_v=np.ascontiguousarray(b, dtype=np.int64),
        edge_length_m=np.asarray(length_m, dtype=np.float64),
        dropped_part_sizes=dropped,
    )


def streets_from_osm(path: str | os.PathLike[str]) -> StreetNetwork:
    """Read an OSM file (``.osm`` XML, ``.osm.pbf``, ...) into a walking graph.

    The file is read with pyosmium; the format follows the file suffix. Ways that pass
    :func:`is_walkable` become chains of straight edges between their consecutive nodes; one-way
    tags are ignored. Segments whose node locations are missing from the file are skipped.

    Parameters
    ----------
    path : str or os.PathLike
        OSM extract; coordinates are WGS-84 as in all OSM data.

    Returns
    -------
    StreetNetwork
        The largest connected walkable part (see :func:`street_network_from_edges`).

    Raises
    ------
    InvalidStreetNetwork
        If the file cannot be read or holds no walkable street.
    """
    file_path = Path(path)
    if not file_path.is_file():
        raise InvalidStreetNetwork(f"no OSM file at {file_path}", field="path")
    node_index: dict[int, int] = {}
    lons: list[float] = []
    lats: list[float] = []
    us: list[int] = []
    vs: list[int] = []

    def index_of(ref: int, lon: float, lat: float) -> int:
        found = node_index.get(ref)
        if found is None:
            found = len(lons)
            node_index[ref] = found
            lons.append(lon)
            lats.append(lat)
        return found

    processor = (
        osmium.FileProcessor(str(file_path))
        .with_locations()
        .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
        .with_filter(osmium.filter.KeyFilter("highway"))
    )
    try:
        for way in processor:
            if not isinstance(way, osmium.osm.Way) or not is_walkable(
                {tag.k: tag.v for tag in way.tags}
            ):
                continue
            previous: int | None = None
            for way_node in way.nodes:
                location = way_node.location
                if not location.valid():
                    previous = None
                    continue
                current = index_of(way_node.ref, location.lon, location.lat)
                if previous is not None:
                    us.append(previous)
                    vs.append(current)
                previous = current
    except RuntimeError as exc:
        raise InvalidStreetNetwork(f"cannot read OSM file {file_path.name}", field="path") from exc
    if not us:
        raise InvalidStreetNetwork(f"no walkable street in {file_path.name}", field="path")
    return street_network_from_edges(
        np.asarray(lons),
        np.asarray(lats),
        np.asarray(us),
        np.asarray(vs),
        node_osm_id=np.fromiter(node_index.keys(), dtype=np.int64, count=len(node_index)),
    )


def save_network(network: StreetNetwork, path: str | os.PathLike[str]) -> None:
    """Write a walking graph to a compressed ``.npz`` file.

    The file holds the node arrays (lon/lat WGS-84 degrees, OSM ids), the edge list and the
    edge lengths in metres, the dropped part sizes and a format version. ``numpy.savez``
    appends ``.npz`` to a path without that suffix; pass a path ending in ``.npz``.

    Parameters
    ----------
    network : StreetNetwork
        The graph to write.
    path : str or os.PathLike
        Destination file, e.g. beside the GeoPackage store.
    """
    np.savez_compressed(
        Path(path),
        format_version=np.int64(_FORMAT_VERSION),
        node_lon=network.node_lon,
        node_lat=network.node_lat,
        node_osm_id=network.node_osm_id,
        edge_u=network.edge_u,
        edge_v=network.edge_v,
        edge_length_m=network.edge_length_m,
        dropped_part_sizes=np.asarray(network.dropped_part_sizes, dtype=np.int64),
    )


def load_network(path: str | os.PathLike[str]) -> StreetNetwork:
    """Read a walking graph written by :func:`save_network`.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npz`` file from :func:`save_network`.

    Returns
    -------
    StreetNetwork
        The same arrays as were saved.

    Raises
    ------
    InvalidStreetNetwork
        If the file is missing, not a network file, of another format version, or inconsistent.
    """
    file_path = Path(path)
    try:
        with np.load(file_path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError) as exc:
        raise InvalidStreetNetwork(
            f"cannot read network file {file_path.name}", field="path"
        ) from exc
    required = {
        "format_version",
        "node_lon",
        "node_lat",
        "node_osm_id",
        "edge_u",
        "edge_v",
        "edge_length_m",
        "dropped_part_sizes",
    }
    if not required <= arrays.keys() or int(arrays["format_version"]) != _FORMAT_VERSION:
        raise InvalidStreetNetwork(f"{file_path.name} is not a walking network file", field="path")
    network = StreetNetwork(
        node_lon=arrays["node_lon"].astype(np.float64, copy=False),
        node_lat=arrays["node_lat"].astype(np.float64, copy=False),
        node_osm_id=arrays["node_osm_id"].astype(np.int64, copy=False),
        edge_u=arrays["edge_u"].astype(np.int64, copy=False),
        edge_v=arrays["edge_v"].astype(np.int64, copy=False),
        edge_length_m=arrays["edge_length_m"].astype(np.float64, copy=False),
        dropped_part_sizes=tuple(int(s) for s in arrays["dropped_part_sizes"]),
    )
    n = network.n_nodes
    consistent = (
        network.node_lat.shape == (n,)
        and network.node_osm_id.shape == (n,)
        and network.edge_v.shape == network.edge_u.shape == network.edge_length_m.shape
        and network.n_edges > 0
        and int(network.edge_u.min()) >= 0
        and int(network.edge_v.max()) < n
        and bool(np.all(network.edge_length_m > 0))
    )
    if not consistent:
        raise InvalidStreetNetwork(f"{file_path.name} holds an inconsistent network", field="path")
    return network
