"""Users: /whoami, /user, /list_users, /delete_users, /update_users, /modify_user_configuration (§7)."""

from __future__ import annotations

from datetime import datetime

import pytest
from carbon.exceptions import SchemaValidationError

from compat_helpers import (
    CLIENT_ERRORS,
    assert_fastapi_422,
    customer_client,
    ensure_customer,
    expect_api_error,
    new_customer_id,
    org_client,
    plain,
    raw,
    token_client,
)


def _make_customers(base_url, org, n, prefix="list"):
    ids = [new_customer_id(prefix) for _ in range(n)]
    for c in ids:
        ensure_customer(base_url, org.api_key, c)
    return ids


def _user_by_cid(base_url, org, customer_id):
    return org_client(base_url, org.api_key).users.get(customer_id=customer_id, validate=True)


# --------------------------------------------------------------------------- /whoami, /user


def test_whoami_fresh_customer(base_url, org_a, cid):
    me = customer_client(base_url, org_a.api_key, cid).users.who_am_i(validate=True)
    assert me.organization_supplied_user_id == cid
    assert me.organization_id == org_a.id
    assert me.deleted_at is None, f"fresh customer must not be deleted, deleted_at={me.deleted_at!r}"
    assert isinstance(me.created_at, datetime) and me.created_at.tzinfo is not None, (
        f"created_at must be an ISO-8601 datetime with offset, got {me.created_at!r}"
    )
    assert me.num_files_synced == 0 and me.num_characters_synced == 0 and me.num_tokens_synced == 0, (
        "a fresh customer has synced nothing"
    )
    assert list(me.unique_file_tags) == [], f"fresh customer unique_file_tags={me.unique_file_tags!r}"


def test_whoami_lazily_creates_customer_with_api_key(base_url, org_a, cid):
    customer_client(base_url, org_a.api_key, cid).users.who_am_i(validate=True)
    user = _user_by_cid(base_url, org_a, cid)
    assert user.organization_supplied_user_id == cid


def test_user_matches_whoami(base_url, org_a, cid):
    token = ensure_customer(base_url, org_a.api_key, cid)
    me = token_client(base_url, token).users.who_am_i(validate=True)
    user = _user_by_cid(base_url, org_a, cid)
    assert user.id == me.id, f"POST /user id={user.id} differs from GET /whoami id={me.id}"
    assert user.organization_id == org_a.id
    assert user.created_at == me.created_at


def test_user_unknown_customer_is_404(base_url, org_a):
    unknown = new_customer_id("never-seen")
    expect_api_error(
        lambda: org_client(base_url, org_a.api_key).users.get(customer_id=unknown, validate=True),
        {404},
        "POST /user for a customer id never used",
    )


def test_user_missing_customer_id_is_422(base_url, org_a):
    status, body, _ = raw(base_url, "POST", "/user", headers={"authorization": f"Bearer {org_a.api_key}"}, json_body={})
    assert_fastapi_422(status, body, "POST /user {}", loc_contains="customer_id")


# --------------------------------------------------------------------------- /list_users


def test_list_users_filter_by_customer_ids_and_count(base_url, org_a):
    ids = _make_customers(base_url, org_a, 3)
    oc = org_client(base_url, org_a.api_key)
    res = oc.users.list(filters={"customer_ids": ids}, include_count=True, validate=True)
    got = sorted(u.organization_supplied_user_id for u in res.users)
    assert got == sorted(ids), f"POST /list_users filters.customer_ids returned {got}, expected {sorted(ids)}"
    assert res.count == 3, f"include_count=true must give count=3, got {res.count!r}"
    for u in res.users:
        assert u.organization_id == org_a.id
        assert u.deleted_at is None


def test_list_users_empty_body_defaults(base_url, fresh_org):
    ids = _make_customers(base_url, fresh_org, 11, prefix="dflt")
    oc = org_client(base_url, fresh_org.api_key)
    res = oc.users.list(validate=True)
    assert len(res.users) == 10, f"POST /list_users {{}}: default pagination.limit is 10, got {len(res.users)} users"
    assert {u.organization_supplied_user_id for u in res.users} <= set(ids)
    res = oc.users.list(include_count=True, validate=True)
    assert res.count == 11, f"include_count=true in an org with 11 customers: count={res.count!r}"


def test_list_users_filter_by_carbon_user_ids(base_url, org_a):
    ids = _make_customers(base_url, org_a, 2)
    target = _user_by_cid(base_url, org_a, ids[1])
    res = org_client(base_url, org_a.api_key).users.list(filters={"carbon_user_ids": [target.id]}, validate=True)
    assert [u.id for u in res.users] == [target.id], (
        f"filters.carbon_user_ids=[{target.id}] returned ids {[u.id for u in res.users]}"
    )


def test_list_users_partial_pagination_object(base_url, org_a):
    ids = _make_customers(base_url, org_a, 3)
    oc = org_client(base_url, org_a.api_key)
    res = oc.users.list(pagination={"limit": 1}, filters={"customer_ids": ids}, include_count=True, validate=True)
    assert len(res.users) == 1, (
        f"pagination={{'limit':1}} (offset/starting_id omitted → defaults) must return 1 user, got {len(res.users)}"
    )
    assert res.count == 3, f"count must be the total matching (3), not the page size; got {res.count!r}"
    res = oc.users.list(pagination={"offset": 2}, filters={"customer_ids": ids}, validate=True)
    assert len(res.users) == 1, f"pagination={{'offset':2}} over 3 users must return 1 user, got {len(res.users)}"


def test_list_users_pagination_pages_cover_all(base_url, org_a):
    ids = _make_customers(base_url, org_a, 3)
    oc = org_client(base_url, org_a.api_key)
    seen = []
    for offset in range(4):
        page = oc.users.list(
            pagination={"limit": 1, "offset": offset},
            filters={"customer_ids": ids},
            order_by="created_at",
            order_dir="asc",
            validate=True,
        )
        seen.extend(u.organization_supplied_user_id for u in page.users)
    assert sorted(seen) == sorted(ids) and len(seen) == 3, (
        f"paging limit=1 offset=0..3 must visit each of the 3 users exactly once, got {seen}"
    )


def test_list_users_order(base_url, org_a):
    ids = _make_customers(base_url, org_a, 3)
    oc = org_client(base_url, org_a.api_key)
    asc = oc.users.list(filters={"customer_ids": ids}, order_by="created_at", order_dir="asc", validate=True).users
    desc = oc.users.list(filters={"customer_ids": ids}, order_by="created_at", order_dir="desc", validate=True).users
    default = oc.users.list(filters={"customer_ids": ids}, validate=True).users
    asc_t = [u.created_at for u in asc]
    desc_t = [u.created_at for u in desc]
    assert asc_t == sorted(asc_t), f"order_dir=asc must sort created_at ascending: {asc_t}"
    assert desc_t == sorted(desc_t, reverse=True), f"order_dir=desc must sort created_at descending: {desc_t}"
    assert [u.id for u in default] == [u.id for u in desc], (
        "default ordering is created_at desc: the body {} must order like order_dir=desc"
    )
    if len(set(asc_t)) == len(asc_t):
        assert [u.id for u in asc] == [u.id for u in reversed(desc)], "asc must be the reverse of desc"
    res = oc.users.list(filters={"customer_ids": ids}, order_by="updated_at", order_dir="asc", validate=True)
    assert len(res.users) == 3, "order_by=updated_at must be accepted"


def test_list_users_invalid_order_by_is_422(base_url, org_a):
    status, body, _ = raw(
        base_url, "POST", "/list_users", headers={"authorization": f"Bearer {org_a.api_key}"}, json_body={"order_by": "nonsense"}
    )
    assert_fastapi_422(status, body, "POST /list_users order_by=nonsense", loc_contains="order_by")


# --------------------------------------------------------------------------- /delete_users


def test_delete_users(base_url, org_a):
    keep, gone = _make_customers(base_url, org_a, 2, prefix="del")
    oc = org_client(base_url, org_a.api_key)
    res = oc.users.delete(customer_ids=[gone], validate=True)
    assert res.success is True, f"POST /delete_users must answer success=true, got {res!r}"

    listed = oc.users.list(filters={"customer_ids": [keep, gone]}, validate=True).users
    live = [u.organization_supplied_user_id for u in listed if u.deleted_at is None]
    assert live == [keep], f"after deleting {gone}, list_users must only show {keep} as live, got {live}"

    try:
        user = oc.users.get(customer_id=gone, validate=True)
    except Exception as e:  # noqa: BLE001 - a 404 is the other acceptable outcome
        status = getattr(e, "status", None)
        assert status == 404, f"POST /user for a deleted customer: expected 404 or deleted_at set, got {e!r}"
    else:
        assert user.deleted_at is not None, "POST /user for a deleted customer must show deleted_at or 404"
    assert oc.users.get(customer_id=keep, validate=True).deleted_at is None


def test_delete_users_missing_body_field_is_422(base_url, org_a):
    status, body, _ = raw(base_url, "POST", "/delete_users", headers={"authorization": f"Bearer {org_a.api_key}"}, json_body={})
    assert_fastapi_422(status, body, "POST /delete_users {}", loc_contains="customer_ids")
    status, body, _ = raw(
        base_url, "POST", "/delete_users", headers={"authorization": f"Bearer {org_a.api_key}"}, json_body={"customer_ids": "x"}
    )
    assert_fastapi_422(status, body, 'POST /delete_users {"customer_ids":"x"}', loc_contains="customer_ids")


# --------------------------------------------------------------------------- /update_users


def _auto_sync(base_url, org, customer_id):
    user = _user_by_cid(base_url, org, customer_id)
    listed = org_client(base_url, org.api_key).users.list(filters={"customer_ids": [customer_id]}, validate=True).users
    assert len(listed) == 1
    return plain(user.auto_sync_enabled_sources), plain(listed[0].auto_sync_enabled_sources)


def test_update_users_list_of_sources(base_url, org_a):
    ids = _make_customers(base_url, org_a, 2, prefix="upd")
    oc = org_client(base_url, org_a.api_key)
    res = oc.users.update_users(customer_ids=ids, auto_sync_enabled_sources=["DROPBOX"], validate=True)
    assert res.success is True
    for c in ids:
        from_user, from_list = _auto_sync(base_url, org_a, c)
        assert from_user == ["DROPBOX"], f"/user auto_sync_enabled_sources after update: {from_user!r}"
        assert from_list == ["DROPBOX"], f"/list_users auto_sync_enabled_sources after update: {from_list!r}"

    res = oc.users.update_users(customer_ids=ids, auto_sync_enabled_sources=[], validate=True)
    assert res.success is True
    for c in ids:
        from_user, _ = _auto_sync(base_url, org_a, c)
        assert from_user in ([], None), f"`[]` removes all sources; got {from_user!r}"


def test_update_users_all_string(base_url, org_a, cid):
    ensure_customer(base_url, org_a.api_key, cid)
    res = org_client(base_url, org_a.api_key).users.update_users(
        customer_ids=[cid], auto_sync_enabled_sources="ALL", validate=True
    )
    assert res.success is True
    from_user, from_list = _auto_sync(base_url, org_a, cid)
    assert from_user == ["ALL"] or "DROPBOX" in (from_user or []), (
        f'"ALL" must be stored as ["ALL"] or the expanded source list; /user shows {from_user!r}'
    )
    assert from_list == from_user


def test_update_users_limits_and_interval(base_url, org_a, cid):
    ensure_customer(base_url, org_a.api_key, cid)
    oc = org_client(base_url, org_a.api_key)
    res = oc.users.update_users(
        customer_ids=[cid],
        auto_sync_interval=24,
        max_files=10,
        max_files_per_upload=5,
        max_characters=-1,
        validate=True,
    )
    assert res.success is True
    limits = plain(oc.users.get(customer_id=cid, validate=True).custom_limits) or {}
    assert limits.get("max_files") == 10 and limits.get("max_files_per_upload") == 5, (
        f"/user custom_limits must reflect max_files=10, max_files_per_upload=5; got {limits!r}"
    )
    assert limits.get("max_characters") in (None, -1), f"max_characters=-1 means unlimited; got {limits!r}"
    res = oc.users.update_users(customer_ids=[cid], auto_sync_interval=-1, validate=True)
    assert res.success is True, "auto_sync_interval=-1 (use org/global default) must be accepted"


@pytest.mark.parametrize("interval", [5, 0, 48])
def test_update_users_bad_interval_rejected(base_url, org_a, cid, interval):
    ensure_customer(base_url, org_a.api_key, cid)
    expect_api_error(
        lambda: org_client(base_url, org_a.api_key).users.update_users(
            customer_ids=[cid], auto_sync_interval=interval, validate=True
        ),
        {400, 422},
        f"POST /update_users auto_sync_interval={interval} (must be one of 3, 6, 12, 24 or -1)",
    )


def test_update_users_100_ids_accepted(base_url, org_a):
    ids = [new_customer_id("bulk") for _ in range(100)]
    res = org_client(base_url, org_a.api_key).users.update_users(
        customer_ids=ids, auto_sync_enabled_sources=["DROPBOX"], validate=True
    )
    assert res.success is True, "100 customer ids is the documented maximum and must be accepted"


def test_update_users_101_ids_blocked_by_sdk(base_url, org_a):
    ids = [new_customer_id("bulk") for _ in range(101)]
    with pytest.raises(SchemaValidationError):
        org_client(base_url, org_a.api_key).users.update_users(customer_ids=ids, validate=True)


def test_update_users_101_ids_raw_is_422(base_url, org_a):
    ids = [new_customer_id("bulk") for _ in range(101)]
    status, body, _ = raw(
        base_url,
        "POST",
        "/update_users",
        headers={"authorization": f"Bearer {org_a.api_key}"},
        json_body={"customer_ids": ids, "auto_sync_enabled_sources": "ALL"},
    )
    assert_fastapi_422(status, body, "POST /update_users with 101 customer ids", loc_contains="customer_ids")
    msg = " ".join(str(d.get("msg", "")) for d in body["detail"])
    assert "100" in msg, f"the 422 message should state the limit of 100, got {body['detail']!r}"


def test_update_users_unknown_source_is_422(base_url, org_a, cid):
    status, body, _ = raw(
        base_url,
        "POST",
        "/update_users",
        headers={"authorization": f"Bearer {org_a.api_key}"},
        json_body={"customer_ids": [cid], "auto_sync_enabled_sources": ["NOT_A_SOURCE"]},
    )
    assert_fastapi_422(status, body, "POST /update_users with an unknown source", loc_contains="auto_sync_enabled_sources")


# --------------------------------------------------------------------------- /modify_user_configuration


def test_modify_user_configuration_sparse_vectors(base_url, org_a, cid):
    c = customer_client(base_url, org_a.api_key, cid)
    res = c.users.toggle_user_features(configuration_key_name="sparse_vectors", value={"enabled": True}, validate=True)
    assert res.success is True
    me = c.users.who_am_i(validate=True)
    features = plain(me.enabled_features) or {}
    assert "sparse_vectors" in features, (
        f"after enabling sparse_vectors, /whoami enabled_features should mention it, got {features!r}"
    )


def test_modify_user_configuration_with_token(base_url, org_a, cid):
    token = ensure_customer(base_url, org_a.api_key, cid)
    res = token_client(base_url, token).users.toggle_user_features(
        configuration_key_name="sparse_vectors", value={"enabled": False}, validate=True
    )
    assert res.success is True


def test_modify_user_configuration_unknown_key_is_422(base_url, org_a, cid):
    status, body, _ = raw(
        base_url,
        "POST",
        "/modify_user_configuration",
        headers={"authorization": f"Bearer {org_a.api_key}", "customer-id": cid},
        json_body={"configuration_key_name": "not_a_key", "value": {}},
    )
    assert_fastapi_422(status, body, "POST /modify_user_configuration unknown key", loc_contains="configuration_key_name")


def test_modify_user_configuration_is_customer_scoped(base_url, org_a):
    status, body, _ = raw(
        base_url,
        "POST",
        "/modify_user_configuration",
        headers={"authorization": f"Bearer {org_a.api_key}"},
        json_body={"configuration_key_name": "sparse_vectors", "value": {"enabled": True}},
    )
    assert status in CLIENT_ERRORS, (
        f"/modify_user_configuration without customer-id or token: expected 4xx, got {status} {body!r}"
    )
