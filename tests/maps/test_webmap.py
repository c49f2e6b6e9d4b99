"""The facility web map without a browser: rendered HTML, payload, filters, base maps, assets."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import io
import json
import re
from html.parser import HTMLParser
from typing import Any

import folium
import folium.plugins
import numpy as np
import pandas as pd
import pytest
from fontTools.ttLib import TTFont
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finder.hours import HolidayCalendar, OpenState, state_at
from geodata.boundaries import load_districts
from geodata.crs import from_wgs84, in_mainland_china
from geodata.errors import InvalidInput
from geodata.kinds import kind_labels
from geodata.sample import sample_frame
from geodata.schema import ACCESS_CLASSES, AMENITIES, KINDS, Viewer
from maps import webmap
from maps.assets import ASSETS, asset_file, asset_tags, cjk_characters, static_dirs
from maps.webmap import (
    FLAG_MAINLAND,
    STATE_CLOSED,
    STATE_OPEN,
    STATE_UNKNOWN,
    base_map_spec,
    encode_payload,
    facility_map,
    facility_map_html,
    filter_facilities,
)

NOW = dt.datetime(2026, 11, 26, 10, 0)


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return sample_frame(400, seed=11)


@pytest.fixture(scope="module")
def calendar() -> HolidayCalendar:
    return HolidayCalendar.default()


class _Tags(HTMLParser):
    """Collects every tag with its attributes, and the text of JSON script elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.json_blocks: list[str] = []
        self._in_json = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        self._in_json = tag == "script" and attributes.get("type") == "application/json"

    def handle_endtag(self, tag: str) -> None:
        self._in_json = False

    def handle_data(self, data: str) -> None:
        if self._in_json:
            self.json_blocks.append(data)


def _parse(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    return parser


def _payload(html: str) -> dict[str, Any]:
    blocks = _parse(html).json_blocks
    assert len(blocks) == 1
    document: dict[str, Any] = json.loads(blocks[0])
    if document["encoding"] == "gzip+base64":
        document["data"] = json.loads(gzip.decompress(base64.b64decode(document["data"])))
    return document


def _few() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "name": ["<img src=x onerror=alert(1)>", "{{ 7 * 7 }}", "</script><b>x</b>"],
            "kind": ["mother_room", "worker_station", "rest_stop"],
            "lon": [121.4581, 121.47, 121.48],
            "lat": [31.2242, 31.232, 31.22],
            "address": ["{% raw %}", None, "南京西路&amp;1号"],
            "opening_hours": ["24/7", "not valid hours ###", None],
            "access": ["public", "members", "employees"],
            "organization": [None, None, "某单位"],
            "amenities": ["fridge;sink", "", "wifi"],
            "star_rating": pd.array([4, None, 2], dtype="Int64"),
            "phone": ["021-1", None, "021-3"],
            "status": ["open", "temporarily_closed", "open"],
        }
    )


# ---- no CDN, no third-party script ---------------------------------------------------------


def _folium_cdn_urls() -> set[str]:
    urls = {url for _, url in folium.Map.default_js + folium.Map.default_css}
    cluster = folium.plugins.MarkerCluster
    urls |= {url for _, url in cluster.default_js + cluster.default_css}
    return urls


@pytest.mark.parametrize("asset_mode", ["served", "inline"])
def test_page_loads_nothing_from_elsewhere(sample: pd.DataFrame, asset_mode: str) -> None:
    html = facility_map_html(sample, now=NOW, asset_mode=asset_mode, static_url="/static")
    parsed = _parse(html)
    sources = [
        attrs.get("src") or attrs.get("href")
        for tag, attrs in parsed.tags
        if tag in ("script", "link", "img", "iframe") and (attrs.get("src") or attrs.get("href"))
    ]
    for url in sources:
        assert url is not None
        assert url.startswith("/static/") or url.startswith("data:"), url
    served = [u for u in sources if u and u.startswith("/static/")]
    if asset_mode == "served":
        assert sorted(served) == sorted(a.url("/static") for a in ASSETS)
    else:
        assert served == []
    for url in _folium_cdn_urls():
        assert url not in html
    assert "cdn" not in " ".join(u or "" for u in sources).lower()
    # no tile URL on the default ("none") base map
    assert "tile.openstreetmap" not in html and "autonavi" not in html


def test_static_dirs_hold_every_asset() -> None:
    dirs = static_dirs()
    assert set(dirs) == {a.directory for a in ASSETS}
    for asset in ASSETS:
        assert asset_file(asset).is_file(), asset
    # the CSS images Leaflet refers to exist where the stylesheet points
    leaflet_css = (dirs["leaflet"] / "leaflet.css").read_text(encoding="utf-8")
    for image in re.findall(r"url\((images/[^)]+)\)", leaflet_css):
        assert (dirs["leaflet"] / image).is_file()


def test_inline_assets_have_no_relative_urls_or_script_end() -> None:
    tags = asset_tags("inline")
    text = "\n".join(tags)
    assert "url(images/" not in text
    assert "sourceMappingURL" not in text
    for tag in tags:
        body = tag.split(">", 1)[1].rsplit("</", 1)[0]
        assert "</script" not in body.lower() and "</style" not in body.lower()


def test_served_urls_follow_static_url() -> None:
    tags = asset_tags("served", static_url="/assets/v1/")
    assert '<script src="/assets/v1/leaflet/leaflet.js"></script>' in tags
    assert '<link rel="stylesheet" href="/assets/v1/facilitymap/facilitymap.css">' in tags


# ---- escaping ----------------------------------------------------------------------------


def test_text_is_data_not_markup_or_template() -> None:
    frame = _few()
    html = facility_map_html(frame, now=NOW, approval_no="{{ 6 * 7 }}<b>", show_boundaries=False)
    parsed = _parse(html)
    # the payload element is the only JSON script; names did not open elements
    assert not any(tag == "img" for tag, _ in parsed.tags)
    assert not any(tag == "b" for tag, _ in parsed.tags)
    document = _payload(html)
    assert document["data"]["name"] == frame["name"].tolist()
    assert document["data"]["addr"] == ["{% raw %}", "", "南京西路&amp;1号"]
    # branca compiles rendered HTML as a Jinja template: data must not pass through it
    assert "49" not in document["data"]["name"]
    assert document["attributions"][0].endswith("{{ 6 * 7 }}<b>")
    assert "<img" not in html.split("application/json", 1)[1].split("</script>", 1)[0]


# ---- payload ----------------------------------------------------------------------------


def test_payload_columns_match_the_frame(sample: pd.DataFrame, calendar: HolidayCalendar) -> None:
    html = facility_map_html(sample, now=NOW, calendar=calendar, compress_payload=False)
    document = _payload(html)
    data = document["data"]
    shown = sample[sample["status"] != "closed"].reset_index(drop=True)
    assert len(data["lon"]) == len(shown)
    np.testing.assert_allclose(np.array(data["lon"]) / 1e6, shown["lon"], atol=5e-7, rtol=0)
    np.testing.assert_allclose(np.array(data["lat"]) / 1e6, shown["lat"], atol=5e-7, rtol=0)
    assert [KINDS[k] for k in data["kind"]] == shown["kind"].tolist()
    assert [ACCESS_CLASSES[a] for a in data["access"]] == shown["access"].tolist()
    assert data["name"] == shown["name"].tolist()
    for i, row in shown.iterrows():
        names = {AMENITIES[b] for b in range(len(AMENITIES)) if data["amen"][i] >> b & 1}
        assert names == {a for a in row["amenities"].split(";") if a}
        code = data["hours"][i]
        assert (data["hours_values"][code] if code >= 0 else None) == row["opening_hours"]
        expected = state_at(row["opening_hours"], NOW, calendar)
        state = data["flags"][i] & 3
        if row["status"] == "temporarily_closed":
            assert state == STATE_CLOSED
        else:
            assert state == {OpenState.OPEN: STATE_OPEN, OpenState.CLOSED: STATE_CLOSED}.get(
                expected, STATE_UNKNOWN
            )
        assert bool(data["flags"][i] & FLAG_MAINLAND) == in_mainland_china(row["lon"], row["lat"])
        stars = row["star_rating"]
        assert data["stars"][i] == (0 if pd.isna(stars) else int(stars))
    assert [k["count"] for k in document["kinds"]] == [
        int((shown["kind"] == k).sum()) for k in KINDS
    ]


def test_bad_hours_are_unknown_and_temporarily_closed_is_closed() -> None:
    document = _payload(facility_map_html(_few(), now=NOW, show_boundaries=False))
    assert [f & 3 for f in document["data"]["flags"]] == [STATE_OPEN, STATE_CLOSED, STATE_UNKNOWN]
    assert document["data"]["hours"][2] == -1


@pytest.mark.parametrize("compress", [True, False])
def test_payload_encoding_round_trips(sample: pd.DataFrame, compress: bool) -> None:
    document = webmap.facility_payload(
        sample.head(50),
        language="zh",
        display_crs="wgs84",
        now=NOW,
        calendar=HolidayCalendar.default(),
    )
    text = encode_payload(document, compress=compress)
    assert "<" not in text
    decoded = json.loads(text)
    assert decoded["encoding"] == ("gzip+base64" if compress else "json")
    data = decoded["data"]
    if compress:
        data = json.loads(gzip.decompress(base64.b64decode(data)))
    assert data == document["data"]


def test_large_payloads_are_compressed_automatically(sample: pd.DataFrame) -> None:
    document = {"data": {"name": ["x" * 100] * 20_000}}
    assert json.loads(encode_payload(document))["encoding"] == "gzip+base64"
    assert json.loads(encode_payload({"data": {"name": ["x"]}}))["encoding"] == "json"


# ---- filters ----------------------------------------------------------------------------


viewers = st.builds(
    Viewer,
    member=st.booleans(),
    organizations=st.frozensets(st.sampled_from(["示例静安科技单位1", "示例浦东银行单位2", "x"])),
    see_all=st.booleans(),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    viewer=viewers,
    kinds=st.none() | st.sets(st.sampled_from(KINDS)),
    amenities=st.none() | st.sets(st.sampled_from(AMENITIES), max_size=2),
    districts=st.none() | st.sets(st.sampled_from(["310106", "310115", "黄浦区", "崇明区"])),
)
def test_filter_matches_row_by_row(
    sample: pd.DataFrame,
    viewer: Viewer,
    kinds: set[str] | None,
    amenities: set[str] | None,
    districts: set[str] | None,
) -> None:
    kept = filter_facilities(
        sample, viewer=viewer, kinds=kinds, districts=districts, amenities=amenities
    )
    expected = []
    for index, row in sample.iterrows():
        organization = row["organization"] if isinstance(row["organization"], str) else None
        ok = row["status"] != "closed" and viewer.may_see(row["access"], organization)
        ok = ok and (kinds is None or row["kind"] in kinds)
        ok = ok and (
            districts is None or row["adcode"] in districts or row["district"] in districts
        )
        ok = ok and (not amenities or amenities <= set(row["amenities"].split(";")))
        if ok:
            expected.append(index)
    assert kept.index.tolist() == expected


def test_viewer_filter_applies_to_the_map(sample: pd.DataFrame) -> None:
    anonymous = _payload(facility_map_html(sample, viewer=Viewer(), now=NOW))
    public = sample[(sample["access"] == "public") & (sample["status"] != "closed")]
    assert anonymous["data"]["name"] == public["name"].tolist()


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"kinds": ["bakery"]}, "kind"),
        ({"amenities": ["sauna"]}, "amenity"),
        ({"base_map": "google"}, "base_map"),
        ({"base_map": "tianditu"}, "tianditu_key"),
        ({"base_map": "tianditu", "tianditu_key": "abc'}};alert(1)//"}, "tianditu_key"),
        ({"language": "fr"}, "lang"),
        ({"zoom": 25}, "zoom"),
        ({"center": (200.0, 31.0)}, "center"),
    ],
)
def test_invalid_options_raise_domain_errors(options: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as error:
        facility_map(_few(), now=NOW, show_boundaries=False, **options)
    assert error.value.field == field


def test_invalid_coordinates_raise() -> None:
    frame = _few()
    frame.loc[0, "lat"] = np.nan
    with pytest.raises(InvalidInput):
        facility_map(frame, now=NOW, show_boundaries=False)


# ---- base maps and coordinate systems ---------------------------------------------------


def _boundary_coordinates(fmap: folium.Map) -> np.ndarray:
    """All vertices of the map's boundary layer (the folium GeoJson child)."""
    layer = next(c for c in fmap._children.values() if isinstance(c, folium.GeoJson))
    points: list[list[float]] = []

    def walk(node: Any) -> None:
        if isinstance(node[0], int | float):
            points.append(node)
        else:
            for child in node:
                walk(child)

    for feature in layer.data["features"]:
        walk(feature["geometry"]["coordinates"])
    return np.array(points)


def test_amap_shifts_boundaries_to_gcj02() -> None:
    districts = load_districts()
    huangpu = districts[districts["adcode"] == "310101"]
    wgs = _boundary_coordinates(facility_map(_few(), now=NOW, boundaries=huangpu))
    gcj = _boundary_coordinates(facility_map(_few(), now=NOW, boundaries=huangpu, base_map="amap"))
    assert wgs.shape == gcj.shape
    expected = np.column_stack([np.asarray(a) for a in from_wgs84(wgs[:, 0], wgs[:, 1], "gcj02")])
    # both are rounded to 1e-6 degree after simplification
    np.testing.assert_allclose(gcj, expected, atol=2e-6, rtol=0)
    shift_m = np.hypot(
        (gcj[:, 0] - wgs[:, 0]) * 111_320 * np.cos(np.radians(31.2)),
        (gcj[:, 1] - wgs[:, 1]) * 110_574,
    )
    assert shift_m.min() > 300 and shift_m.max() < 700


@pytest.mark.parametrize(
    ("districts", "expected"),
    [(None, 16), (["黄浦区"], 1), (["310101", "310106"], 2), (["310101", "黄浦区"], 1)],
)
def test_boundary_layer_follows_the_district_filter(
    districts: list[str] | None, expected: int
) -> None:
    bundled = load_districts()
    wanted = set(districts or [])
    adcodes = sorted(
        bundled["adcode"][bundled["adcode"].isin(wanted) | bundled["name"].isin(wanted)]
        if districts
        else bundled["adcode"]
    )
    for _ in range(2):  # the bundled layer is cached; a second map must get the same
        fmap = facility_map(_few(), now=NOW, districts=districts)
        layer = next(c for c in fmap._children.values() if isinstance(c, folium.GeoJson))
        fmap.get_root().render()
        assert sorted(f["properties"]["adcode"] for f in layer.data["features"]) == adcodes
        assert len(adcodes) == expected
        assert all(set(f["properties"]) == {"adcode"} for f in layer.data["features"])


def test_amap_marks_the_payload_for_gcj02_display() -> None:
    assert _payload(facility_map_html(_few(), now=NOW, base_map="amap"))["crs"] == "gcj02"
    assert _payload(facility_map_html(_few(), now=NOW, base_map="osm"))["crs"] == "wgs84"


def _unescape_js(text: str) -> str:
    return text.replace("\\u003c", "<").replace("\\u003e", ">").replace("\\u0026", "&")


def test_base_map_tiles_and_attribution() -> None:
    assert base_map_spec("none").tiles == ()
    osm = _unescape_js(facility_map_html(_few(), now=NOW, base_map="osm", show_boundaries=False))
    assert "https://tile.openstreetmap.org/{z}/{x}/{y}.png" in osm
    assert "OpenStreetMap</a> contributors" in osm
    key = "0123456789abcdef0123456789abcdef"
    tianditu = facility_map_html(
        _few(), now=NOW, base_map="tianditu", tianditu_key=key, show_boundaries=False
    )
    assert "LAYER=vec&STYLE=default" in _unescape_js(tianditu)
    assert tianditu.count(f"tk={key}") == 2  # vector tiles and their labels
    amap = facility_map_html(
        _few(), now=NOW, base_map="amap", approval_no="沪S(2024)001号", show_boundaries=False
    )
    assert "webrd0{s}.is.autonavi.com" in amap
    assert _payload(amap)["attributions"] == ["审图号：沪S(2024)001号"]


# ---- labels and font ---------------------------------------------------------------------


@pytest.mark.parametrize("language", ["zh", "en"])
def test_labels_cover_the_vocabularies(language: str) -> None:
    assert set(webmap.ACCESS_LABELS[language]) == set(ACCESS_CLASSES)
    assert set(webmap.AMENITY_LABELS[language]) == set(AMENITIES)
    assert set(webmap.UI_LABELS[language]) == set(webmap.UI_LABELS["zh"])
    document = _payload(facility_map_html(_few(), now=NOW, language=language))
    assert document["amenities"] == [webmap.AMENITY_LABELS[language][a] for a in AMENITIES]
    assert [k["label"] for k in document["kinds"]] == list(kind_labels(language).values())


def test_embedded_font_covers_every_chinese_character(sample: pd.DataFrame) -> None:
    html = facility_map_html(sample.head(30), now=NOW)
    match = re.search(r"url\(data:font/woff;base64,([A-Za-z0-9+/=]+)\)", html)
    assert match is not None
    font = TTFont(io.BytesIO(base64.b64decode(match.group(1))))
    cmap = font.getBestCmap()
    document = _payload(html)
    texts = [*document["data"]["name"], *document["data"]["addr"], *document["labels"].values()]
    texts += [k["label"] for k in document["kinds"]] + document["amenities"] + document["states"]
    needed = cjk_characters(texts)
    assert len(needed) > 20
    assert [c for c in needed if ord(c) not in cmap] == []
    assert "Noto Sans CJK SC" in font["name"].getDebugName(4)


def test_font_can_be_left_out() -> None:
    html = facility_map_html(_few(), now=NOW, embed_cjk_font=False)
    assert "font/woff" not in html
