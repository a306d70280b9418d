-- Dropbox connections: pending OAuth states, data sources (one per Dropbox account per
-- customer), their encrypted tokens, and the enumerated remote tree (source items).

-- One row per /integrations/oauth_url call. Only the SHA-256 of the state travels back to us;
-- the PKCE verifier is encrypted with the master key. Single use: used_at is set atomically.
CREATE TABLE oauth_states (
    id INTEGER PRIMARY KEY,
    state_hash TEXT NOT NULL UNIQUE,
    organization_id INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    organization_user_id INTEGER NOT NULL REFERENCES organization_users(id) ON DELETE CASCADE,
    service TEXT NOT NULL,
    app_key TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    pkce_verifier_enc BLOB NOT NULL,
    options TEXT NOT NULL DEFAULT '{}',
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX oauth_states_expiry ON oauth_states(expires_at);

CREATE TABLE data_sources (
    id INTEGER PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    organization_user_id INTEGER NOT NULL REFERENCES organization_users(id) ON DELETE CASCADE,
    data_source_type TEXT NOT NULL,
    -- Dropbox account id (dbid:...)
    data_source_external_id TEXT NOT NULL,
    sync_status TEXT NOT NULL,
    sync_error_message TEXT,
    revoked_access INTEGER NOT NULL DEFAULT 0,
    last_sync_action TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '{}',
    -- account facts shown to the organization (email, name, account type, team, namespaces)
    data_source_metadata TEXT NOT NULL DEFAULT '{}',
    -- the options of the oauth_url call that connected it (chunking, tags, request_id, ...)
    sync_options TEXT NOT NULL DEFAULT '{}',
    -- list_folder cursor at the end of the last complete item listing (change tracking starts here)
    items_cursor TEXT,
    items_generation INTEGER NOT NULL DEFAULT 0,
    source_items_synced_at INTEGER,
    files_synced_at INTEGER,
    last_synced_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (organization_user_id, data_source_type, data_source_external_id)
);
CREATE INDEX data_sources_org ON data_sources(organization_id, updated_at);
CREATE INDEX data_sources_user ON data_sources(organization_user_id, updated_at);

-- Tokens of a data source, encrypted with the master key. token_version is bumped by every
-- successful refresh (compare-and-swap); refresh_lease_* make one process the refresher.
CREATE TABLE dropbox_credentials (
    data_source_id INTEGER PRIMARY KEY REFERENCES data_sources(id) ON DELETE CASCADE,
    app_key TEXT NOT NULL,
    account_id TEXT NOT NULL,
    access_token_enc BLOB NOT NULL,
    refresh_token_enc BLOB,
    expires_at INTEGER,
    scopes TEXT NOT NULL DEFAULT '',
    -- Dropbox-API-Path-Root namespace for team-space accounts, NULL for personal ones
    root_namespace_id TEXT,
    token_version INTEGER NOT NULL DEFAULT 1,
    refresh_lease_owner TEXT,
    refresh_lease_until INTEGER,
    updated_at INTEGER NOT NULL
);

-- The remote tree of a data source as last enumerated (/integrations/items/sync).
CREATE TABLE source_items (
    id INTEGER PRIMARY KEY,
    data_source_id INTEGER NOT NULL REFERENCES data_sources(id) ON DELETE CASCADE,
    organization_id INTEGER NOT NULL,
    organization_user_id INTEGER NOT NULL REFERENCES organization_users(id) ON DELETE CASCADE,
    -- Dropbox file/folder id (id:...)
    external_id TEXT NOT NULL,
    name TEXT NOT NULL,
    item_type TEXT NOT NULL CHECK (item_type IN ('FILE', 'FOLDER')),
    path_lower TEXT NOT NULL,
    path_display TEXT,
    parent_path_lower TEXT,
    parent_external_id TEXT,
    file_format TEXT,
    size INTEGER,
    rev TEXT,
    content_hash TEXT,
    server_modified TEXT,
    is_downloadable INTEGER NOT NULL DEFAULT 1,
    is_selectable INTEGER NOT NULL DEFAULT 1,
    external_url TEXT,
    organization_user_file_to_sync_id INTEGER,
    generation INTEGER NOT NULL,
    synced_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (data_source_id, external_id)
);
CREATE INDEX source_items_parent ON source_items(data_source_id, parent_external_id, name);
CREATE INDEX source_items_path ON source_items(data_source_id, path_lower);
CREATE INDEX source_items_user ON source_items(organization_user_id);
