"""Any adcode at any level through the API: /coverage*, /map and the districts collection."""

from __future__ import annotations

import csv
import io

from api_support import Live


def test_a_city_answers_its_counties_and_the_aggregate(live: Live) -> None:
    with live.client() as client:
        city = client.get("/coverage", params={"adcode": "4101"})
        assert city.status_code == 200, city.text
        rows = {r["adcode"]: r for r in city.json()["districts"]}
        assert len(rows) == 12 and all(a.startswith("4101") for a in rows)
        [aggregate] = city.json()["regions"]
        assert (aggregate["adcode"], aggregate["level"], aggregate["counties"]) == (
            "410100",
            "city",
            12,
        )
        assert aggregate["population"] == sum(r["population"] for r in rows.values())
        county = client.get("/coverage", params={"adcode": "410103"}).json()
        assert "regions" not in county
        assert county["districts"][0] == rows["410103"]
        table = client.get("/coverage", params={"adcode": "4101", "f": "csv"}).text
        last = list(csv.DictReader(io.StringIO(table)))[-1]
        assert (last["adcode"], last["name"], last["level"]) == ("410100", "郑州市", "city")
        assert (
            client.get("/coverage", params={"adcode": "31"}).json()["regions"][0]["counties"] == 16
        )


def test_gaps_suggest_and_maps_take_a_city(live: Live) -> None:
    with live.client() as client:
        gaps = client.get("/coverage/gaps", params={"adcode": "4101", "radius_m": 5000})
        assert gaps.status_code == 200, gaps.text
        assert {f["properties"]["adcode"] for f in gaps.json()["features"]} <= {
            f"4101{n:02d}" for n in range(100)
        }
        sites = client.get("/coverage/suggest", params={"adcode": "4101", "n": 2})
        assert sites.status_code == 200, sites.text
        assert len(sites.json()["features"]) == 2
        page = client.get("/coverage/map", params={"adcode": "4101"})
        assert page.status_code == 200 and "410185" in page.text  # 登封市, a county of 4101
        facilities_map = client.get("/map", params={"district": "4101"})
        assert (
            facilities_map.status_code == 200
            and "text/html" in facilities_map.headers["content-type"]
        )


def test_the_children_of_a_city_and_a_province(live: Live) -> None:
    with live.client() as client:
        counties = client.get("/collections/districts/items", params={"parent": "4101"}).json()
        assert counties["numberMatched"] == 12
        assert {f["properties"]["city"] for f in counties["features"]} == {"郑州市"}
        cities = client.get("/collections/districts/items", params={"parent": "33"}).json()
        names = {f["properties"]["name"] for f in cities["features"]}
        assert "杭州市" in names and cities["numberMatched"] == 11
        bad = client.get("/collections/districts/items", params={"parent": "4"})
        assert bad.status_code == 400


def test_an_unknown_adcode_is_a_problem(live: Live) -> None:
    with live.client() as client:
        r = client.get("/coverage", params={"adcode": "990000"})
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
