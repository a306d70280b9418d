"""White labelling: /white_label/create|list|update|delete and GET /auth/v1/white_labeling (§3).

Response bodies are free-form objects in Carbon's spec; carbide answers list with
{"results": [record…], "count": n}, record = {id, data_source_type, credentials{…}, created_at, updated_at}.
"""

from __future__ import annotations

import json
import uuid

from compat_helpers import (
    CLIENT_ERRORS,
    assert_fastapi_422,
    customer_client,
    expect_api_error,
    new_customer_id,
    org_client,
    plain,
    raw,
    remember_secret,
)

REDIRECT = "https://carbide.example.com/integrations/dropbox"


def _dropbox_input(secret: str, client_id: str = "dbx-client-id", redirect_uri: str = REDIRECT) -> dict:
    return {
        "data_source_type": "DROPBOX",
        "credentials": {"client_id": client_id, "client_secret": secret, "redirect_uri": redirect_uri},
    }


def _secret() -> str:
    return remember_secret("s3cr3t-" + uuid.uuid4().hex)


def _list(oc, **kwargs) -> dict:
    res = plain(oc.white_label.list(validate=True, **kwargs))
    assert isinstance(res, dict), f"/white_label/list must return an object, got {res!r}"
    assert isinstance(res.get("results"), list), f"/white_label/list must return `results: [...]`, got {res!r}"
    assert isinstance(res.get("count"), int), f"/white_label/list must return an integer `count`, got {res!r}"
    for rec in res["results"]:
        for key in ("id", "data_source_type", "credentials"):
            assert key in rec, f"white-label record lacks `{key}`: {rec!r}"
        assert isinstance(rec["id"], int), f"white-label record id must be an int: {rec!r}"
    return res


def _assert_secret_hidden(secret: str, obj, where: str) -> None:
    text = json.dumps(obj)
    assert secret not in text, f"{where} must never return the client secret in full: {obj!r}"


def _create_dropbox(oc, secret: str) -> dict:
    created = plain(oc.white_label.create(body=[_dropbox_input(secret)], validate=True))
    assert isinstance(created, dict), f"/white_label/create must return an object, got {created!r}"
    res = _list(oc, filters={"data_source_type": ["DROPBOX"]})
    recs = [r for r in res["results"] if r["data_source_type"] == "DROPBOX"]
    assert len(recs) == 1, f"after create, exactly one DROPBOX white label expected, got {res!r}"
    return recs[0]


def test_white_label_create_and_list(base_url, fresh_org):
    oc = org_client(base_url, fresh_org.api_key)
    secret = _secret()
    rec = _create_dropbox(oc, secret)
    creds = rec["credentials"]
    assert creds.get("client_id") == "dbx-client-id", f"client_id must round-trip: {rec!r}"
    assert creds.get("redirect_uri") == REDIRECT, f"redirect_uri must round-trip: {rec!r}"
    _assert_secret_hidden(secret, rec, "/white_label/list")
    res = _list(oc)
    assert res["count"] == 1 and len(res["results"]) == 1, f"fresh org with one white label: {res!r}"
    _assert_secret_hidden(secret, res, "/white_label/list")


def test_white_label_list_filters_and_pagination(base_url, fresh_org):
    oc = org_client(base_url, fresh_org.api_key)
    rec = _create_dropbox(oc, _secret())
    by_id = _list(oc, filters={"ids": [rec["id"]]})
    assert [r["id"] for r in by_id["results"]] == [rec["id"]], f"filters.ids: {by_id!r}"
    none = _list(oc, filters={"ids": [rec["id"] + 100000]})
    assert none["results"] == [], f"filters.ids with an unknown id must be empty: {none!r}"
    other_type = _list(oc, filters={"data_source_type": ["BOX"]})
    assert other_type["results"] == [], f"filters.data_source_type=[BOX] must be empty: {other_type!r}"
    page = _list(oc, pagination={"limit": 1}, order_by="data_source_type", order_dir="desc")
    assert len(page["results"]) == 1
    page2 = _list(oc, pagination={"offset": 1})
    assert page2["results"] == [], f"offset past the only record must be empty: {page2!r}"


def test_white_labeling_reports_dropbox(base_url, fresh_org):
    oc = org_client(base_url, fresh_org.api_key)
    secret = _secret()
    _create_dropbox(oc, secret)
    wl = customer_client(base_url, fresh_org.api_key, new_customer_id()).auth.get_white_labeling(validate=True)
    integrations = plain(wl.integrations)
    assert integrations.get("DROPBOX"), (
        f"GET /auth/v1/white_labeling integrations must report DROPBOX once white-labelled, got {integrations!r}"
    )
    _assert_secret_hidden(secret, plain(wl), "GET /auth/v1/white_labeling")


def test_white_label_duplicate_type_rejected(base_url, fresh_org):
    oc = org_client(base_url, fresh_org.api_key)
    _create_dropbox(oc, _secret())
    expect_api_error(
        lambda: oc.white_label.create(body=[_dropbox_input(_secret())], validate=True),
        {400, 409, 422},
        "second /white_label/create for DROPBOX",
    )
    assert _list(oc)["count"] == 1


def test_white_label_redirect_uri_must_end_with_integrations_dropbox(base_url, fresh_org):
    oc = org_client(base_url, fresh_org.api_key)
    expect_api_error(
        lambda: oc.white_label.create(
            body=[_dropbox_input(_secret(), redirect_uri="https://carbide.example.com/oauth/callback")], validate=True
        ),
        {400, 422},
        "/white_label/create DROPBOX with redirect_uri not ending in /integrations/dropbox",
    )
    assert _list(oc)["count"] == 0, "a rejected create must not store anything"


def test_white_label_create_body_must_be_array(base_url, fresh_org):
    status, body, _ = raw(
        base_url,
        "POST",
        "/white_label/create",
        headers={"authorization": f"Bearer {fresh_org.api_key}"},
        json_body=_dropbox_input(_secret()),
    )
    assert_fastapi_422(status, body, "/white_label/create with an object instead of an array")


def test_white_label_missing_client_id_is_422(base_url, fresh_org):
    status, body, _ = raw(
        base_url,
        "POST",
        "/white_label/create",
        headers={"authorization": f"Bearer {fresh_org.api_key}"},
        json_body=[{"data_source_type": "DROPBOX", "credentials": {"redirect_uri": REDIRECT}}],
    )
    assert_fastapi_422(status, body, "/white_label/create without credentials.client_id", loc_contains="client_id")


def test_white_label_update(base_url, fresh_org):
    oc = org_client(base_url, fresh_org.api_key)
    old_secret = _secret()
    rec = _create_dropbox(oc, old_secret)
    new_secret = _secret()
    new_redirect = "https://connect.example.org/integrations/dropbox"
    updated = plain(
        oc.white_label.update(
            body={
                "data_source_type": "DROPBOX",
                "credentials": {"client_id": "dbx-client-id-2", "client_secret": new_secret, "redirect_uri": new_redirect},
            },
            validate=True,
        )
    )
    assert isinstance(updated, dict), f"/white_label/update must return an object, got {updated!r}"
    _assert_secret_hidden(new_secret, updated, "/white_label/update")
    res = _list(oc)
    assert res["count"] == 1, f"update must not create a second record: {res!r}"
    after = res["results"][0]
    assert after["id"] == rec["id"], "update must keep the record id"
    assert after["credentials"].get("client_id") == "dbx-client-id-2", f"client_id not updated: {after!r}"
    assert after["credentials"].get("redirect_uri") == new_redirect, f"redirect_uri not updated: {after!r}"
    _assert_secret_hidden(new_secret, res, "/white_label/list after update")
    _assert_secret_hidden(old_secret, res, "/white_label/list after update")


def test_white_label_update_without_existing_is_error(base_url, fresh_org):
    oc = org_client(base_url, fresh_org.api_key)
    expect_api_error(
        lambda: oc.white_label.update(body=_dropbox_input(_secret()), validate=True),
        {400, 404},
        "/white_label/update for a type that has no white label",
    )


def test_white_label_delete(base_url, fresh_org, cid):
    oc = org_client(base_url, fresh_org.api_key)
    secret = _secret()
    rec = _create_dropbox(oc, secret)
    deleted = plain(oc.white_label.delete(ids=[rec["id"]], validate=True))
    assert isinstance(deleted, dict), f"/white_label/delete must return an object, got {deleted!r}"
    _assert_secret_hidden(secret, deleted, "/white_label/delete")
    assert _list(oc)["count"] == 0, "after delete the org has no white labels"
    wl = customer_client(base_url, fresh_org.api_key, cid).auth.get_white_labeling(validate=True)
    assert not plain(wl.integrations).get("DROPBOX"), "deleted white label must no longer be reported"
    # the type can be configured again afterwards
    _create_dropbox(oc, _secret())


def test_white_label_delete_requires_ids(base_url, fresh_org):
    status, body, _ = raw(
        base_url, "POST", "/white_label/delete", headers={"authorization": f"Bearer {fresh_org.api_key}"}, json_body={}
    )
    assert_fastapi_422(status, body, "/white_label/delete {}", loc_contains="ids")


def test_white_label_tenancy(base_url, new_org):
    a, b = new_org(), new_org()
    oa, ob = org_client(base_url, a.api_key), org_client(base_url, b.api_key)
    rec = _create_dropbox(oa, _secret())
    assert _list(ob)["results"] == [], "org B must not see org A's white labels"
    assert _list(ob, filters={"ids": [rec["id"]]})["results"] == []
    try:
        ob.white_label.delete(ids=[rec["id"]], validate=True)
    except Exception as e:  # noqa: BLE001 - a 4xx is acceptable, a silent no-op too
        assert getattr(e, "status", None) in CLIENT_ERRORS, f"org B deleting A's white label: {e!r}"
    assert _list(oa)["count"] == 1, "org B must not be able to delete org A's white label"
    # org B may configure its own Dropbox app independently
    _create_dropbox(ob, _secret())
    assert _list(oa)["count"] == 1
