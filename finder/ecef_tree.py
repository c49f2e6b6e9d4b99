"""The KD-tree over the facilities' ECEF points, and its arrays for the shared table file.

:func:`build_ecef_tree` lays the points out in Z-order (:func:`finder.geodesy.spatial_order`),
converts them to Earth-centred coordinates (:func:`finder.geodesy.ecef_from_lonlat`) and builds a
scipy ``cKDTree`` over them. :meth:`EcefTree.arrays` and :func:`ecef_tree_from_arrays` turn a tree
into flat arrays and back without copying the points, the tree's permutation or the Z-order, so
that a tree kept in a memory-mapped table file (:mod:`finder.table_file`) is shared by every
process that maps the file instead of being built by each. Only the node array (about 6 bytes
per point) is copied into each process: scipy keeps it in its own buffer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from finder import geodesy

#: KD-tree leaf size: 32 keeps the build fast and the nodes small. Nodes are split at the sliding
#: midpoint (fast to build) and shrunk to the points they hold (``compact_nodes``): at 1,000,000
#: facilities that costs 0.05 s of build and saves a sixth of the batch k-nearest search.
LEAF_SIZE = 32
#: The node layout of a saved tree is scipy's own (its pickle state): a tree saved by another
#: scipy version is not used.
TREE_LAYOUT = f"scipy-{scipy.__version__}"


@dataclass(frozen=True, eq=False)
class EcefTree:
    """A KD-tree over the ECEF points (metres) of ``n`` lon/lat points, in Z-order.

    Attributes
    ----------
    order
        For each tree point, the position of its lon/lat point in the input (a permutation of
        ``0..n-1``; ``int32`` below 2**31 points).
    tree
        The ``cKDTree`` over the ECEF points; ``tree.data[i]`` is input point ``order[i]``.
    """

    order: NDArray[np.int32] | NDArray[np.int64]
    tree: cKDTree

    @property
    def size(self) -> int:
        """The number of points."""
        return int(self.order.size)

    def arrays(self) -> dict[str, Any]:
        """The tree as arrays and numbers (views, no copies), for :func:`ecef_tree_from_arrays`.

        ``order``, ``points`` (``(n, 3)`` float64), ``indices`` (the tree's permutation) and
        ``nodes`` (bytes of scipy's node array) are arrays; ``leafsize``, ``mins`` and ``maxes``
        (the bounding box, metres) plain numbers.
        """
        state = self.tree.__getstate__()
        return {
            "order": self.order,
            "points": self.tree.data,
            "indices": self.tree.indices,
            "nodes": np.frombuffer(state[0], dtype=np.uint8),
            "leafsize": int(self.tree.leafsize),
            "mins": [float(v) for v in self.tree.mins],
            "maxes": [float(v) for v in self.tree.maxes],
        }


def _order_dtype(n: int) -> type[np.int32] | type[np.int64]:
    return np.int32 if n < 2**31 else np.int64


def _narrowed(order: NDArray[np.intp]) -> NDArray[np.int32] | NDArray[np.int64]:
    return order.astype(np.int32) if order.size < 2**31 else order.astype(np.int64)


def build_ecef_tree(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> EcefTree:
    """Build the KD-tree over WGS-84 points (degrees), laid out in Z-order.

    Examples
    --------
    >>> tree = build_ecef_tree(np.array([121.47, 121.50]), np.array([31.23, 31.24]))
    >>> tree.size
    2
    """
    order = _narrowed(geodesy.spatial_order(lon, lat))
    points = geodesy.ecef_from_lonlat(lon[order], lat[order])
    tree = cKDTree(points, leafsize=LEAF_SIZE, balanced_tree=False, compact_nodes=True)
    return EcefTree(order, tree)


def ecef_tree_from_arrays(
    *,
    order: NDArray[np.int32] | NDArray[np.int64],
    points: NDArray[np.float64],
    indices: NDArray[np.intp],
    nodes: NDArray[np.uint8],
    leafsize: int,
    mins: list[float],
    maxes: list[float],
) -> EcefTree:
    """The tree saved by :meth:`EcefTree.arrays`; ``points``, ``indices`` and ``order`` are used
    in place (they may be read-only views of a mapped file), ``nodes`` is copied.

    The arrays must come from :meth:`EcefTree.arrays` of the same scipy version
    (:data:`TREE_LAYOUT`) and be intact: scipy follows the node array without checking it.

    Raises
    ------
    ValueError
        When the arrays' shapes or types do not fit together.
    """
    n = int(order.size)
    if (
        points.shape != (n, 3)
        or points.dtype != np.float64
        or not points.flags.c_contiguous
        or indices.shape != (n,)
        or indices.dtype != np.intp
        or order.dtype != _order_dtype(n)
        or nodes.ndim != 1
        or len(mins) != 3
        or len(maxes) != 3
    ):
        raise ValueError("the saved KD-tree's arrays do not fit together")
    tree = cKDTree.__new__(cKDTree)
    tree.__setstate__(
        (
            nodes.view("S1"),  # scipy reads its node buffer from a bytes array
            points,
            n,
            3,
            int(leafsize),
            np.array(maxes, dtype=np.float64),
            np.array(mins, dtype=np.float64),
            indices,
            None,
            None,
        )
    )
    return EcefTree(order, tree)
