"""Domain errors of the library packages, one place for all of them.

Each class subclasses ``ValueError`` (bad input) or ``LookupError`` (missing thing) and carries a
message that is safe to show to users. ``api/errors.py`` maps each class to an HTTP status once.
"""

from __future__ import annotations


class FinderError(Exception):
    """Base class of every domain error raised by geodata, finder and maps."""


class InvalidInput(FinderError, ValueError):
    """An input value is malformed; ``field`` names the offending parameter or column."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(FinderError, LookupError):
    """A requested object does not exist (or is not visible to the caller)."""


class UnknownDistrict(NotFound):
    """A district adcode is not among the loaded district boundaries."""


class NationalBoundariesMissing(UnknownDistrict):
    """An adcode outside the loaded boundaries was asked for and the national boundaries (the
    optional ``china`` extra) are not installed; the message names ``pip install ".[china]"``."""


class InvalidStreetNetwork(InvalidInput):
    """A street network file (OSM extract or saved ``.npz``) is unreadable or holds no streets."""


class OffNetwork(FinderError, LookupError):
    """A point or facility cannot be placed on the walking network.

    Raised when no walking network is loaded, or the point lies farther than ``max_snap_m`` from
    any street. Callers fall back to straight-line answers and mark them as such. ``snap_m`` is
    the distance to the nearest street in metres when known (``None`` when there is no network or
    no street within the search radius).
    """

    def __init__(self, message: str, *, snap_m: float | None = None) -> None:
        super().__init__(message)
        self.snap_m = snap_m


class FacilityNotFound(NotFound):
    """No facility has the given id (or the caller may not see it)."""


class ReportNotFound(NotFound):
    """No report has the given id (or the token does not match it, or the caller may not see
    its facility)."""


class PhotoNotFound(NotFound):
    """A facility has no photo with the given number."""


class InvalidPhoto(InvalidInput):
    """An uploaded photo is not a readable JPEG, PNG or WebP image, or is too large."""


class StoreError(FinderError, RuntimeError):
    """The store cannot do what was asked (bad file, refused row, unknown schema version)."""


class VersionConflict(FinderError, ValueError):
    """A write was based on an outdated version of a facility (or the id is taken)."""


class InvalidOpeningHours(InvalidInput):
    """An ``opening_hours`` value is not valid OpenStreetMap opening-hours syntax.

    The message names the expression and where parsing stopped; ``field`` is ``"opening_hours"``.
    """


class InvalidHolidayCalendar(InvalidInput):
    """A holiday calendar file (CSV: date, type, name) is malformed; the message names the line."""


class CalendarYearNotCovered(NotFound):
    """A date lies in a year that the loaded holiday calendar does not cover."""


class UnreadableFile(FinderError, ValueError):
    """An input file cannot be read at all (missing, unknown type, wrong encoding, corrupt)."""


class FileTooLarge(UnreadableFile):
    """An input file would expand past a limit of the readers (``geodata.readers.ReadLimits``).

    The message names the file and the limit; ``limit`` is the limit's name
    (``max_expanded_mb``, ``max_ratio``, ``max_rows`` or ``max_cells``).
    """

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


class InvalidCoordinate(InvalidInput):
    """A longitude or latitude is not a finite number in its range (:mod:`geodata.geodesy`)."""


class InvalidQuery(InvalidInput):
    """A query parameter is out of its domain (``k < 1``, a negative radius, an unknown kind)."""


class UnknownCRS(InvalidInput):
    """A coordinate-system name is not one of the supported systems or their aliases.

    Raised by ``geodata.crs.parse_crs``; the message lists the accepted names.
    """


class StoreUnavailable(StoreError):
    """The store cannot serve the call now: unreachable, timed out, locked, full or read-only.

    Raised by both stores for failures of the database rather than of the request; retrying
    later may succeed. ``user_msg`` is safe to show to users (the message may name hosts or
    files); ``retry_after_s`` suggests when to try again, in seconds.
    """

    user_msg = "the facility store is unavailable; try again later"

    def __init__(self, message: str, *, retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StoreBusy(StoreUnavailable):
    """Another writer held the store's write lock for longer than the lock timeout."""

    user_msg = "the facility store is busy with another write; try again later"


class StoreFull(StoreUnavailable):
    """The disk (or the database's size limit) is full; nothing was written."""

    user_msg = "the facility store is full; nothing was written"


class StoreReadOnly(StoreUnavailable):
    """The store can be read but not written (read-only file, directory or file system)."""

    user_msg = "the facility store is read-only; nothing was written"
