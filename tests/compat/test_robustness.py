"""Request robustness: malformed JSON, wrong types, unknown fields, partial nested defaults (§1.2, §1.4)."""

from __future__ import annotations

import pytest

from compat_helpers import (
    assert_fastapi_422,
    customer_client,
    ensure_customer,
    new_customer_id,
    org_client,
    raw,
)

ORG_POSTS = [
    "/user",
    "/list_users",
    "/delete_users",
    "/update_users",
    "/organization/update",
    "/white_label/create",
    "/white_label/list",
    "/white_label/update",
    "/white_label/delete",
    "/add_webhook",
    "/webhooks",
]


@pytest.mark.parametrize("path", ORG_POSTS)
@pytest.mark.parametrize("payload", [b'{"pagination": ', b"not json at all", b"[1, 2,", b'{"a": 1}}'])
def test_malformed_json_is_422_never_500(base_url, org_a, path, payload):
    status, body, _ = raw(
        base_url, "POST", path, headers={"authorization": f"Bearer {org_a.api_key}"}, data=payload
    )
    assert_fastapi_422(status, body, f"POST {path} with malformed JSON {payload!r}")


def test_malformed_json_on_customer_endpoint(base_url, org_a):
    cid = new_customer_id()
    status, body, _ = raw(
        base_url,
        "POST",
        "/modify_user_configuration",
        headers={"authorization": f"Bearer {org_a.api_key}", "customer-id": cid},
        data=b'{"configuration_key_name": "sparse_vectors", "value": ',
    )
    assert_fastapi_422(status, body, "POST /modify_user_configuration with malformed JSON")


@pytest.mark.parametrize(
    "path,payload,loc",
    [
        ("/list_users", {"pagination": {"limit": "ten"}}, "limit"),
        ("/list_users", {"pagination": "x"}, "pagination"),
        ("/list_users", {"filters": {"carbon_user_ids": ["abc"]}}, "carbon_user_ids"),
        ("/list_users", {"order_dir": "sideways"}, "order_dir"),
        ("/webhooks", {"pagination": {"offset": "x"}}, "offset"),
        ("/white_label/list", {"filters": {"data_source_type": ["NOT_A_SOURCE"]}}, "data_source_type"),
        ("/add_webhook", {"url": 12345}, "url"),
        ("/user", {"customer_id": ["a"]}, "customer_id"),
    ],
)
def test_wrong_types_are_422(base_url, org_a, path, payload, loc):
    status, body, _ = raw(base_url, "POST", path, headers={"authorization": f"Bearer {org_a.api_key}"}, json_body=payload)
    assert_fastapi_422(status, body, f"POST {path} {payload!r}", loc_contains=loc)


def test_body_not_an_object_is_422(base_url, org_a):
    status, body, _ = raw(base_url, "POST", "/list_users", headers={"authorization": f"Bearer {org_a.api_key}"}, json_body=[1, 2])
    assert_fastapi_422(status, body, "POST /list_users with a JSON array body")


def test_unknown_fields_are_ignored(base_url, org_a):
    cid = new_customer_id()
    ensure_customer(base_url, org_a.api_key, cid)
    auth = {"authorization": f"Bearer {org_a.api_key}"}
    status, body, _ = raw(
        base_url,
        "POST",
        "/list_users",
        headers=auth,
        json_body={
            "bogus": 1,
            "pagination": {"limit": 2, "extra": True},
            "filters": {"customer_ids": [cid], "also_unknown": "x"},
        },
    )
    assert status == 200, f"POST /list_users with unknown fields must be 200, got {status} {body!r}"
    assert [u["organization_supplied_user_id"] for u in body["users"]] == [cid]
    status, body, _ = raw(base_url, "POST", "/user", headers=auth, json_body={"customer_id": cid, "future_field": [1]})
    assert status == 200, f"POST /user with an unknown field must be 200, got {status} {body!r}"
    status, body, _ = raw(base_url, "POST", "/webhooks", headers=auth, json_body={"unknown": {"nested": 1}})
    assert status == 200, f"POST /webhooks with an unknown field must be 200, got {status} {body!r}"


def test_null_for_optional_objects_means_default(base_url, org_a):
    cid = new_customer_id()
    ensure_customer(base_url, org_a.api_key, cid)
    status, body, _ = raw(
        base_url,
        "POST",
        "/list_users",
        headers={"authorization": f"Bearer {org_a.api_key}"},
        json_body={"filters": {"customer_ids": [cid], "carbon_user_ids": None}},
    )
    assert status == 200, f"nullable filter fields must accept null: {status} {body!r}"
    assert len(body["users"]) == 1


def test_partial_nested_defaults_through_sdk(base_url, org_a):
    ids = [new_customer_id("partial") for _ in range(2)]
    for c in ids:
        ensure_customer(base_url, org_a.api_key, c)
    oc = org_client(base_url, org_a.api_key)
    res = oc.users.list(pagination={"limit": 1}, filters={"customer_ids": ids}, validate=True)
    assert len(res.users) == 1, "pagination={'limit': 1} must merge over the defaults (offset 0)"
    res = oc.users.list(pagination={"starting_id": 0}, filters={"customer_ids": ids}, validate=True)
    assert len(res.users) == 2, "pagination={'starting_id': 0} must keep the default limit (10)"


def test_json_content_type_on_responses(base_url, org_a):
    cid = new_customer_id()
    for method, path, headers, body in (
        ("GET", "/organization", {"authorization": f"Bearer {org_a.api_key}"}, None),
        ("GET", "/whoami", {"authorization": f"Bearer {org_a.api_key}", "customer-id": cid}, None),
        ("GET", "/whoami", {}, None),
        ("POST", "/list_users", {"authorization": f"Bearer {org_a.api_key}"}, {}),
        ("GET", "/organization", {"authorization": "Bearer nope"}, None),
    ):
        status, parsed, resp = raw(base_url, method, path, headers=headers, json_body=body)
        ctype = resp.headers.get("content-type", "")
        assert ctype.startswith("application/json"), f"{method} {path} ({status}) content-type={ctype!r}"
        assert isinstance(parsed, dict), f"{method} {path} ({status}) must answer a JSON object: {parsed!r}"
        if status >= 400:
            assert "detail" in parsed, f"{method} {path} error must use FastAPI's {{'detail': ...}}: {parsed!r}"


def test_unknown_path_is_404_json(base_url, org_a):
    status, body, resp = raw(base_url, "GET", "/no/such/endpoint", headers={"authorization": f"Bearer {org_a.api_key}"})
    assert status == 404, f"unknown path: {status} {body!r}"
    assert isinstance(body, dict) and "detail" in body, f"404 must be {{'detail': ...}}: {body!r}"


def test_sdk_host_with_trailing_slash(base_url, org_a):
    # The SDK strips a trailing slash from the host; make sure that form works too.
    c = customer_client(base_url + "/", org_a.api_key, new_customer_id())
    assert c.users.who_am_i(validate=True).organization_id == org_a.id


@pytest.mark.parametrize(
    "case,method,path,auth",
    [
        ("missing authorization", "POST", "/list_users", None),
        ("wrong api key", "POST", "/list_users", "Bearer wrong-key"),
        ("customer token on org endpoint", "POST", "/webhooks", "TOKEN"),
        ("unknown path", "POST", "/no/such/endpoint", "KEY"),
        ("accepted request", "POST", "/list_users", "KEY"),
    ],
)
def test_keep_alive_survives_rejected_requests(base_url, org_a, case, method, path, auth):
    """The SDK pools keep-alive connections (urllib3) and does not retry a POST whose connection was
    closed under it. A response to a request whose body the server did not read must either leave the
    connection usable or say `Connection: close`; silently closing it makes the caller's *next* call
    fail with RemoteDisconnected."""
    import http.client
    from urllib.parse import urlsplit

    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if auth == "KEY":
        headers["authorization"] = f"Bearer {org_a.api_key}"
    elif auth == "TOKEN":
        headers["authorization"] = f"Token {ensure_customer(base_url, org_a.api_key, new_customer_id())}"
    elif auth:
        headers["authorization"] = auth
    big = ('{"filters": {"customer_ids": ["' + "x" * 200_000 + '"]}}').encode()
    u = urlsplit(base_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request(method, path, body=big, headers=headers)
        first = conn.getresponse()
        first.read()
        if (first.getheader("connection") or "").lower() == "close":
            return
        try:
            conn.request("POST", "/list_users", body=b"{}", headers={"Content-Type": "application/json"})
            second = conn.getresponse()
            second.read()
        except (http.client.HTTPException, ConnectionError) as e:
            raise AssertionError(
                f"{case}: after a {first.status} to {method} {path} (request body unread?), the server "
                f"closed the keep-alive connection without `Connection: close`; the next request failed "
                f"with {e!r}. The SDK's next POST would fail the same way."
            ) from None
        assert second.status == 422, f"{case}: second request on the reused connection: {second.status}"
    finally:
        conn.close()
