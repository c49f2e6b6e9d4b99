"""``/map`` errors are small HTML pages in the map's language (it runs inside the app's WebView),
with the same status codes as the JSON routes; a district must exist (404 like ``/coverage``).

Both store backends (the ``live`` fixture).
"""

from __future__ import annotations

import re

import httpx
import pytest


def _error_page(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text[:300]
    assert r.headers["content-type"].startswith("text/html")
    text = r.text
    assert '<main class="fm-error"' in text
    assert "<script" not in text
    # nothing to fetch: every src/href is a data: URI
    assert all(u.startswith("data:") for u in re.findall(r'(?:src|href)="([^"]*)"', text))
    assert not text.lstrip().startswith("{")
    return text


@pytest.mark.parametrize(
    ("params", "status", "zh", "en"),
    [
        ({"district": "999999"}, 404, "找不到这个区县。", "There is no such district."),
        ({"district": "不存在区"}, 404, "找不到这个区县。", "There is no such district."),
        (
            {"isochrone": "no-such-facility"},
            404,
            "找不到这个设施，或您无权查看。",
            "There is no such facility, or you may not see it.",
        ),
        (
            {"isochrone": "public-1"},
            409,
            "步行范围暂不可用：没有加载步行路网。",
            "Walking areas are not available: no street network is loaded.",
        ),
        (
            {"base_map": "tianditu"},
            400,
            "所选底图未配置，请改用其他底图。",
            "The chosen base map is not configured; choose another one.",
        ),
        ({"zoom": "30"}, 400, "地图参数有误：zoom。", "Invalid map parameter: zoom."),
        ({"lon": "121.47"}, 400, "地图参数有误：lat。", "Invalid map parameter: lat."),
        ({"kind": "spa", "zoom": "x"}, 400, "地图参数有误：kind、zoom。", None),
    ],
)
def test_map_errors_are_pages_in_the_map_language(
    anon: httpx.Client, params: dict[str, str], status: int, zh: str, en: str | None
) -> None:
    assert zh in _error_page(anon.get("/map", params=params), status)
    if en is not None:
        english = _error_page(anon.get("/map", params={**params, "lang": "en"}), status)
        assert en in english and 'lang="en"' in english


def test_unknown_language_still_gets_a_page(anon: httpx.Client) -> None:
    assert "地图参数有误：lang。" in _error_page(anon.get("/map", params={"lang": "fr"}), 400)


def test_unknown_district_is_404_like_coverage(anon: httpx.Client) -> None:
    assert anon.get("/coverage/map", params={"adcode": "999999"}).status_code == 404
    assert anon.get("/map", params={"district": "999999"}).status_code == 404
    for known in ("310101", "黄浦区"):
        assert anon.get("/map", params={"district": known}).status_code == 200


def test_wrong_key_is_a_page_with_its_challenge(live: object, anon: httpx.Client) -> None:
    r = anon.get("/map", headers={"Authorization": "Bearer not-a-key"})
    assert "API 密钥无效。" in _error_page(r, 401)
    assert r.headers["www-authenticate"] == "Bearer"


def test_map_page_says_where_to_ask_for_the_nearest(anon: httpx.Client) -> None:
    page = anon.get("/map", params={"lon": "121.4737", "lat": "31.2304"}).text
    assert '"nearby":{"url":"/nearest","k":3' in page
    assert '"live":"/live"}' in page
    assert '"origin":[121.4737,31.2304]' in page
