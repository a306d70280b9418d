"""Organisation: GET /organization, /organization/update, /organization/statistics,
GET /auth/v1/white_labeling (§2, §7)."""

from __future__ import annotations

from datetime import datetime

from compat_helpers import (
    assert_fastapi_422,
    customer_client,
    expect_api_error,
    org_client,
    plain,
    poll,
    raw,
)


def test_get_organization(base_url, org_a):
    org = org_client(base_url, org_a.api_key).organizations.get(validate=True)
    assert org.id == org_a.id, f"GET /organization id={org.id}, CLI said {org_a.id}"
    assert org.name == org_a.name, f"GET /organization name={org.name!r}, CLI created {org_a.name!r}"
    assert isinstance(org.remove_branding, bool)
    assert isinstance(org.created_at, datetime) and org.created_at.tzinfo is not None


def test_org_created_while_serving_is_visible(base_url, fresh_org):
    org = org_client(base_url, fresh_org.api_key).organizations.get(validate=True)
    assert org.id == fresh_org.id, (
        "an org created by `carbide org create` while `serve` runs must be usable immediately"
    )
    assert org.name == fresh_org.name


def test_organization_update_global_user_config(base_url, fresh_org):
    oc = org_client(base_url, fresh_org.api_key)
    res = oc.organizations.update(
        global_user_config={"auto_sync_enabled_sources": ["DROPBOX"], "max_files": 100, "auto_sync_interval": 12},
        data_source_configs={"DROPBOX": {"allowed_file_formats": ["PDF", "TXT"]}},
        validate=True,
    )
    assert res.success is True
    org = oc.organizations.get(validate=True)
    cfg = plain(org.global_user_config) or {}
    assert cfg.get("max_files") == 100, f"global_user_config must reflect max_files=100, got {cfg!r}"
    assert cfg.get("auto_sync_enabled_sources") == ["DROPBOX"], (
        f"global_user_config must reflect auto_sync_enabled_sources, got {cfg!r}"
    )
    assert cfg.get("auto_sync_interval") == 12, f"global_user_config must reflect auto_sync_interval=12, got {cfg!r}"


def test_organization_update_partial_keeps_other_settings(base_url, fresh_org):
    oc = org_client(base_url, fresh_org.api_key)
    oc.organizations.update(global_user_config={"max_files": 7}, validate=True)
    res = oc.organizations.update(data_source_configs={"DROPBOX": {"allowed_file_formats": []}}, validate=True)
    assert res.success is True
    cfg = plain(oc.organizations.get(validate=True).global_user_config) or {}
    assert cfg.get("max_files") == 7, (
        f"updating only data_source_configs must not wipe global_user_config; got {cfg!r}"
    )


def test_organization_update_empty_body(base_url, fresh_org):
    res = org_client(base_url, fresh_org.api_key).organizations.update(validate=True)
    assert res.success is True, "POST /organization/update {} is a valid no-op"


def test_organization_update_bad_interval(base_url, fresh_org):
    expect_api_error(
        lambda: org_client(base_url, fresh_org.api_key).organizations.update(
            global_user_config={"auto_sync_interval": 5}, validate=True
        ),
        {400, 422},
        "POST /organization/update global_user_config.auto_sync_interval=5",
    )


def test_organization_update_unknown_data_source_is_422(base_url, fresh_org):
    status, body, _ = raw(
        base_url,
        "POST",
        "/organization/update",
        headers={"authorization": f"Bearer {fresh_org.api_key}"},
        json_body={"data_source_configs": {"NOT_A_SOURCE": {"allowed_file_formats": []}}},
    )
    assert_fastapi_422(status, body, "POST /organization/update with an unknown data source type")


def test_organization_statistics(base_url, fresh_org):
    oc = org_client(base_url, fresh_org.api_key)
    before = oc.organizations.get(validate=True)
    assert before.file_statistics_aggregated_at is None, (
        f"a new org has never aggregated statistics, got {before.file_statistics_aggregated_at!r}"
    )
    res = oc.organizations.update_stats(validate=True)
    assert res.success is True

    def aggregated():
        org = oc.organizations.get(validate=True)
        return org if org.file_statistics_aggregated_at is not None else None

    org = poll(aggregated, "GET /organization file_statistics_aggregated_at to be set after /organization/statistics")
    assert org.file_statistics_aggregated_at.tzinfo is not None
    for name in (
        "aggregate_file_size",
        "aggregate_num_characters",
        "aggregate_num_tokens",
        "aggregate_num_embeddings",
        "aggregate_num_files_by_source",
        "aggregate_num_files_by_file_format",
    ):
        assert isinstance(plain(getattr(org, name)), dict), f"{name} must be an object"


def test_white_labeling_defaults(base_url, fresh_org, cid):
    wl = customer_client(base_url, fresh_org.api_key, cid).auth.get_white_labeling(validate=True)
    assert isinstance(wl.remove_branding, bool)
    integrations = plain(wl.integrations)
    assert isinstance(integrations, dict)
    assert not integrations.get("DROPBOX"), (
        f"an org without white labels must not report DROPBOX as white-labelled: {integrations!r}"
    )
    assert isinstance(plain(wl.custom_limits), dict)

