"""The paper of the printed maps (:mod:`maps.printmap`, :mod:`maps.atlas`): sizes, orientations.

Its own small module so that the CLI and the API can offer the choices without loading the
plotting stack.
"""

from __future__ import annotations

from typing import Literal, get_args

Paper = Literal["A4", "A3"]
Orientation = Literal["portrait", "landscape"]

#: The paper sizes, in the order offered.
PAPERS: tuple[str, ...] = get_args(Paper)
#: The page orientations, in the order offered.
ORIENTATIONS: tuple[str, ...] = get_args(Orientation)
#: Paper sizes, portrait width x height, millimetres (ISO 216).
PAPER_MM: dict[str, tuple[float, float]] = {"A4": (210.0, 297.0), "A3": (297.0, 420.0)}
