//! Wire types of the Dropbox routes the client calls (subsets of the Stone spec; unknown fields
//! are ignored and unknown metadata tags decode as `Metadata::Other`).

use serde::{Deserialize, Serialize};

/// A file's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct FileMetadata {
    pub name: String,
    pub id: String,
    #[serde(default)]
    pub path_lower: Option<String>,
    #[serde(default)]
    pub path_display: Option<String>,
    pub client_modified: String,
    pub server_modified: String,
    pub rev: String,
    pub size: u64,
    #[serde(default)]
    pub content_hash: Option<String>,
    #[serde(default = "yes")]
    pub is_downloadable: bool,
}

fn yes() -> bool {
    true
}

/// A folder's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct FolderMetadata {
    pub name: String,
    pub id: String,
    #[serde(default)]
    pub path_lower: Option<String>,
    #[serde(default)]
    pub path_display: Option<String>,
}

/// What a deleted entry says: only its former path.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct DeletedMetadata {
    pub name: String,
    #[serde(default)]
    pub path_lower: Option<String>,
    #[serde(default)]
    pub path_display: Option<String>,
}

/// One entry of a listing or a `get_metadata` answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = ".tag", rename_all = "lowercase")]
pub enum Metadata {
    File(FileMetadata),
    Folder(FolderMetadata),
    Deleted(DeletedMetadata),
    #[serde(other)]
    Other,
}

/// `files/list_folder` arguments (only the ones carbide sets).
#[derive(Debug, Clone, Serialize)]
pub struct ListFolderArg {
    pub path: String,
    pub recursive: bool,
    pub include_deleted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    pub include_non_downloadable_files: bool,
}

impl ListFolderArg {
    /// A recursive listing of `path` (`""` is the root; `id:…` works too).
    pub fn recursive(path: impl Into<String>) -> Self {
        ListFolderArg {
            path: path.into(),
            recursive: true,
            include_deleted: false,
            limit: None,
            include_non_downloadable_files: false,
        }
    }
}

/// A page of a listing.
#[derive(Debug, Clone, Deserialize)]
pub struct ListFolderResult {
    pub entries: Vec<Metadata>,
    pub cursor: String,
    pub has_more: bool,
}

/// `files/list_folder/longpoll` answer.
#[derive(Debug, Clone, Deserialize)]
pub struct LongpollResult {
    pub changes: bool,
    #[serde(default)]
    pub backoff: Option<u64>,
}

/// A tagged name such as `{".tag": "business"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Tag {
    #[serde(rename = ".tag")]
    pub tag: String,
}

/// `root_info` of an account: personal (`user`) or team space (`team`).
#[derive(Debug, Clone, Deserialize)]
pub struct RootInfo {
    #[serde(rename = ".tag")]
    pub tag: String,
    pub root_namespace_id: String,
    pub home_namespace_id: String,
    #[serde(default)]
    pub home_path: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Name {
    pub display_name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Team {
    pub id: String,
    pub name: String,
}

/// The parts of `users/get_current_account` carbide uses.
#[derive(Debug, Clone, Deserialize)]
pub struct FullAccount {
    pub account_id: String,
    pub email: String,
    pub name: Name,
    pub account_type: Tag,
    pub root_info: RootInfo,
    #[serde(default)]
    pub team: Option<Team>,
}

impl FullAccount {
    /// The namespace to list from: the team root for team-space accounts (so team folders are
    /// visible), else `None` (the home namespace, Dropbox's default).
    pub fn path_root(&self) -> Option<String> {
        (self.root_info.root_namespace_id != self.root_info.home_namespace_id)
            .then(|| self.root_info.root_namespace_id.clone())
    }
}

/// `oauth2/token` answer.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub uid: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_tags_decode() {
        let v: Vec<Metadata> = serde_json::from_str(
            r#"[{".tag":"folder","name":"A","id":"id:1","path_lower":"/a","path_display":"/A"},
                {".tag":"file","name":"b.txt","id":"id:2","path_lower":"/a/b.txt","path_display":"/A/b.txt",
                 "client_modified":"2024-01-01T00:00:00Z","server_modified":"2024-01-01T00:00:01Z",
                 "rev":"0123456789","size":5,"content_hash":"x","extra":1},
                {".tag":"deleted","name":"c","path_lower":"/c","path_display":"/c"},
                {".tag":"paper_doc","name":"z"}]"#,
        )
        .unwrap();
        assert!(matches!(v[0], Metadata::Folder(_)));
        assert!(matches!(&v[1], Metadata::File(f) if f.size == 5 && f.is_downloadable));
        assert!(matches!(v[2], Metadata::Deleted(_)));
        assert!(matches!(v[3], Metadata::Other));
    }
}
