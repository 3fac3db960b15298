"""The OpenAPI document: bearer auth and every error response in our envelope; docs served
locally."""

from __future__ import annotations

import re


def test_every_keyed_operation_declares_bearer_auth_and_the_error_envelope(client):
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key from `notifier keys create`",
    }
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    keyed = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for status in ("400", "403", "404", "413", "415", "422", "503"):
                assert responses[status]["content"]["application/json"]["schema"] == envelope, (
                    path,
                    method,
                    status,
                )
            if path.startswith("/v1/notifications"):
                keyed += 1
                assert operation["security"] == [{"bearer": []}]
                for status in ("401", "429"):
                    assert responses[status]["content"]["application/json"]["schema"] == envelope
    assert keyed == 5  # send, batch, read one, list, cancel
    codes = schema["components"]["schemas"]["ErrorCode"]["enum"]
    assert "unsupported_media_type" in codes and "template_error" in codes


def test_field_maxima_are_in_the_document(client):
    email = client.get("/openapi.json").json()["components"]["schemas"]["EmailRequest"][
        "properties"
    ]
    assert email["subject"]["anyOf"][0]["maxLength"] == 998
    assert email["html"]["anyOf"][0]["maxLength"] == 500_000
    assert email["data"]["maxProperties"] == 200


def test_swagger_ui_and_redoc_load_their_assets_from_this_server(client):
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html)
        assert assets, page
        for asset in assets:
            assert asset.startswith("/"), asset  # no CDN
            assert client.get(asset).status_code == 200
