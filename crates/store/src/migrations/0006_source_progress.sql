-- Data source progress: "does this source still have files queued or syncing?" and "has every
-- file of this request settled?" become index probes instead of scans of the source's files.
CREATE INDEX files_ds_status ON files(data_source_id, sync_status);
DROP INDEX files_data_source;
CREATE INDEX files_request_status ON files(organization_user_id, request_id, sync_status);
