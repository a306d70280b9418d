-- Search: lets the default media-type filter (exclude image/audio/video files) be an index
-- range lookup per customer instead of a scan of the customer's files.
CREATE INDEX files_user_format ON files(organization_user_id, file_format);
