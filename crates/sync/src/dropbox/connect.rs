//! The OAuth connect flow. [`Dropbox::start_connect`] records a single-use state (hashed,
//! 30 minutes, with the request's options and an encrypted PKCE verifier) and builds Dropbox's
//! authorize URL; [`Dropbox::finish_connect`] handles the redirect back: validates and consumes
//! the state, exchanges the code, reads the account, stores the tokens encrypted, creates or
//! reconnects the data source (ADD webhook) and starts the item listing. A denial fires CANCEL
//! and leaves every data source untouched.

use carbide_core::enums::{object_types, webhook_types};
use carbide_core::timefmt::now_unix;
use carbide_dropbox::Auth;
use carbide_dropbox::oauth::{AuthorizeRequest, pkce_challenge, pkce_verifier};
use carbide_store::{ConsumedState, DataSource, DropboxConnection, NewOAuthState};
use serde_json::{Map, Value, json};

use super::{Dropbox, DropboxApp, DropboxError};

/// Scopes requested when the caller names none (Carbon's Dropbox set).
pub const DEFAULT_SCOPES: &[&str] = &[
    "account_info.read",
    "files.metadata.read",
    "files.content.read",
];

/// Lifetime of an OAuth state.
pub const STATE_TTL_SECS: i64 = 30 * 60;

/// What `/integrations/oauth_url` asks for.
#[derive(Debug, Clone)]
pub struct ConnectRequest {
    pub organization_id: i64,
    pub organization_user_id: i64,
    /// Exact scopes; empty = [`DEFAULT_SCOPES`].
    pub scopes: Vec<String>,
    /// `connecting_new_account`: make Dropbox ask again even if the app is approved.
    pub force_reapprove: bool,
    /// Every other option of the request (defaults applied), kept with the state and stored on
    /// the data source as its sync options.
    pub options: Map<String, Value>,
}

/// How the redirect back from Dropbox ended.
#[derive(Debug, Clone)]
pub enum CallbackOutcome {
    /// Connected: the data source (new or reconnected) and the account's email.
    Connected {
        data_source: Box<DataSource>,
        created: bool,
        email: String,
        display_name: String,
    },
    /// The user denied access (`error=access_denied` or another provider error).
    Denied {
        error: String,
        description: Option<String>,
    },
}

impl Dropbox {
    /// Records a state and returns the Dropbox authorize URL.
    pub async fn start_connect(&self, req: ConnectRequest) -> Result<String, DropboxError> {
        let app = self.app_for_org(req.organization_id).await?;
        let scopes: Vec<String> = if req.scopes.is_empty() {
            DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect()
        } else {
            req.scopes.clone()
        };
        let verifier = pkce_verifier();
        let challenge = pkce_challenge(&verifier);
        let mut options = req.options.clone();
        options.insert("scopes".into(), json!(scopes));
        let new_state = NewOAuthState {
            organization_id: req.organization_id,
            organization_user_id: req.organization_user_id,
            service: "DROPBOX".into(),
            app_key: app.key.clone(),
            redirect_uri: app.redirect_uri.clone(),
            pkce_verifier: verifier,
            options,
            ttl_secs: STATE_TTL_SECS,
        };
        let state = self.db(move |s| s.create_oauth_state(&new_state)).await?;
        let url = self.client().authorize_url(&AuthorizeRequest {
            app_key: &app.key,
            redirect_uri: &app.redirect_uri,
            state: &state,
            scopes: &scopes,
            code_challenge: Some(&challenge),
            force_reapprove: req.force_reapprove,
        })?;
        Ok(url)
    }

    /// Handles `GET /integrations/dropbox?code&state` (or `?error&state`).
    pub async fn finish_connect(
        &self,
        state: Option<&str>,
        code: Option<&str>,
        error: Option<&str>,
        error_description: Option<&str>,
    ) -> Result<CallbackOutcome, DropboxError> {
        let Some(state) = state.filter(|s| !s.is_empty()) else {
            return Err(DropboxError::InvalidState(
                "The link is missing its state parameter; start the connection again.".into(),
            ));
        };
        let st = state.to_string();
        let consumed = self.db(move |s| s.consume_oauth_state(&st)).await?;
        let flow = match consumed {
            ConsumedState::Valid(f) => f,
            ConsumedState::AlreadyUsed => {
                return Err(DropboxError::InvalidState(
                    "This Dropbox authorization link was already used; start the connection again."
                        .into(),
                ));
            }
            ConsumedState::Expired => {
                return Err(DropboxError::InvalidState(
                    "This Dropbox authorization link expired (links are valid for 30 minutes); \
                     start the connection again."
                        .into(),
                ));
            }
            ConsumedState::Unknown => {
                return Err(DropboxError::InvalidState(
                    "Unknown Dropbox authorization state; start the connection again.".into(),
                ));
            }
        };
        if let Some(err) = error.filter(|e| !e.is_empty()) {
            let mut info = Map::new();
            info.insert("data_source_type".into(), json!("DROPBOX"));
            info.insert("error".into(), json!(err));
            if let Some(d) = error_description {
                info.insert("error_description".into(), json!(d));
            }
            if let Some(r) = flow.options.get("request_id").filter(|v| !v.is_null()) {
                info.insert("request_id".into(), r.clone());
            }
            let org = flow.organization_id;
            let supplied = flow.organization_supplied_user_id.clone();
            self.db(move |s| {
                s.enqueue_webhook(
                    org,
                    Some(&supplied),
                    webhook_types::CANCEL,
                    object_types::NONE,
                    json!(""),
                    Some(info),
                )
            })
            .await?;
            return Ok(CallbackOutcome::Denied {
                error: err.to_string(),
                description: error_description.map(str::to_string),
            });
        }
        let Some(code) = code.filter(|c| !c.is_empty()) else {
            return Err(DropboxError::AuthorizationFailed(
                "Dropbox did not return an authorization code; start the connection again.".into(),
            ));
        };
        let app = self.app_by_key(flow.organization_id, &flow.app_key).await?;
        let tokens = match self
            .client()
            .exchange_code(
                &app.key,
                app.secret.as_deref(),
                code,
                &flow.redirect_uri,
                Some(&flow.pkce_verifier),
            )
            .await
        {
            Ok(t) => t,
            Err(carbide_dropbox::Error::OAuth { error, description }) => {
                return Err(DropboxError::AuthorizationFailed(format!(
                    "Dropbox refused the authorization ({error}{}); start the connection again.",
                    description.map(|d| format!(": {d}")).unwrap_or_default()
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let (ds, created, account) = self
            .connect_tokens(
                flow.organization_id,
                flow.organization_user_id,
                &app,
                tokens,
                &flow.options,
            )
            .await?;
        Ok(CallbackOutcome::Connected {
            data_source: Box::new(ds),
            created,
            email: account.email,
            display_name: account.name.display_name,
        })
    }

    /// `/integrations/connect`: connects the account behind tokens the organization obtained
    /// itself (its own OAuth flow with the same Dropbox app). The access token is checked by
    /// reading the account; the organization's app (white label, else server-wide) is recorded
    /// so a refresh token can be used later. Returns the data source and whether it is new.
    pub async fn connect_external(
        &self,
        organization_id: i64,
        organization_user_id: i64,
        access_token: String,
        refresh_token: Option<String>,
        options: &Map<String, Value>,
    ) -> Result<(DataSource, bool), DropboxError> {
        let app = self.app_for_org(organization_id).await?;
        let tokens = carbide_dropbox::TokenResponse {
            access_token,
            expires_in: None,
            refresh_token,
            scope: None,
            account_id: None,
            uid: None,
        };
        let (ds, created, _) = self
            .connect_tokens(organization_id, organization_user_id, &app, tokens, options)
            .await?;
        Ok((ds, created))
    }

    /// Reads the account behind `tokens`, stores them encrypted and creates or reconnects the
    /// customer's data source for that account (ADD webhook), then starts the item listing
    /// unless `sync_source_items` is false.
    async fn connect_tokens(
        &self,
        org: i64,
        cust: i64,
        app: &DropboxApp,
        tokens: carbide_dropbox::TokenResponse,
        options: &Map<String, Value>,
    ) -> Result<(DataSource, bool, carbide_dropbox::FullAccount), DropboxError> {
        let account = self
            .client()
            .get_current_account(&Auth {
                access_token: tokens.access_token.clone(),
                path_root: None,
            })
            .await?;
        let root = account.path_root();
        let mut metadata = Map::new();
        metadata.insert("email".into(), json!(account.email));
        metadata.insert("display_name".into(), json!(account.name.display_name));
        metadata.insert("account_type".into(), json!(account.account_type.tag));
        metadata.insert("root_info_type".into(), json!(account.root_info.tag));
        metadata.insert(
            "root_namespace_id".into(),
            json!(account.root_info.root_namespace_id),
        );
        metadata.insert(
            "home_namespace_id".into(),
            json!(account.root_info.home_namespace_id),
        );
        metadata.insert("home_path".into(), json!(account.root_info.home_path));
        metadata.insert(
            "team_name".into(),
            json!(account.team.as_ref().map(|t| t.name.clone())),
        );
        metadata.insert("uses_team_root".into(), json!(root.is_some()));
        let scopes = tokens
            .scope
            .clone()
            .unwrap_or_else(|| match options.get("scopes") {
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" "),
                _ => String::new(),
            });
        metadata.insert(
            "scopes".into(),
            json!(scopes.split_whitespace().collect::<Vec<_>>()),
        );
        metadata.insert("white_label".into(), json!(app.white_label));
        let conn = DropboxConnection {
            account_id: account.account_id.clone(),
            metadata,
            app_key: app.key.clone(),
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            expires_at: tokens.expires_in.map(|s| now_unix() + s as i64),
            scopes,
            root_namespace_id: root,
        };
        let sync_items = options
            .get("sync_source_items")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let ds_tags = match options.get("data_source_tags") {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        let options = options.clone();
        let (ds, created) = self
            .db(move |s| s.connect_dropbox_source(org, cust, &conn, &options, &ds_tags, sync_items))
            .await?;
        tracing::info!(
            data_source_id = ds.id,
            organization_id = org,
            created,
            "Dropbox account connected"
        );
        if sync_items {
            self.start_item_listing(ds.id);
        }
        Ok((ds, created, account))
    }
}
