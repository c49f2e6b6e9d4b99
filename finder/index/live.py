"""The current index of a service, swapped atomically on update."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import pandas as pd

from finder.index.facility_index import FacilityIndex
from geodata.schema import (
    Facility,
)


class LiveIndex:
    """The current :class:`FacilityIndex` of a service, swapped atomically on update.

    Readers take :attr:`current` once per request and query that snapshot; writers call
    :meth:`apply` (or :meth:`replace`), which builds the next snapshot off to the side and
    publishes it with one reference assignment. Writers are serialised by a lock; readers never
    wait and never see a half-built index. The query after :meth:`apply` returns sees the
    change.
    """

    def __init__(self, index: FacilityIndex) -> None:
        self._current = index
        self._write_lock = threading.Lock()

    @property
    def current(self) -> FacilityIndex:
        """The snapshot to query now."""
        return self._current

    def apply(
        self,
        upserts: pd.DataFrame | Sequence[Facility] | None = None,
        deletes: Iterable[str] = (),
    ) -> FacilityIndex:
        """Add/replace ``upserts`` and remove ``deletes``; returns the published snapshot.

        Raises
        ------
        FacilityNotFound, InvalidInput
            As :meth:`FacilityIndex.with_changes`; the current snapshot is then unchanged.
        """
        with self._write_lock:
            self._current = self._current.with_changes(upserts, deletes)
            return self._current

    def replace(self, index: FacilityIndex) -> None:
        """Publish a freshly built index (e.g. rebuilt from the store)."""
        with self._write_lock:
            self._current = index
