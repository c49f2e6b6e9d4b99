"""API keys and access control: who is asking, and which facilities they may see.

Keys live in a JSON file (``FINDER_API_KEYS_FILE``), only as SHA-256 hashes::

    {"keys": [{"name": "jingan-editor", "sha256": "9f86d0...", "scopes": ["edit"],
               "organizations": [], "member": false}]}

A key is a random 256-bit token (``fk_`` + URL-safe base64), so a plain SHA-256 hash is as safe
as a slow password hash and costs microseconds per request. Clients send it as
``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. Scopes:

``edit``
    create, replace, patch and delete facilities, bulk imports, read the audit trail; the key's
    ``name`` is the actor recorded in the audit trail.
``read-private``
    see ``members`` facilities when ``member`` is true, and the ``employees`` (and ``members``)
    facilities of the key's ``organizations``.
``read-all``
    see every facility (administrators, planners).

Without a key a client is anonymous and sees ``public`` facilities only. Every route filters
facilities through :func:`visible_mask` (frames) or :meth:`geodata.schema.Viewer.may_see` (one
facility), and a facility the caller may not see answers exactly like a missing one.

Keys are added with :func:`create_api_key` (the plain key is returned once and never stored).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geodata.errors import InvalidInput
from geodata.schema import ANONYMOUS, Viewer

logger = logging.getLogger(__name__)

SCOPES: tuple[str, ...] = ("edit", "read-private", "read-all")
KEY_PREFIX = "fk_"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller (``name`` is ``"anonymous"`` without a key)."""

    name: str
    scopes: frozenset[str]
    viewer: Viewer

    def has(self, scope: str) -> bool:
        """Whether the caller's key carries ``scope``."""
        return scope in self.scopes


ANONYMOUS_PRINCIPAL = Principal("anonymous", frozenset(), ANONYMOUS)


def hash_key(key: str) -> str:
    """The hex SHA-256 of a plain key (what the key file stores)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _principal(entry: Mapping[str, Any]) -> Principal:
    scopes = frozenset(str(s) for s in entry.get("scopes", ()))
    unknown = scopes - set(SCOPES)
    if unknown:
        raise InvalidInput(
            f"key {entry.get('name')!r} has unknown scopes {sorted(unknown)}", field="scopes"
        )
    if "read-all" in scopes:
        viewer = Viewer(see_all=True)
    elif "read-private" in scopes:
        viewer = Viewer(
            member=bool(entry.get("member", False)),
            organizations=frozenset(str(o) for o in entry.get("organizations", ())),
        )
    else:
        viewer = ANONYMOUS
    return Principal(str(entry["name"]), scopes, viewer)


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
    return keys


def create_api_key(
    path: str | Path,
    name: str,
    scopes: Iterable[str],
    organizations: Iterable[str] = (),
    *,
    member: bool = False,
) -> str:
    """Add a key to the key file (created if missing) and return the plain key, once.

    Parameters
    ----------
    path
        The JSON key file (``FINDER_API_KEYS_FILE``).
    name
        Unique name of the key; the actor in the audit trail.
    scopes
        Any of :data:`SCOPES`.
    organizations, member
        What a ``read-private`` key sees besides public facilities.

    Raises
    ------
    InvalidInput
        For an unknown scope, an empty or duplicate name, or an unreadable key file.
    """
    path = Path(path)
    scope_set = sorted(set(scopes))
    if not name.strip():
        raise InvalidInput("a key needs a name", field="name")
    entries = _read_key_file(path)
    if any(e["name"] == name for e in entries):
        raise InvalidInput(f"a key named {name!r} exists already", field="name")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    entry = {
        "name": name,
        "sha256": hash_key(key),
        "scopes": scope_set,
        "organizations": sorted(set(organizations)),
        "member": member,
    }
    _principal(entry)  # validates the scopes
    entries.append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({"keys": entries}, ensure_ascii=False, indent=2), encoding="utf-8")
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return key


class KeyRing:
    """The keys of a key file, reloaded when the file changes (so new keys work at once).

    Parameters
    ----------
    path
        The JSON key file, or ``None`` for a service without keys (everyone is anonymous).
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._keys: list[tuple[bytes, Principal]] = []
        self._reload()

    def _reload(self) -> None:
        if self.path is None:
            return
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = (0, 0)
        if stamp == self._stamp:
            return
        with self._lock:
            first = self._stamp is None
            self._stamp = stamp
            try:
                entries = _read_key_file(self.path)
                keys = [(bytes.fromhex(e["sha256"]), _principal(e)) for e in entries]
            except InvalidInput:
                if first:
                    raise
                logger.error(
                    "the changed API key file is invalid; keeping the previous keys", exc_info=True
                )
                return
            self._keys = keys

    def authenticate(self, key: str) -> Principal | None:
        """The principal of a plain key, or ``None`` if no key matches."""
        self._reload()
        digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()
        found: Principal | None = None
        for stored, principal in self._keys:
            if hmac.compare_digest(stored, digest):
                found = principal
        return found


def visible_mask(frame: pd.DataFrame, viewer: Viewer) -> np.ndarray:
    """Which rows of a facility frame ``viewer`` may see (vectorised :meth:`Viewer.may_see`).

    Parameters
    ----------
    frame
        Facility frame with ``access`` and ``organization`` columns.
    viewer
        Who is asking.

    Returns
    -------
    numpy.ndarray
        Boolean mask, one entry per row.
    """
    n = len(frame)
    if viewer.see_all:
        return np.ones(n, dtype=bool)
    access = frame["access"].to_numpy(dtype=object)
    public = access == "public"
    if not viewer.member and not viewer.organizations:
        return np.asarray(public, dtype=bool)
    org = frame["organization"].to_numpy(dtype=object)
    own = np.fromiter(
        (o is not None and o in viewer.organizations for o in org), dtype=bool, count=n
    )
    members = (access == "members") & (viewer.member | own)
    employees = (access == "employees") & own
    return np.asarray(public | members | employees, dtype=bool)


def visible(frame: pd.DataFrame, viewer: Viewer) -> pd.DataFrame:
    """The rows of ``frame`` that ``viewer`` may see (the one access filter of the service)."""
    if viewer.see_all:
        return frame
    return frame[visible_mask(frame, viewer)]
