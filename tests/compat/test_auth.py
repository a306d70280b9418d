"""Authentication: access tokens and the header matrix the official SDK produces (§2)."""

from __future__ import annotations

from carbon import Carbon

from compat_helpers import (
    CLIENT_ERRORS,
    assert_fastapi_422,
    customer_client,
    ensure_customer,
    expect_api_error,
    new_customer_id,
    org_client,
    raw,
    raw_multi_header,
    token_client,
)


def test_access_token_creates_customer_on_first_use(base_url, org_a, cid):
    tok = customer_client(base_url, org_a.api_key, cid).auth.get_access_token(validate=True)
    assert isinstance(tok.access_token, str) and tok.access_token, "access_token must be a non-empty string"
    assert isinstance(tok.refresh_token, str) and tok.refresh_token, "refresh_token must be a non-empty string"

    user = org_client(base_url, org_a.api_key).users.get(customer_id=cid, validate=True)
    assert user.organization_supplied_user_id == cid, (
        f"POST /user for the customer created by /auth/v1/access_token returned "
        f"organization_supplied_user_id={user.organization_supplied_user_id!r}, expected {cid!r}"
    )
    assert user.organization_id == org_a.id, f"user.organization_id={user.organization_id}, expected {org_a.id}"


def test_access_token_is_usable_as_token_client(base_url, org_a, cid):
    token = ensure_customer(base_url, org_a.api_key, cid)
    me = token_client(base_url, token).users.who_am_i(validate=True)
    assert me.organization_supplied_user_id == cid, (
        f"GET /whoami with `Token <access_token>` identified {me.organization_supplied_user_id!r}, expected {cid!r}"
    )
    assert me.organization_id == org_a.id


def test_access_token_twice_keeps_same_customer(base_url, org_a, cid):
    c = customer_client(base_url, org_a.api_key, cid)
    t1 = c.auth.get_access_token(validate=True).access_token
    t2 = c.auth.get_access_token(validate=True).access_token
    me1 = token_client(base_url, t1).users.who_am_i(validate=True)
    me2 = token_client(base_url, t2).users.who_am_i(validate=True)
    assert me1.id == me2.id, "two access tokens for one customer must map to the same carbon user"
    listed = org_client(base_url, org_a.api_key).users.list(filters={"customer_ids": [cid]}, validate=True)
    assert len(listed.users) == 1, f"one customer id must give exactly one user, got {len(listed.users)}"


def test_access_token_can_be_minted_with_a_token(base_url, org_a, cid):
    token = ensure_customer(base_url, org_a.api_key, cid)
    new = token_client(base_url, token).auth.get_access_token(validate=True)
    me = token_client(base_url, new.access_token).users.who_am_i(validate=True)
    assert me.organization_supplied_user_id == cid


def test_bearer_with_customer_id(base_url, org_a, cid):
    me = customer_client(base_url, org_a.api_key, cid).users.who_am_i(validate=True)
    assert me.organization_supplied_user_id == cid
    assert me.organization_id == org_a.id


def test_client_with_both_token_and_key_sends_two_authorization_headers(base_url, org_a, cid):
    token = ensure_customer(base_url, org_a.api_key, cid)
    both = Carbon(host=base_url, access_token=token, api_key=org_a.api_key, customer_id=cid)
    me = both.users.who_am_i(validate=True)
    assert me.organization_supplied_user_id == cid
    # org endpoints only get the Bearer key from such a client
    org = both.organizations.get(validate=True)
    assert org.id == org_a.id


def test_two_authorization_headers_any_valid_credential_wins(base_url, org_a, cid):
    token = ensure_customer(base_url, org_a.api_key, cid)
    # valid token, wrong key
    c1 = Carbon(host=base_url, access_token=token, api_key="wrong-" + org_a.api_key, customer_id=cid)
    assert c1.users.who_am_i(validate=True).organization_supplied_user_id == cid, (
        "valid `Token` + invalid `Bearer` must be accepted (any presented credential valid)"
    )
    # wrong token, valid key + customer id
    c2 = Carbon(host=base_url, access_token="not-a-token", api_key=org_a.api_key, customer_id=cid)
    assert c2.users.who_am_i(validate=True).organization_supplied_user_id == cid, (
        "invalid `Token` + valid `Bearer` + customer-id must be accepted"
    )
    # Raw: Bearer first, then Token
    status, body = raw_multi_header(
        base_url,
        "GET",
        "/whoami",
        [
            ("Accept", "application/json"),
            ("authorization", f"Bearer {org_a.api_key}"),
            ("authorization", f"Token {token}"),
            ("customer-id", cid),
        ],
    )
    assert status == 200, f"GET /whoami with Bearer then Token headers: expected 200, got {status} {body!r}"
    assert body.get("organization_supplied_user_id") == cid


def test_lowercase_schemes(base_url, org_a, cid):
    token = ensure_customer(base_url, org_a.api_key, cid)
    status, body, _ = raw(base_url, "GET", "/whoami", headers={"authorization": f"bearer {org_a.api_key}", "customer-id": cid})
    assert status == 200, f"`bearer` (lower case) must be accepted: got {status} {body!r}"
    assert body["organization_supplied_user_id"] == cid
    status, body, _ = raw(base_url, "GET", "/whoami", headers={"authorization": f"token {token}"})
    assert status == 200, f"`token` (lower case, as in Carbon's docs) must be accepted: got {status} {body!r}"
    assert body["organization_supplied_user_id"] == cid
    status, body, _ = raw(base_url, "GET", "/organization", headers={"authorization": f"BEARER {org_a.api_key}"})
    assert status == 200, f"`BEARER` must be accepted on org endpoints: got {status} {body!r}"


def test_missing_authorization_is_422_with_detail_list(base_url):
    for method, path, body in (
        ("GET", "/whoami", None),
        ("GET", "/organization", None),
        ("POST", "/list_users", {}),
        ("GET", "/auth/v1/access_token", None),
    ):
        status, resp, _ = raw(base_url, method, path, json_body=body)
        assert_fastapi_422(status, resp, f"{method} {path} without authorization", loc_contains="authorization")


def test_wrong_api_key_is_401(base_url, org_a, cid):
    bad = "wrong-" + org_a.api_key
    expect_api_error(lambda: Carbon(host=base_url, api_key=bad).organizations.get(validate=True), {401}, "GET /organization with a wrong key")
    expect_api_error(lambda: Carbon(host=base_url, api_key=bad).users.list(validate=True), {401}, "POST /list_users with a wrong key")
    expect_api_error(
        lambda: Carbon(host=base_url, api_key=bad, customer_id=cid).users.who_am_i(validate=True),
        {401},
        "GET /whoami with a wrong key",
    )
    expect_api_error(
        lambda: Carbon(host=base_url, api_key=bad, customer_id=cid).auth.get_access_token(validate=True),
        {401},
        "GET /auth/v1/access_token with a wrong key",
    )


def test_wrong_token_is_401(base_url):
    expect_api_error(
        lambda: token_client(base_url, "definitely-not-a-token").users.who_am_i(validate=True),
        {401},
        "GET /whoami with an unknown Token",
    )


def test_unknown_scheme_is_rejected(base_url, org_a, cid):
    status, body, _ = raw(base_url, "GET", "/whoami", headers={"authorization": f"Basic {org_a.api_key}", "customer-id": cid})
    assert status in CLIENT_ERRORS, f"`Basic` scheme must be rejected with 4xx, got {status} {body!r}"


def test_org_endpoint_with_only_customer_token_is_an_error(base_url, org_a, cid):
    token = ensure_customer(base_url, org_a.api_key, cid)
    tc = token_client(base_url, token)
    # The SDK sends no authorization header at all here (org endpoints only carry apiKey) → 422.
    for what, call in (
        ("GET /organization", lambda: tc.organizations.get(validate=True)),
        ("POST /list_users", lambda: tc.users.list(validate=True)),
        ("POST /webhooks", lambda: tc.webhooks.urls(validate=True)),
        ("POST /user", lambda: tc.users.get(customer_id=cid, validate=True)),
        ("POST /white_label/list", lambda: tc.white_label.list(validate=True)),
    ):
        expect_api_error(call, CLIENT_ERRORS, f"{what} from a token-only SDK client")
    # Raw: explicitly presenting the customer token on an org endpoint must not grant access.
    for method, path, body in (
        ("GET", "/organization", None),
        ("POST", "/list_users", {}),
        ("POST", "/webhooks", {}),
        ("POST", "/delete_users", {"customer_ids": [cid]}),
    ):
        status, resp, _ = raw(base_url, method, path, headers={"authorization": f"Token {token}"}, json_body=body)
        assert status in CLIENT_ERRORS, (
            f"{method} {path} with only `Token <customer token>`: expected 4xx, got {status} {resp!r}"
        )
    # the customer must still exist (the raw delete above must not have worked)
    user = org_client(base_url, org_a.api_key).users.get(customer_id=cid, validate=True)
    assert user.deleted_at is None, "a customer token must not be able to delete users"


def test_customer_endpoint_with_key_but_no_customer_id_is_an_error(base_url, org_a):
    status, body, _ = raw(base_url, "GET", "/whoami", headers={"authorization": f"Bearer {org_a.api_key}"})
    assert status in CLIENT_ERRORS, f"GET /whoami with Bearer but without customer-id: expected 4xx, got {status} {body!r}"


def test_customer_id_header_on_org_endpoint_is_harmless(base_url, org_a):
    cid = new_customer_id()
    status, body, _ = raw(
        base_url, "GET", "/organization", headers={"authorization": f"Bearer {org_a.api_key}", "customer-id": cid}
    )
    assert status == 200, f"GET /organization with an extra customer-id header: expected 200, got {status} {body!r}"
    assert body["id"] == org_a.id
