"""Tenancy: two organisations never see each other's customers (webhooks and white labels are
covered in their own modules)."""

from __future__ import annotations

from compat_helpers import (
    customer_client,
    ensure_customer,
    expect_api_error,
    new_customer_id,
    org_client,
    raw,
    token_client,
)


def test_same_customer_id_in_two_orgs_are_different_users(base_url, org_a, org_b):
    cid = new_customer_id("shared")
    ta = ensure_customer(base_url, org_a.api_key, cid)
    tb = ensure_customer(base_url, org_b.api_key, cid)
    ma = token_client(base_url, ta).users.who_am_i(validate=True)
    mb = token_client(base_url, tb).users.who_am_i(validate=True)
    assert ma.organization_id == org_a.id and mb.organization_id == org_b.id, (
        f"tokens must stay bound to their org: A→{ma.organization_id}, B→{mb.organization_id}"
    )
    assert ma.id != mb.id, "the same customer id in two orgs must be two distinct users"
    assert org_client(base_url, org_a.api_key).users.get(customer_id=cid, validate=True).id == ma.id
    assert org_client(base_url, org_b.api_key).users.get(customer_id=cid, validate=True).id == mb.id


def test_org_cannot_see_other_orgs_users(base_url, org_a, org_b):
    only_a = new_customer_id("only-a")
    ensure_customer(base_url, org_a.api_key, only_a)
    ua = org_client(base_url, org_a.api_key).users.get(customer_id=only_a, validate=True)
    ob = org_client(base_url, org_b.api_key)
    expect_api_error(lambda: ob.users.get(customer_id=only_a, validate=True), {404}, "org B POST /user for org A's customer")
    assert ob.users.list(filters={"customer_ids": [only_a]}, validate=True).users == [], (
        "org B's /list_users must not return org A's customer"
    )
    assert ob.users.list(filters={"carbon_user_ids": [ua.id]}, validate=True).users == [], (
        "org B's /list_users must not return org A's user by carbon id"
    )
    listed = ob.users.list(pagination={"limit": 100}, include_count=True, validate=True)
    assert all(u.organization_id == org_b.id for u in listed.users), "org B listed users of another org"


def test_org_cannot_delete_or_update_other_orgs_users(base_url, org_a, org_b):
    only_a = new_customer_id("only-a")
    ensure_customer(base_url, org_a.api_key, only_a)
    ob = org_client(base_url, org_b.api_key)
    try:
        ob.users.delete(customer_ids=[only_a], validate=True)
    except Exception as e:  # noqa: BLE001 - 4xx or a no-op success are both fine
        assert 400 <= getattr(e, "status", 0) < 500, f"org B deleting org A's customer: {e!r}"
    ua = org_client(base_url, org_a.api_key).users.get(customer_id=only_a, validate=True)
    assert ua.deleted_at is None, "org B must not be able to delete org A's customer"

    ob.users.update_users(customer_ids=[only_a], auto_sync_enabled_sources=["DROPBOX"], validate=True)
    ua = org_client(base_url, org_a.api_key).users.get(customer_id=only_a, validate=True)
    assert list(ua.auto_sync_enabled_sources or []) == [], (
        f"org B's /update_users must not change org A's customer: {ua.auto_sync_enabled_sources!r}"
    )


def test_org_key_with_other_orgs_customer_token(base_url, org_a, org_b):
    cid = new_customer_id("x")
    ta = ensure_customer(base_url, org_a.api_key, cid)
    # org B's key + customer id creates/uses org B's customer, never org A's
    mb = customer_client(base_url, org_b.api_key, cid).users.who_am_i(validate=True)
    assert mb.organization_id == org_b.id
    ma = token_client(base_url, ta).users.who_am_i(validate=True)
    assert ma.id != mb.id


def test_organization_endpoint_is_per_key(base_url, org_a, org_b):
    a = org_client(base_url, org_a.api_key).organizations.get(validate=True)
    b = org_client(base_url, org_b.api_key).organizations.get(validate=True)
    assert (a.id, a.name) == (org_a.id, org_a.name)
    assert (b.id, b.name) == (org_b.id, org_b.name)


def test_org_settings_do_not_leak(base_url, new_org):
    a, b = new_org(), new_org()
    org_client(base_url, a.api_key).organizations.update(global_user_config={"max_files": 3}, validate=True)
    status, body, _ = raw(base_url, "GET", "/organization", headers={"authorization": f"Bearer {b.api_key}"})
    assert status == 200
    assert (body.get("global_user_config") or {}).get("max_files") != 3, (
        f"org A's global_user_config leaked into org B: {body.get('global_user_config')!r}"
    )
