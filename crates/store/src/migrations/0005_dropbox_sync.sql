-- Dropbox file sync: watched selections, the change-tracking cursor and the schedule of each
-- data source, and one Dropbox file record per (data source, Dropbox id).

-- What the customer chose with /integrations/files/sync: a folder (watched: files added
-- below it later are synced) or a single file. `file_id` is the selection's UserFile (the
-- folder's container record, or the file); deleting it ends the selection.
CREATE TABLE dropbox_selections (
    id INTEGER PRIMARY KEY,
    data_source_id INTEGER NOT NULL REFERENCES data_sources(id) ON DELETE CASCADE,
    organization_user_id INTEGER NOT NULL REFERENCES organization_users(id) ON DELETE CASCADE,
    external_id TEXT NOT NULL,
    is_folder INTEGER NOT NULL,
    path_lower TEXT NOT NULL,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    -- {"options": FileOptions, "tags": {...}, "request_id": "..."} applied to files found below
    settings TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (data_source_id, external_id)
);
CREATE INDEX dropbox_selections_file ON dropbox_selections(file_id);

-- Change tracking and schedule per data source. `cursor` is an account-wide recursive
-- list_folder cursor (with the path root of team accounts); it only moves in the transaction
-- that applies (and durably queues the jobs of) the changes before it.
CREATE TABLE dropbox_sync_state (
    data_source_id INTEGER PRIMARY KEY REFERENCES data_sources(id) ON DELETE CASCADE,
    cursor TEXT,
    cursor_updated_at INTEGER,
    next_sync_at INTEGER,
    last_full_sync_at INTEGER,
    updated_at INTEGER NOT NULL
);

-- One record per Dropbox item per data source: syncing the same id twice never duplicates.
CREATE UNIQUE INDEX files_dropbox_identity ON files(data_source_id, external_file_id)
    WHERE source = 'DROPBOX';
CREATE INDEX files_dropbox_path ON files(data_source_id, path_lower);
