-- Files, chunks, keyword index, vector-cache change tracking, durable job queue.
--
-- Contract with search (crates that read these tables rely on the names below):
--   chunks.embedding_model  the provider's model_id the vectors were made with
--                           (e.g. sentence-transformers/all-MiniLM-L6-v2); NULL when
--                           embeddings were skipped. files.embedding_model holds the Carbon name.
--   chunks.vector        little-endian f32, L2-normalised, NULL when embeddings were skipped.
--                        For a chunk longer than the model window it is the L2-normalised mean
--                        of its window vectors (usable as-is)
--   chunk_vectors        only for chunks longer than the model window: one row per window
--                        (window = 0..n); a chunk scores as its best window
--   chunks_fts           contentless FTS5, rowid = chunks.id, body = search_text::index_text(text)
--   index_generations    bumped in every transaction adding or removing a customer's chunks
--   chunk_log            append-only ('add' | 'del') deltas, same transactions

CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    organization_user_id INTEGER NOT NULL REFERENCES organization_users(id) ON DELETE CASCADE,
    data_source_id INTEGER,
    parent_id INTEGER REFERENCES files(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    external_file_id TEXT NOT NULL,
    external_url TEXT,
    name TEXT,
    is_folder INTEGER NOT NULL DEFAULT 0,
    sync_status TEXT NOT NULL,
    sync_error_message TEXT,
    last_sync INTEGER,
    file_format TEXT,
    file_size INTEGER,
    mime_type TEXT,
    num_characters INTEGER,
    num_tokens INTEGER,
    num_embeddings INTEGER,
    raw_sha256 TEXT,
    parsed_sha256 TEXT,
    tags TEXT NOT NULL DEFAULT '{}',
    file_metadata TEXT NOT NULL DEFAULT '{}',
    options TEXT NOT NULL DEFAULT '{}',
    request_id TEXT,
    upload_id TEXT,
    embedding_model TEXT,
    -- Dropbox connector fields
    rev TEXT,
    content_hash TEXT,
    path_lower TEXT,
    source_created_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX files_user ON files(organization_user_id, id);
CREATE INDEX files_user_status ON files(organization_user_id, sync_status);
CREATE INDEX files_user_updated ON files(organization_user_id, updated_at);
CREATE INDEX files_user_created ON files(organization_user_id, created_at);
CREATE INDEX files_user_name ON files(organization_user_id, name);
CREATE INDEX files_user_external ON files(organization_user_id, external_file_id);
CREATE INDEX files_parent ON files(parent_id);
CREATE INDEX files_data_source ON files(data_source_id);
CREATE INDEX files_request ON files(organization_user_id, request_id);
CREATE INDEX files_upload ON files(organization_user_id, upload_id);
CREATE INDEX files_org ON files(organization_id);

CREATE TABLE chunks (
    id INTEGER PRIMARY KEY,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    organization_id INTEGER NOT NULL,
    organization_user_id INTEGER NOT NULL,
    chunk_index INTEGER NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    embedding_model TEXT,
    vector BLOB
);
CREATE INDEX chunks_file ON chunks(file_id, chunk_index);
CREATE INDEX chunks_user_model ON chunks(organization_user_id, embedding_model);

CREATE TABLE chunk_vectors (
    chunk_id INTEGER NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
    window INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (chunk_id, window)
) WITHOUT ROWID;

CREATE VIRTUAL TABLE chunks_fts USING fts5(
    body,
    content = '',
    contentless_delete = 1,
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TABLE index_generations (
    organization_user_id INTEGER PRIMARY KEY REFERENCES organization_users(id) ON DELETE CASCADE,
    generation INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE chunk_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    organization_user_id INTEGER NOT NULL,
    chunk_id INTEGER NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('add', 'del'))
);
CREATE INDEX chunk_log_user ON chunk_log(organization_user_id, seq);

-- Every chunk removal (direct, or by cascade from files / organization_users) drops its
-- keyword row and leaves a 'del' delta for vector caches.
CREATE TRIGGER chunks_after_delete AFTER DELETE ON chunks BEGIN
    DELETE FROM chunks_fts WHERE rowid = old.id;
    INSERT INTO chunk_log (organization_user_id, chunk_id, op)
        VALUES (old.organization_user_id, old.id, 'del');
END;

CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    organization_user_id INTEGER REFERENCES organization_users(id) ON DELETE CASCADE,
    file_id INTEGER REFERENCES files(id) ON DELETE CASCADE,
    payload TEXT NOT NULL DEFAULT '{}',
    run_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 3,
    lease_owner TEXT,
    lease_until INTEGER,
    last_error TEXT,
    dedupe_key TEXT UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE INDEX jobs_due ON jobs(run_at);
CREATE INDEX jobs_file ON jobs(file_id);
