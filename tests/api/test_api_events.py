"""``POST /facilities/{id}/events``, ``/live`` and ``/usage`` on a live server of each backend.

Each test makes its own facilities and devices (the server lives for the module).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from api_support import SECRET_ID, Live
from events_support import (
    add_device,
    add_facility,
    event,
    initial_states,
    nearest_props,
    post,
    post_once_known,
    signed,
    wait_for_facility,
)

from finder.hours import LOCAL_TIMEZONE

BURST = 5


def server_env(tmp: Path) -> dict[str, str]:
    """A small allowance per device, so that the flood test stays short."""
    return {"FINDER_DEVICE_EVENT_BURST": str(BURST), "FINDER_DEVICE_EVENTS_PER_S": "0.2"}


def test_a_signed_occupied_event_shows_in_nearest_and_the_live_stream(edit_live: Live) -> None:
    lon, lat = add_facility(edit_live.store, "ev-room-1", "mother_room")
    secret = add_device(edit_live.store, "ev-room-1")
    with edit_live.client() as client:
        wait_for_facility(client, "ev-room-1", lon, lat)
        before = nearest_props(client, lon, lat)
        assert (before["live_state"], before["occupied"]) == ("open", None)
        accepted = post_once_known(client, "ev-room-1", secret, event("occupied"))
        assert accepted.status_code == 200, accepted.text
        after = nearest_props(client, lon, lat)
        with client.stream("GET", "/live") as stream:
            streamed = initial_states(stream)["ev-room-1"]
    assert after["live_state"] == "occupied"
    assert after["occupied"] is True
    assert after["live_detail"] == "occupied: sensor just now"
    assert after["open_state"] == "open"  # the timetable's answer stays as it was
    assert after["last_verified_by"] == "door_activity"
    assert {k: streamed[k] for k in ("live_state", "occupied")} == {
        "live_state": "occupied",
        "occupied": True,
    }


def test_bad_signature_old_timestamp_replay_and_personal_fields_are_refused(
    edit_live: Live,
) -> None:
    add_facility(edit_live.store, "ev-station-1", "worker_station")
    secret = add_device(edit_live.store, "ev-station-1")
    with edit_live.client() as client:
        first = event("entry", nonce="nonce-0001")
        assert post_once_known(client, "ev-station-1", secret, first).status_code == 200
        replay = post(client, "ev-station-1", secret, first)
        body, headers = signed(secret, event("entry"))
        headers["X-Signature-SHA256"] = "0" * 64
        forged = client.post("/facilities/ev-station-1/events", content=body, headers=headers)
        old_at = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)).isoformat()
        stale = post(client, "ev-station-1", secret, {"type": "entry", "at": old_at})
        personal = post(client, "ev-station-1", secret, event("entry", worker_id="310101199001"))
        unknown_type = post(client, "ev-station-1", secret, event("face_seen"))
        too_large = post(client, "ev-station-1", secret, event("entry", nonce="n" * 2000))
    assert (replay.status_code, replay.json()["type"].rsplit("/", 1)[1]) == (409, "replayed-event")
    assert (forged.status_code, forged.json()["type"].rsplit("/", 1)[1]) == (
        401,
        "invalid-signature",
    )
    assert (stale.status_code, stale.json()["type"].rsplit("/", 1)[1]) == (400, "stale-event")
    assert personal.status_code == 422
    assert personal.json()["errors"][0]["field"] == "worker_id"
    assert unknown_type.status_code == 422
    assert too_large.status_code == 413


def test_a_replay_is_the_same_moment_and_nonce_however_the_offset_is_written(
    edit_live: Live,
) -> None:
    add_facility(edit_live.store, "ev-replay-1", "worker_station")
    secret = add_device(edit_live.store, "ev-replay-1")
    at = dt.datetime.now(dt.UTC).replace(microsecond=250_000)
    in_utc = {"type": "entry", "at": at.isoformat(), "nonce": "nonce-0002"}
    in_beijing = {**in_utc, "at": at.astimezone(ZoneInfo(LOCAL_TIMEZONE)).isoformat()}
    later = {**in_utc, "at": (at + dt.timedelta(seconds=1)).isoformat()}
    with edit_live.client() as client:
        assert post_once_known(client, "ev-replay-1", secret, in_utc).status_code == 200
        same_moment = post(client, "ev-replay-1", secret, in_beijing)
        other_moment = post(client, "ev-replay-1", secret, later)
    assert in_beijing["at"] != in_utc["at"]
    assert (same_moment.status_code, same_moment.json()["type"].rsplit("/", 1)[1]) == (
        409,
        "replayed-event",
    )
    assert other_moment.status_code == 200, other_moment.text  # another event, signed anew


def _problem(response: httpx.Response) -> tuple[int, str, str]:
    document = response.json()
    return response.status_code, document["type"], document["detail"]


def test_hidden_missing_facility_and_wrong_device_answer_alike(edit_live: Live) -> None:
    add_facility(edit_live.store, "ev-public-1", "rest_stop")
    add_facility(edit_live.store, "ev-public-2", "rest_stop")
    secret = add_device(edit_live.store, "ev-public-1")
    add_device(edit_live.store, "ev-public-2")
    hidden_secret = add_device(edit_live.store, SECRET_ID)
    with edit_live.client() as client:
        assert post_once_known(client, "ev-public-1", secret, event("opened")).status_code == 200
        answers = {
            fid: _problem(post(client, fid, secret, event("opened")))
            for fid in (SECRET_ID, "no-such-facility", "ev-public-2")
        }
        unsigned = client.post(
            "/facilities/ev-public-1/events", content=b'{"type":"opened"}', headers={}
        )
        # the hidden facility's own device posts like any other
        hidden = post_once_known(client, SECRET_ID, hidden_secret, event("occupied"))
        with client.stream("GET", "/live") as stream:
            anonymous = initial_states(stream)
    with edit_live.client(edit_live.keys.org_a) as client, client.stream("GET", "/live") as stream:
        org_a = initial_states(stream)
    assert len(set(answers.values()) | {_problem(unsigned)}) == 1
    assert answers[SECRET_ID][0] == 401
    assert hidden.status_code == 200
    assert "ev-public-1" in anonymous
    assert SECRET_ID not in anonymous
    assert org_a[SECRET_ID]["live_state"] == "occupied"


def test_the_answer_is_compact_json_and_a_deleted_facility_is_refused_at_once(
    edit_live: Live,
) -> None:
    """The answer is written by hand: byte for byte the compact JSON of seq, type, at. A
    facility known to exist is remembered for its snapshot only: once deleted (its device still
    registered), the next event is the one 401 problem."""
    lon, lat = add_facility(edit_live.store, "ev-gone-1", "rest_stop")
    secret = add_device(edit_live.store, "ev-gone-1")
    with edit_live.client() as client:
        wait_for_facility(client, "ev-gone-1", lon, lat)
        accepted = post_once_known(client, "ev-gone-1", secret, event("opened"))
        edit_live.store.delete("ev-gone-1", actor="test", if_version=None)
        deadline = time.monotonic() + 10
        while nearest_props(client, lon, lat)["id"] == "ev-gone-1":
            assert time.monotonic() < deadline, "the deleted facility stayed in the index"
            time.sleep(0.05)
        gone = post(client, "ev-gone-1", secret, event("opened"))
    answer = accepted.json()
    assert accepted.headers["content-type"] == "application/json"
    assert accepted.content == json.dumps(answer, separators=(",", ":")).encode()
    assert list(answer) == ["seq", "type", "at"]
    assert dt.datetime.fromisoformat(answer["at"]).tzinfo is not None
    assert gone.status_code == 401
    assert gone.json()["type"].rsplit("/", 1)[1] == "invalid-signature"


def test_a_station_locked_today_is_not_open_now(edit_live: Live) -> None:
    lon, lat = add_facility(edit_live.store, "ev-station-2", "worker_station")
    secret = add_device(edit_live.store, "ev-station-2")
    with edit_live.client() as client:
        wait_for_facility(client, "ev-station-2", lon, lat)
        assert nearest_props(client, lon, lat, open_now="true")["id"] == "ev-station-2"
        assert post_once_known(client, "ev-station-2", secret, event("locked")).status_code == 200
        shown = nearest_props(client, lon, lat)
        open_now = nearest_props(client, lon, lat, open_now="true")
    assert (shown["id"], shown["open_state"], shown["live_state"]) == (
        "ev-station-2",
        "open",
        "locked",
    )
    assert shown["live_detail"] == "locked: door locked just now"
    assert open_now["id"] != "ev-station-2"


def test_one_device_flooding_is_throttled_without_costing_another(edit_live: Live) -> None:
    add_facility(edit_live.store, "ev-busy-1", "rest_stop")
    flooding = add_device(edit_live.store, "ev-busy-1")
    quiet = add_device(edit_live.store, "ev-busy-1")
    with edit_live.client() as client:
        first = post_once_known(client, "ev-busy-1", flooding, event("entry", nonce="flood-0000"))
        assert first.status_code == 200
        flood = [
            post(client, "ev-busy-1", flooding, event("entry", nonce=f"flood-{i:04d}")).status_code
            for i in range(1, BURST + 2)
        ]
        other = post(client, "ev-busy-1", quiet, event("entry", nonce="quiet-0001"))
        refused = post(client, "ev-busy-1", flooding, event("entry", nonce="flood-9999"))
    assert flood == [200] * (BURST - 1) + [429, 429]
    assert int(refused.headers["Retry-After"]) >= 1
    assert other.status_code == 200


def test_usage_counts_entries_per_facility_day_and_hour(edit_live: Live) -> None:
    add_facility(edit_live.store, "ev-usage-1", "worker_station")
    secret = add_device(edit_live.store, "ev-usage-1")
    with edit_live.client() as client:
        statuses = [
            post_once_known(client, "ev-usage-1", secret, event(t, nonce=f"usage-{i:04d}"))
            for i, t in enumerate(["entry", "entry", "opened", "entry"])
        ]
        table = client.get("/usage", params={"district": "310115"})
        bad = client.get(
            "/usage", params={"district": "310115", "from": "2026-12-07", "to": "2026-12-01"}
        )
    assert [s.status_code for s in statuses] == [200] * 4
    assert table.headers["content-type"].startswith("text/csv")
    rows = [
        r
        for r in csv.DictReader(io.StringIO(table.text.lstrip("\ufeff")))
        if r["id"] == "ev-usage-1"
    ]
    today = dt.datetime.now(ZoneInfo(LOCAL_TIMEZONE)).date().isoformat()
    assert {r["date"] for r in rows} == {today}
    assert sum(int(r["visits"]) for r in rows) == 3
    assert bad.status_code == 400


def test_the_event_route_keeps_the_protocol_rules_and_its_place_in_the_document(
    edit_live: Live,
) -> None:
    """Events are served ahead of the router (``api.middleware.fast_endpoint``), inside the protocol
    rules: an unknown query parameter is still refused, and the route is still documented."""
    add_facility(edit_live.store, "ev-fast-1", "rest_stop")
    secret = add_device(edit_live.store, "ev-fast-1")
    with edit_live.client() as client:
        assert post_once_known(client, "ev-fast-1", secret, event("entry")).status_code == 200
        body, headers = signed(secret, event("entry"))
        unknown = client.post("/facilities/ev-fast-1/events?debug=1", content=body, headers=headers)
        document = client.get("/openapi.json").json()
    assert (unknown.status_code, unknown.json()["type"].rsplit("/", 1)[1]) == (
        400,
        "unknown-parameter",
    )
    assert "post" in document["paths"]["/facilities/{facility_id}/events"]
