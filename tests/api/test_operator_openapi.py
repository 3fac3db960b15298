"""The operator routes are in the OpenAPI document with their request and page schemas."""

from __future__ import annotations

ROUTES = {
    "/v1/notifications/{notification_id}/cancel": "post",
    "/v1/suppressions": "get",
    "/v1/suppressions/{suppression_id}/lift": "post",
    "/v1/keys": "post",
    "/v1/keys/{key_id}/rotate": "post",
    "/v1/keys/{key_id}/revoke": "post",
    "/v1/erasures": "post",
    "/v1/templates": "get",
    "/v1/audiences/{name}/contacts": "get",
    "/v1/imports": "get",
    "/v1/campaigns/{campaign_id}/runs": "get",
    "/v1/templates/{name}/archive": "post",
    "/v1/campaigns/{campaign_id}/archive": "post",
}


def test_operator_routes_are_documented(client):
    spec = client.get("/openapi.json").json()
    for path, method in ROUTES.items():
        assert method in spec["paths"].get(path, {}), path
    schemas = spec["components"]["schemas"]
    assert {"SuppressionPage", "Page_TemplateOut_", "KeyIn", "ErasureIn", "RotateIn"} <= set(
        schemas
    )
    assert (
        "key" in schemas["NewKeyOut"]["properties"] and "key" not in schemas["KeyOut"]["properties"]
    )
