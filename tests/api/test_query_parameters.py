"""The unknown-parameter check allows, for every route, exactly the query parameters the OpenAPI
document publishes, although it works them out per route without building the document.

The routes of the app are fixed by :func:`api.app.create_app`; no store is opened (the
lifespan does not run), so the app of the default settings is enough. That a worker answering
``/nearest`` and OGC items never builds the whole document is checked, over a real store of each
backend, in ``test_lean_worker.py``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from hypothesis import given
from hypothesis import strategies as st

from api.app import create_app
from api.errors import PROBLEM_MEDIA_TYPE
from api.protocol import QueryParameters, leaf_routes, query_pairs
from api.settings import Settings


def _document_names(operation: dict[str, Any] | None) -> frozenset[str] | None:
    """The query names of an operation of the whole document; None when it is not there or
    its 400 answer is not problem+json (such operations are not checked)."""
    if operation is None:
        return None
    responses = operation.get("responses", {})
    bad_request = responses.get("400") or responses.get("4XX") or {}
    if PROBLEM_MEDIA_TYPE not in bad_request.get("content", {}):
        return None
    return frozenset(p["name"] for p in operation.get("parameters", ()) if p["in"] == "query")


def test_every_route_allows_what_the_document_publishes() -> None:
    app = create_app(Settings(log_level="WARNING"))
    parameters = QueryParameters()
    got = {
        (route.path_format, method): parameters.allowed(route, method)
        for route in leaf_routes(app)
        if hasattr(route, "path_format")
        for method in sorted(getattr(route, "methods", None) or {"GET"})
    }
    assert app.openapi_schema is None  # worked out without the whole document
    operations = {
        (path, verb.upper()): operation
        for path, verbs in app.openapi()["paths"].items()
        for verb, operation in verbs.items()
    }
    expected = {key: _document_names(operations.get(key)) for key in got}
    assert got == expected
    assert operations.keys() <= got.keys()  # every documented operation was compared
    checked = [key for key, names in got.items() if names is not None]
    assert len(checked) >= 40 and ("/nearest", "GET") in checked
    assert {"bbox-crs", "crs", "f"} <= got["/collections/facilities/items", "GET"]  # type: ignore[operator]
    assert "max_distance_m" in got["/nearest", "GET"]  # type: ignore[operator]


@given(st.text(alphabet=st.sampled_from(list("ab=&%+;20xyz.-_ 中é")), max_size=40))
def test_query_pairs_decode_as_parse_qsl(text: str) -> None:
    """The one reading of a query string (its fast split included) is Starlette's."""
    query = text.encode()
    assert query_pairs(query) == parse_qsl(query.decode("latin-1"), keep_blank_values=True)
