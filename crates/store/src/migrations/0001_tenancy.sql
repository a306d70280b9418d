-- Tenancy: organizations, API keys, customers (organization users), access tokens,
-- webhooks + durable outbox, white-label OAuth credentials.
-- Everything a customer owns references organization_users(id) ON DELETE CASCADE so that
-- later tables (data sources, files, chunks, jobs) inherit /delete_users semantics.

CREATE TABLE organizations (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    nickname TEXT,
    remove_branding INTEGER NOT NULL DEFAULT 0,
    custom_branding TEXT,
    custom_limits TEXT NOT NULL DEFAULT '{}',
    global_user_config TEXT NOT NULL DEFAULT '{}',
    data_source_configs TEXT NOT NULL DEFAULT '{}',
    connector_settings TEXT NOT NULL DEFAULT '{}',
    file_statistics_aggregated_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    key_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE INDEX api_keys_org ON api_keys(organization_id);

CREATE TABLE organization_users (
    id INTEGER PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    organization_supplied_user_id TEXT NOT NULL,
    enabled_features TEXT,
    custom_limits TEXT NOT NULL DEFAULT '{}',
    auto_sync_enabled_sources TEXT NOT NULL DEFAULT '[]',
    auto_sync_interval INTEGER,
    connector_settings TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (organization_id, organization_supplied_user_id)
);

CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY,
    organization_user_id INTEGER NOT NULL REFERENCES organization_users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX access_tokens_user ON access_tokens(organization_user_id);

CREATE TABLE webhooks (
    id INTEGER PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    signing_key_enc BLOB NOT NULL,
    status TEXT NOT NULL DEFAULT 'ACTIVE',
    status_reason TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX webhooks_org ON webhooks(organization_id);

-- One row per (event, webhook URL). Not tied to customers: a deleted customer's
-- ORGANIZATION_USER_DELETED event must still be delivered.
CREATE TABLE webhook_outbox (
    id INTEGER PRIMARY KEY,
    webhook_id INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    organization_id INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    webhook_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER,
    delivered_at INTEGER,
    failed_at INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX webhook_outbox_pending ON webhook_outbox(next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;

CREATE TABLE white_labels (
    id INTEGER PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    data_source_type TEXT NOT NULL,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    client_secret_enc BLOB,
    extra_enc BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (organization_id, data_source_type)
);
