"""Sampling districts: local azimuthal equidistant projections, equal-area grids,
population points."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike, NDArray
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

from geodata.boundaries import assign_adcode
from geodata.errors import InvalidInput, UnknownDistrict
from geodata.geodesy import GEOD

FloatArray = NDArray[np.float64]

_AEQD = "+proj=aeqd +lat_0={lat:.9f} +lon_0={lon:.9f} +ellps=WGS84"
#: Metres per degree of latitude, a lower bound (at the equator) used for conservative margins.
_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LON_EQUATOR = 111_320.0

AREA_BASIS_POLYGON = "district polygons (include water where the boundary does)"


def local_projection(lon0_deg: float, lat0_deg: float) -> tuple[Transformer, Transformer]:
    """Azimuthal equidistant projection centred on a point, in metres.

    Parameters
    ----------
    lon0_deg, lat0_deg
        Centre, WGS-84 degrees.

    Returns
    -------
    tuple of pyproj.Transformer
        ``(to_local, to_lonlat)``: WGS-84 lon/lat degrees -> local x/y metres, and back.
    """
    aeqd = _AEQD.format(lon=lon0_deg, lat=lat0_deg)
    # explicit pipelines: 0.2 ms to build, against ~50 ms for a CRS-to-CRS transformer
    to_local = Transformer.from_pipeline(
        f"+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad +step {aeqd}"
    )
    to_lonlat = Transformer.from_pipeline(
        f"+proj=pipeline +step +inv {aeqd} +step +proj=unitconvert +xy_in=rad +xy_out=deg"
    )
    return to_local, to_lonlat


@dataclass(frozen=True)
class PopulationLayer:
    """People as weighted points (WGS-84), e.g. the cell centres of a population raster.

    Attributes
    ----------
    lon, lat
        WGS-84 degrees.
    weight
        Persons per point (non-negative).
    name
        What the layer is (shown in results as ``population_basis``), e.g. "GHS-POP 2020 100 m".
    """

    lon: FloatArray
    lat: FloatArray
    weight: FloatArray
    name: str

    def __post_init__(self) -> None:
        if not (self.lon.shape == self.lat.shape == self.weight.shape and self.lon.ndim == 1):
            raise InvalidInput("population lon, lat and weight must be 1-D of one length")
        if np.any(~np.isfinite(self.weight)) or np.any(self.weight < 0):
            raise InvalidInput("population weights must be finite and non-negative")

    @classmethod
    def from_points(
        cls, lon: ArrayLike, lat: ArrayLike, weight: ArrayLike, *, name: str
    ) -> PopulationLayer:
        """Build a layer from WGS-84 points and their persons."""
        return cls(
            np.asarray(lon, dtype=np.float64).ravel(),
            np.asarray(lat, dtype=np.float64).ravel(),
            np.asarray(weight, dtype=np.float64).ravel(),
            name,
        )

    @classmethod
    def from_raster(
        cls,
        values: ArrayLike,
        *,
        west_deg: float,
        north_deg: float,
        cell_deg: float | tuple[float, float],
        name: str,
        nodata: float | None = None,
    ) -> PopulationLayer:
        """Build a layer from a north-up WGS-84 raster of persons per cell.

        Parameters
        ----------
        values
            2-D array (rows north to south), persons per cell.
        west_deg, north_deg
            Longitude of the west edge and latitude of the north edge of the raster, degrees.
        cell_deg
            Cell size in degrees, one value or ``(dlon, dlat)``.
        name
            Layer description.
        nodata
            Value marking empty cells (dropped), besides NaN.
        """
        grid = np.asarray(values, dtype=np.float64)
        if grid.ndim != 2:
            raise InvalidInput("population raster must be 2-D", field="values")
        dlon, dlat = (cell_deg, cell_deg) if isinstance(cell_deg, int | float) else cell_deg
        keep = np.isfinite(grid) & (grid > 0)
        if nodata is not None:
            keep &= grid != nodata
        rows, cols = np.nonzero(keep)
        lon = west_deg + (cols + 0.5) * dlon
        lat = north_deg - (rows + 0.5) * dlat
        return cls(lon.astype(np.float64), lat.astype(np.float64), grid[keep], name)


@dataclass(frozen=True, eq=False)
class DistrictCells:
    """The sample cells of one district in its local projection.

    Attributes
    ----------
    adcode, name
        District code and name.
    population
        2020 census residents, or ``None``.
    area_km2
        Geodesic area of the basis (the polygon, or its land part), km2.
    cell_m
        Side of the square sample cells, metres.
    x_m, y_m
        Cell centres in the local azimuthal equidistant projection, metres.
    polygon_local
        The basis polygon in local metres.
    bounds_deg
        ``(west, south, east, north)`` of the basis polygon, WGS-84 degrees.
    to_local, to_lonlat
        Transformers WGS-84 degrees <-> local metres.
    pop_x_m, pop_y_m, pop_weight
        Population points inside the district (local metres, persons); empty without a layer.
    """

    adcode: str
    name: str
    population: int | None
    area_km2: float
    cell_m: float
    x_m: FloatArray
    y_m: FloatArray
    polygon_local: BaseGeometry
    bounds_deg: tuple[float, float, float, float]
    to_local: Transformer
    to_lonlat: Transformer
    pop_x_m: FloatArray
    pop_y_m: FloatArray
    pop_weight: FloatArray

    @property
    def n_cells(self) -> int:
        """Number of sample cells."""
        return int(self.x_m.size)

    @functools.cached_property
    def lattice(self) -> tuple[int, int, NDArray[np.intp]]:
        """``(ix0, iy0, table)``: ``table[iy - iy0, ix - ix0]`` is the index of the cell whose
        centre is ``((ix + 0.5) * cell_m, (iy + 0.5) * cell_m)``, or -1; built on first use."""
        ix = np.floor(self.x_m / self.cell_m).astype(np.intp)
        iy = np.floor(self.y_m / self.cell_m).astype(np.intp)
        if ix.size == 0:
            return 0, 0, np.full((0, 0), -1, dtype=np.intp)
        ix0, iy0 = int(ix.min()), int(iy.min())
        table = np.full((int(iy.max()) - iy0 + 1, int(ix.max()) - ix0 + 1), -1, dtype=np.intp)
        table[iy - iy0, ix - ix0] = np.arange(ix.size)
        return ix0, iy0, table

    def count_within(self, fx_m: FloatArray, fy_m: FloatArray, radius_m: float) -> NDArray[np.intp]:
        """Number of the given points (local metres) within ``radius_m`` of each cell centre.

        Works on the cell lattice, so its cost grows with points x cells per circle; meant for
        few points per district.
        """
        ix0, iy0, table = self.lattice
        size = self.cell_m
        reach = math.ceil(radius_m / size) + 1
        steps = np.arange(-reach, reach + 1)
        ox, oy = (a.ravel() for a in np.meshgrid(steps, steps))
        ci = np.floor(fx_m / size).astype(np.intp)[:, None] + ox[None, :]
        cj = np.floor(fy_m / size).astype(np.intp)[:, None] + oy[None, :]
        dx = (ci + 0.5) * size - fx_m[:, None]
        dy = (cj + 0.5) * size - fy_m[:, None]
        ti, tj = ci - ix0, cj - iy0
        keep = (
            (dx * dx + dy * dy <= radius_m * radius_m)
            & (ti >= 0)
            & (ti < table.shape[1])
            & (tj >= 0)
            & (tj < table.shape[0])
        )
        index = table[tj[keep], ti[keep]]
        return np.bincount(index[index >= 0], minlength=self.n_cells)


@dataclass(frozen=True, eq=False)
class SampleGrid:
    """Sample cells of a set of districts, built once by :func:`build_sample_grid`.

    Attributes
    ----------
    districts
        The district frame (WGS-84) the grid was built from.
    cells
        One :class:`DistrictCells` per district, in frame order.
    area_basis
        What the area shares are shares of ("district polygons ..." or "land mask: <name>").
    population_basis
        Name of the population layer, or ``None``.
    """

    districts: gpd.GeoDataFrame
    cells: tuple[DistrictCells, ...]
    area_basis: str
    population_basis: str | None
    _by_adcode: dict[str, int] = field(repr=False)

    def district(self, adcode: str) -> DistrictCells:
        """Cells of one district.

        Raises
        ------
        UnknownDistrict
            If ``adcode`` is not in the grid.
        """
        try:
            return self.cells[self._by_adcode[str(adcode)]]
        except KeyError:
            raise UnknownDistrict(f"unknown district adcode {adcode!r}") from None

    @property
    def n_cells(self) -> int:
        """Total number of sample cells."""
        return sum(c.n_cells for c in self.cells)


def _auto_cell_m(area_m2: float, max_cells: int, min_cell_m: float) -> float:
    return max(min_cell_m, math.sqrt(area_m2 / max_cells))


def grid_points_in(polygon: BaseGeometry, cell_m: float) -> tuple[FloatArray, FloatArray]:
    """Centres of a regular ``cell_m`` grid (aligned on the origin) inside ``polygon``.

    ``polygon`` and the returned x/y arrays are in the same planar metres.
    """
    if polygon.is_empty:
        return np.empty(0), np.empty(0)
    minx, miny, maxx, maxy = polygon.bounds
    xs = (np.arange(math.floor(minx / cell_m), math.ceil(maxx / cell_m)) + 0.5) * cell_m
    ys = (np.arange(math.floor(miny / cell_m), math.ceil(maxy / cell_m)) + 0.5) * cell_m
    mesh_x, mesh_y = np.meshgrid(xs, ys)
    gx, gy = mesh_x.ravel(), mesh_y.ravel()
    shapely.prepare(polygon)
    inside = shapely.contains_xy(polygon, gx, gy)
    return gx[inside], gy[inside]


def _to_local(geometry: BaseGeometry, transformer: Transformer) -> BaseGeometry:
    def project(coords: FloatArray) -> FloatArray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geometry, project)


def _geodesic_area_km2(geometry: BaseGeometry) -> float:
    if geometry.is_empty:
        return 0.0
    return abs(GEOD.geometry_area_perimeter(shapely.make_valid(geometry))[0]) / 1e6


def _land_geometry(land_mask: BaseGeometry | gpd.GeoDataFrame | gpd.GeoSeries) -> BaseGeometry:
    if isinstance(land_mask, gpd.GeoDataFrame | gpd.GeoSeries):
        if land_mask.crs is not None and land_mask.crs.to_epsg() != 4326:
            raise InvalidInput("land mask must be in WGS-84 (EPSG:4326)", field="land_mask")
        return shapely.union_all(np.asarray(land_mask.geometry.values))
    return land_mask


def build_sample_grid(
    districts: gpd.GeoDataFrame,
    *,
    max_cells_per_district: int = 30_000,
    min_cell_m: float = 25.0,
    cell_m: float | None = None,
    land_mask: BaseGeometry | gpd.GeoDataFrame | gpd.GeoSeries | None = None,
    land_mask_name: str = "land mask",
    population: PopulationLayer | None = None,
) -> SampleGrid:
    """Lay equal-area sample cells over each district, once per boundary set.

    Parameters
    ----------
    districts
        Frame from :func:`geodata.boundaries.load_districts` (``adcode``, ``name``,
        ``population``, MultiPolygon geometry in EPSG:4326).
    max_cells_per_district
        Cell size is chosen per district as ``max(min_cell_m, sqrt(area / max_cells))``.
    min_cell_m
        Smallest cell side, metres.
    cell_m
        Fixed cell side for every district, metres (overrides the automatic choice).
    land_mask
        Land polygons (WGS-84); areas, shares and gaps are then about the land part only.
    land_mask_name
        Description of the land mask for ``area_basis``.
    population
        People as weighted points for population-weighted shares.

    Returns
    -------
    SampleGrid
    """
    if districts.crs is None or districts.crs.to_epsg() != 4326:
        raise InvalidInput("districts must be in WGS-84 (EPSG:4326)", field="districts")
    if cell_m is not None and not cell_m > 0:
        raise InvalidInput("cell_m must be positive", field="cell_m")
    land = None if land_mask is None else _land_geometry(land_mask)
    if land is not None:
        shapely.prepare(land)
    pop_adcode = None
    if population is not None:
        pop_adcode = assign_adcode(population.lon, population.lat, districts)
    cells: list[DistrictCells] = []
    for row in districts.itertuples(index=False):
        adcode = str(row.adcode)
        basis = row.geometry if land is None else shapely.intersection(row.geometry, land)
        west, south, east, north = basis.bounds if not basis.is_empty else row.geometry.bounds
        centre = row.geometry.centroid
        to_local, to_lonlat = local_projection(centre.x, centre.y)
        polygon_local = _to_local(basis, to_local)
        area_km2 = _geodesic_area_km2(basis)
        size = cell_m or _auto_cell_m(area_km2 * 1e6, max_cells_per_district, min_cell_m)
        x_m, y_m = grid_points_in(polygon_local, size)
        if pop_adcode is not None and population is not None:
            mine = pop_adcode == adcode
            px, py = to_local.transform(population.lon[mine], population.lat[mine])
            pop_x, pop_y = np.asarray(px), np.asarray(py)
            pop_w = population.weight[mine]
        else:
            pop_x = pop_y = pop_w = np.empty(0)
        cells.append(
            DistrictCells(
                adcode=adcode,
                name=str(row.name),
                population=None if pd.isna(row.population) else int(row.population),
                area_km2=area_km2,
                cell_m=float(size),
                x_m=x_m,
                y_m=y_m,
                polygon_local=polygon_local,
                bounds_deg=(west, south, east, north),
                to_local=to_local,
                to_lonlat=to_lonlat,
                pop_x_m=pop_x,
                pop_y_m=pop_y,
                pop_weight=pop_w,
            )
        )
    return SampleGrid(
        districts=districts,
        cells=tuple(cells),
        area_basis=AREA_BASIS_POLYGON if land is None else f"land mask: {land_mask_name}",
        population_basis=None if population is None else population.name,
        _by_adcode={c.adcode: i for i, c in enumerate(cells)},
    )
