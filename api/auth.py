"""API keys and access control: who is asking, which facilities they may see and write.

Keys live in a JSON file (``FINDER_API_KEYS_FILE``), only as SHA-256 hashes::

    {"keys": [{"name": "jingan-editor", "sha256": "9f86d0...", "scopes": ["edit"],
               "organizations": [], "member": false, "created": "2026-12-06T02:00:00+00:00",
               "expires": "2027-07-01T00:00:00+08:00", "revoked": null}]}

A key is a random 256-bit token (``fk_`` + URL-safe base64), so a plain SHA-256 hash is as safe
as a slow password hash and costs microseconds per request. Clients send it as
``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

A key's ``organizations`` and ``member`` say *whose* non-public facilities it may see: the
``employees`` and ``members`` facilities of its organisations, and every ``members`` facility
when ``member`` is true. Its scopes say what it may *do*:

``read-private``
    read those facilities (a read-only key; it needs ``organizations`` or ``member``).
``edit``
    read them too, and create, replace, patch and delete the facilities it sees (a facility
    must stay visible to the key after the change), bulk imports, the audit trail of what it
    sees; the key's ``name`` is the actor in the audit trail.
``read-all``
    see every facility (administrators, planners; with ``edit``, write every facility).
``admin``
    list, create and revoke keys through the API (``/keys``, the console's keys page); it
    opens no facility by itself.

Without a key a client is anonymous and sees ``public`` facilities only; so does a key with
neither ``read-private``, ``edit`` nor ``read-all``. Every route filters facilities through
the caller's :class:`~geodata.schema.Viewer` in a :class:`finder.index.FacilityFilter` (many
facilities) or :meth:`geodata.schema.Viewer.may_see` (one facility), and a facility the caller
may not see answers exactly like a missing one.

Keys are added with :func:`create_api_key` (the plain key is returned once and never stored),
listed with :func:`list_api_keys` and revoked with :func:`revoke_api_key`. Every change
rewrites the file atomically (temporary file + rename, under a lock beside it), and
:class:`KeyRing` looks at the file before each request, so a revoked key is refused by every
worker from its next request, and an expired one from its expiry.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import hmac
import json
import logging
import math
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from finder.hours import LOCAL_TIMEZONE
from geodata.errors import InvalidInput, NotFound
from geodata.events import Device, EventLog
from geodata.schema import ANONYMOUS, Viewer

logger = logging.getLogger(__name__)

SCOPES: tuple[str, ...] = ("edit", "read-private", "read-all", "admin")
#: The scopes under which a key's ``organizations`` and ``member`` open non-public facilities.
_OPENING_SCOPES = frozenset({"edit", "read-private"})
KEY_PREFIX = "fk_"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_TIMES = ("created", "expires", "revoked")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller (``name`` is ``"anonymous"`` without a key)."""

    name: str
    scopes: frozenset[str]
    viewer: Viewer

    def has(self, scope: str) -> bool:
        """Whether the caller's key carries ``scope``."""
        return scope in self.scopes

    def may_write(self, access: str, organization: str | None) -> bool:
        """Whether the caller may write a facility of this access class and organisation.

        An ``edit`` key writes what it may see; a change is allowed when this holds for the
        facility both as it is and as it will be (no key gives a facility away).
        """
        return self.has("edit") and self.viewer.may_see(access, organization)


ANONYMOUS_PRINCIPAL = Principal("anonymous", frozenset(), ANONYMOUS)


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown of a key (``finder keys list``): never the key or its hash.

    ``created``, ``expires`` and ``revoked`` are timezone-aware (``None``: unknown for keys
    written by older versions, never expires, not revoked).
    """

    name: str
    scopes: tuple[str, ...]
    organizations: tuple[str, ...]
    member: bool
    created: dt.datetime | None
    expires: dt.datetime | None
    revoked: dt.datetime | None

    def status(self, now: dt.datetime) -> str:
        """``"revoked"``, ``"expired"`` (at ``now``) or ``"active"``."""
        if self.revoked is not None:
            return "revoked"
        if self.expires is not None and now >= self.expires:
            return "expired"
        return "active"

    def to_json(self, now: dt.datetime) -> dict[str, Any]:
        """The key's fields (ISO 8601 times or ``None``) and its :meth:`status` at ``now``."""
        return {
            "name": self.name,
            "scopes": list(self.scopes),
            "organizations": list(self.organizations),
            "member": self.member,
            "created": self.created.isoformat() if self.created else None,
            "expires": self.expires.isoformat() if self.expires else None,
            "revoked": self.revoked.isoformat() if self.revoked else None,
            "status": self.status(now),
        }


def hash_key(key: str) -> str:
    """The hex SHA-256 of a plain key (what the key file stores)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def expiry_from_date(last_day: str) -> dt.datetime:
    """The moment a key that works through ``last_day`` (``YYYY-MM-DD``) expires: the next
    midnight, China time.

    >>> expiry_from_date("2027-06-30").isoformat()
    '2027-07-01T00:00:00+08:00'

    Raises
    ------
    InvalidInput
        When ``last_day`` is not a date.
    """
    try:
        day = dt.date.fromisoformat(last_day)
    except ValueError:
        raise InvalidInput(
            f"expected a date YYYY-MM-DD, not {last_day!r}", field="expires"
        ) from None
    return dt.datetime.combine(
        day + dt.timedelta(days=1), dt.time(), tzinfo=ZoneInfo(LOCAL_TIMEZONE)
    )


def _principal(entry: Mapping[str, Any]) -> Principal:
    scopes = frozenset(str(s) for s in entry.get("scopes", ()))
    unknown = scopes - set(SCOPES)
    if unknown:
        raise InvalidInput(
            f"key {entry.get('name')!r} has unknown scopes {sorted(unknown)}", field="scopes"
        )
    if "read-all" in scopes:
        viewer = Viewer(see_all=True)
    elif scopes & _OPENING_SCOPES:
        viewer = Viewer(
            member=bool(entry.get("member", False)),
            organizations=frozenset(str(o) for o in entry.get("organizations", ())),
        )
    else:
        viewer = ANONYMOUS
    return Principal(str(entry["name"]), scopes, viewer)


def _time(entry: Mapping[str, Any], field: str) -> dt.datetime | None:
    value = entry.get(field)
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        moment = None
    if moment is None or moment.utcoffset() is None:
        raise InvalidInput(
            f"key {entry.get('name')!r}: {field} must be an ISO 8601 time with a UTC offset, "
            f"not {value!r}",
            field=field,
        )
    return moment


def _key_info(entry: Mapping[str, Any]) -> KeyInfo:
    times = {field: _time(entry, field) for field in _TIMES}
    return KeyInfo(
        name=str(entry["name"]),
        scopes=tuple(sorted(str(s) for s in entry.get("scopes", ()))),
        organizations=tuple(str(o) for o in entry.get("organizations", ())),
        member=bool(entry.get("member", False)),
        **times,
    )


def _read_key_file(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(
            f"cannot read the API key file {path}: {exc}", field="api_keys_file"
        ) from exc
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list) or not all(
        isinstance(k, dict)
        and isinstance(k.get("name"), str)
        and _HEX64.match(str(k.get("sha256", "")))
        for k in keys
    ):
        raise InvalidInput(
            f"{path}: expected {{'keys': [{{'name', 'sha256' (64 hex digits), ...}}]}}",
            field="api_keys_file",
        )
    for entry in keys:
        _principal(entry)
        _key_info(entry)
    return keys


def _write_key_file(path: Path, entries: list[dict[str, Any]]) -> None:
    """Replace the key file at once (a reader sees the old file or the new one, never half)."""
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"keys": entries}, out, ensure_ascii=False, indent=2)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def _changing(path: Path) -> Iterator[list[dict[str, Any]]]:
    """The entries of the key file to change in place; written back when the block ends.

    An exclusive lock on ``<file>.lock`` makes concurrent changes (two ``finder keys``
    commands) wait for each other instead of losing one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_name(path.name + ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        entries = _read_key_file(path)
        yield entries
        _write_key_file(path, entries)


def create_api_key(
    path: str | Path,
    name: str,
    scopes: Iterable[str],
    organizations: Iterable[str] = (),
    *,
    member: bool = False,
    expires: dt.datetime | None = None,
) -> str:
    """Add a key to the key file (created if missing) and return the plain key, once.

    Parameters
    ----------
    path
        The JSON key file (``FINDER_API_KEYS_FILE``).
    name
        Unique name of the key (revoked keys included); the actor in the audit trail.
    scopes
        Any of :data:`SCOPES`.
    organizations, member
        Whose non-public facilities a ``read-private`` or ``edit`` key sees (and with
        ``edit`` writes).
    expires
        Timezone-aware moment from which the key is refused (see :func:`expiry_from_date`);
        ``None``: never.

    Raises
    ------
    InvalidInput
        For an unknown scope, an empty or duplicate name, ``read-private`` without
        organisations or membership, an expiry that is naive or not in the future, or an
        unreadable key file.
    """
    path = Path(path)
    scope_set = sorted(set(scopes))
    organization_set = sorted(set(organizations))
    if not name.strip():
        raise InvalidInput("a key needs a name", field="name")
    if scope_set == ["read-private"] and not organization_set and not member:
        raise InvalidInput(
            "a read-private key needs organisations (--org) or membership (--member): "
            "without them it sees only public facilities",
            field="scopes",
        )
    now = dt.datetime.now(dt.UTC)
    if expires is not None and (expires.utcoffset() is None or expires <= now):
        raise InvalidInput(
            f"the expiry {expires.isoformat()} must be a future time with a UTC offset",
            field="expires",
        )
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    entry = {
        "name": name,
        "sha256": hash_key(key),
        "scopes": scope_set,
        "organizations": organization_set,
        "member": member,
        "created": now.isoformat(timespec="seconds"),
        "expires": expires.isoformat() if expires is not None else None,
        "revoked": None,
    }
    _principal(entry)  # validates the scopes
    with _changing(path) as entries:
        if any(e["name"] == name for e in entries):
            raise InvalidInput(f"a key named {name!r} exists already", field="name")
        entries.append(entry)
    return key


def list_api_keys(path: str | Path) -> list[KeyInfo]:
    """Every key of the key file, revoked and expired ones included, in the file's order.

    Raises
    ------
    InvalidInput
        For an unreadable key file.
    """
    return [_key_info(e) for e in _read_key_file(Path(path))]


def revoke_api_key(path: str | Path, name: str) -> KeyInfo:
    """Revoke the key ``name`` for good (it stays listed, and its name stays taken).

    Every running worker refuses the key from its next request. Revoking a revoked key
    changes nothing.

    Raises
    ------
    NotFound
        When the file has no key of that name.
    InvalidInput
        For an unreadable key file.
    """
    with _changing(Path(path)) as entries:
        for entry in entries:
            if entry["name"] == name:
                if entry.get("revoked") is None:
                    entry["revoked"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
                return _key_info(entry)
        raise NotFound(f"no key named {name!r}")


class KeyRing:
    """The usable keys of a key file, reloaded when the file changes.

    The file is looked at (one ``stat``) before each authentication, so keys added or revoked
    through :func:`create_api_key` / :func:`revoke_api_key` take effect at the next request in
    every worker; expiry is checked at each authentication.

    Parameters
    ----------
    path
        The JSON key file, or ``None`` for a service without keys (everyone is anonymous).
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        #: (SHA-256 digest, principal, expiry as POSIX seconds) of each key not revoked.
        self._keys: list[tuple[bytes, Principal, float]] = []
        self._reload()

    def _reload(self) -> None:
        if self.path is None:
            return
        try:
            st = self.path.stat()
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = (0, 0, 0)
        if stamp == self._stamp:
            return
        with self._lock:
            first = self._stamp is None
            self._stamp = stamp
            try:
                entries = _read_key_file(self.path)
                keys = []
                for entry in entries:
                    info = _key_info(entry)
                    if info.revoked is None:
                        expiry = info.expires.timestamp() if info.expires else math.inf
                        keys.append((bytes.fromhex(entry["sha256"]), _principal(entry), expiry))
            except InvalidInput:
                if first:
                    raise
                logger.error(
                    "the changed API key file is invalid; keeping the previous keys", exc_info=True
                )
                return
            self._keys = keys

    def authenticate(self, key: str) -> Principal | None:
        """The principal of a plain key, or ``None`` if no usable key matches (unknown,
        revoked and expired keys alike)."""
        self._reload()
        digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()
        now = time.time()
        found: Principal | None = None
        for stored, principal, expiry in self._keys:
            if hmac.compare_digest(stored, digest) and now < expiry:
                found = principal
        return found


#: Prefix of a device secret (``finder devices add``), as ``fk_`` marks API keys.
DEVICE_SECRET_PREFIX = "fd_"


def device_signing_key(secret: str) -> bytes:
    """The key a device signs its events with: the SHA-256 of its secret (:func:`hash_key`).

    The store keeps this hash, as the key file keeps API keys' hashes; the secret itself is
    shown once and stored nowhere. HMAC needs the same key on both sides, so whoever reads the
    device table can sign events (not learn the secret): revoke and re-add devices after a leak.
    """
    return bytes.fromhex(hash_key(secret))


def create_device(log: EventLog, facility_id: str) -> tuple[Device, str]:
    """Register a new device for a facility; the device and its secret (returned once).

    Raises
    ------
    FacilityNotFound
        When the store has no such facility.
    """
    secret = DEVICE_SECRET_PREFIX + secrets.token_urlsafe(32)
    device = log.add_device("dev-" + secrets.token_hex(6), facility_id, hash_key(secret))
    return device, secret
