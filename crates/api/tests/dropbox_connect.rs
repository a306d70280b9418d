//! Dropbox connect flow, data sources, token lifecycle and item listing, end to end against the
//! in-process Dropbox emulator over HTTP: carbide's router with a `Dropbox` connector pointed at
//! the emulator, the webhook worker delivering to a local receiver.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use carbide_api::{ApiConfig, AppState, router};
use carbide_core::secrets::MasterKey;
use carbide_store::Store;
use carbide_sync::dropbox::{Dropbox, DropboxSettings, Endpoints};
use carbide_sync::{WebhookWorkerConfig, run_webhook_worker_with};
use common::{assert_schema, finish};
use dropbox_emulator::{AccountReq, AppConfig, PutFile, RunningEmulator, TeamReq};
use serde_json::{Value, json};

const SRV_KEY: &str = "srv-app-key";
const SRV_SECRET: &str = "srv-app-secret-value";
const WL_KEY: &str = "wl-app-key";
const WL_SECRET: &str = "wl-app-secret-value";

#[derive(Clone, Default)]
struct Hooks(Arc<Mutex<Vec<Value>>>);

async fn receive(State(h): State<Hooks>, body: String) -> StatusCode {
    let outer: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let inner: Value = outer["payload"]
        .as_str()
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or(Value::Null);
    h.0.lock().unwrap().push(inner);
    StatusCode::OK
}

struct Env {
    base: String,
    store: Store,
    dropbox: Dropbox,
    emu: RunningEmulator,
    http: reqwest::Client,
    hooks: Hooks,
    hook_url: String,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::watch::Sender<bool>,
}

async fn start() -> Env {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let redirect = format!("{base}/integrations/dropbox");
    let emu = dropbox_emulator::serve(dropbox_emulator::Config {
        apps: vec![
            AppConfig {
                key: SRV_KEY.into(),
                secret: SRV_SECRET.into(),
                redirect_uris: vec![redirect.clone()],
                scopes: vec![],
            },
            AppConfig {
                key: WL_KEY.into(),
                secret: WL_SECRET.into(),
                redirect_uris: vec![redirect.clone()],
                scopes: vec![],
            },
        ],
        ..dropbox_emulator::Config::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("carbide.db"), MasterKey::generate()).unwrap();
    let dropbox = Dropbox::new(
        store.clone(),
        DropboxSettings {
            endpoints: Some(Endpoints::single_origin(&emu.base_url())),
            ca_certs_pem: vec![],
            app_key: Some(SRV_KEY.into()),
            app_secret: Some(SRV_SECRET.into()),
            public_url: base.clone(),
        },
    )
    .unwrap();
    let app = router(
        AppState::new(
            store.clone(),
            ApiConfig {
                public_url: base.clone(),
                max_body_bytes: 1 << 20,
            },
        )
        .with_dropbox(dropbox.clone()),
    );
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let hook_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", hook_listener.local_addr().unwrap());
    let hooks = Hooks::default();
    let happ = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(hooks.clone());
    tokio::spawn(async move {
        axum::serve(hook_listener, happ).await.unwrap();
    });
    let (stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(run_webhook_worker_with(
        store.clone(),
        reqwest::Client::new(),
        rx,
        WebhookWorkerConfig {
            poll_interval: Duration::from_millis(50),
            ..WebhookWorkerConfig::default()
        },
    ));
    Env {
        base,
        store,
        dropbox,
        emu,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        hooks,
        hook_url,
        _dir: dir,
        _stop: stop,
    }
}

impl Env {
    fn org(&self, name: &str) -> (i64, String) {
        let (o, k) = self.store.create_organization(name).unwrap();
        (o.id, k)
    }

    async fn org_with_hook(&self, name: &str) -> (i64, String) {
        let (id, key) = self.org(name);
        let (s, v) = self
            .org_post(&key, "/add_webhook", json!({"url": self.hook_url}))
            .await;
        assert_eq!(s, 200, "{v}");
        (id, key)
    }

    async fn org_post(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {key}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        finish(r).await
    }

    async fn post(&self, key: &str, cid: &str, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {key}"))
            .header("customer-id", cid)
            .json(&body)
            .send()
            .await
            .unwrap();
        finish(r).await
    }

    fn account(&self, email: &str, team: Option<&str>) -> Value {
        self.emu
            .core()
            .create_account(AccountReq {
                email: email.into(),
                given_name: Some(email.split('@').next().unwrap_or("x").into()),
                surname: Some("Test".into()),
                account_type: team.map(|_| "business".to_string()),
                team: team.map(|t| TeamReq { name: t.into() }),
                ..AccountReq::default()
            })
            .unwrap()
    }

    fn put(&self, account_id: &str, path: &str, content: &[u8]) {
        self.emu
            .core()
            .put_file(PutFile {
                account_id: account_id.into(),
                path: path.into(),
                content: content.to_vec(),
                client_modified: None,
                is_downloadable: true,
            })
            .unwrap();
    }

    async fn oauth_url(&self, key: &str, cid: &str, body: Value) -> String {
        let (s, v) = self.post(key, cid, "/integrations/oauth_url", body).await;
        assert_eq!(s, 200, "{v}");
        assert_schema("OuthURLResponse", &v);
        v["oauth_url"].as_str().unwrap().to_string()
    }

    /// "Allow" through the emulator's admin route; returns the redirect target.
    async fn approve(&self, account_id: &str, authorize_url: &str) -> String {
        let r = self
            .http
            .post(format!("{}/__admin/oauth/approve", self.emu.base_url()))
            .json(&json!({"account_id": account_id, "authorize_url": authorize_url}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        v["redirect_to"].as_str().unwrap().to_string()
    }

    async fn get_json(&self, url: &str) -> (u16, Value) {
        let r = self.http.get(url).send().await.unwrap();
        finish(r).await
    }

    /// Full connect: oauth_url → approve → callback (JSON). Returns the callback answer.
    async fn connect(&self, key: &str, cid: &str, account_id: &str, body: Value) -> Value {
        let url = self.oauth_url(key, cid, body).await;
        let to = self.approve(account_id, &url).await;
        let (s, v) = self.get_json(&format!("{to}&format=json")).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["status"], "connected", "{v}");
        assert_schema("OrganizationUserDataSourceAPI", &v["data_source"]);
        v
    }

    async fn data_source(&self, key: &str, cid: &str, id: i64) -> Value {
        let (s, v) = self
            .post(
                key,
                cid,
                "/user_data_sources",
                json!({"filters": {"ids": [id]}}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["count"], 1, "{v}");
        v["results"][0].clone()
    }

    async fn wait_listed(&self, key: &str, cid: &str, id: i64) -> Value {
        for _ in 0..200 {
            let ds = self.data_source(key, cid, id).await;
            if ds["sync_status"] == "READY" && !ds["source_items_synced_at"].is_null() {
                return ds;
            }
            if ds["sync_status"] == "SYNC_ERROR" {
                return ds;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("item listing of data source {id} did not finish");
    }

    async fn wait_hooks(&self, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        for _ in 0..200 {
            let got = self.hooks.0.lock().unwrap().clone();
            if pred(&got) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("webhooks not received: {:?}", self.hooks.0.lock().unwrap());
    }

    async fn items(&self, key: &str, cid: &str, body: Value) -> Value {
        let (s, v) = self.post(key, cid, "/integrations/items/list", body).await;
        assert_eq!(s, 200, "{v}");
        assert_schema("ListDataSourceItemsResponse", &v);
        for it in v["items"].as_array().unwrap() {
            assert_schema("ExternalSourceItem", it);
        }
        v
    }
}

fn query_of(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn names(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect()
}

fn count_type(hooks: &[Value], t: &str) -> usize {
    hooks.iter().filter(|h| h["webhook_type"] == t).count()
}

#[tokio::test]
async fn connect_list_items_tags_and_state_reuse() {
    let env = start().await;
    let (org, key) = env.org_with_hook("acme").await;
    let ada = env.account("ada@example.com", None);
    let ada_id = ada["account_id"].as_str().unwrap();
    env.put(ada_id, "/Docs/a.txt", b"hello a");
    env.put(ada_id, "/Docs/Sub/b.pdf", b"%PDF-1.4 not really");
    env.put(ada_id, "/notes.md", b"# notes");
    env.put(ada_id, "/song.mp3", b"ID3....");
    env.put(ada_id, "/archive.zip", b"PK..");

    let url = env
        .oauth_url(
            &key,
            "cust-1",
            json!({"service": "DROPBOX", "request_id": "req-42", "chunk_size": 300,
                   "data_source_tags": {"team": "blue"}}),
        )
        .await;
    let q = query_of(&url);
    assert!(url.starts_with(&format!("{}/oauth2/authorize?", env.emu.base_url())));
    assert_eq!(q["client_id"], SRV_KEY);
    assert_eq!(
        q["redirect_uri"],
        format!("{}/integrations/dropbox", env.base)
    );
    assert_eq!(q["token_access_type"], "offline");
    assert_eq!(
        q["scope"],
        "account_info.read files.metadata.read files.content.read"
    );
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(!q.contains_key("force_reapprove"));
    assert!(q["state"].len() >= 32);

    let to = env.approve(ada_id, &url).await;
    let (s, v) = env.get_json(&format!("{to}&format=json")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "connected");
    assert_eq!(v["created"], true);
    assert_eq!(v["email"], "ada@example.com");
    let ds = &v["data_source"];
    assert_schema("OrganizationUserDataSourceAPI", ds);
    let id = ds["id"].as_i64().unwrap();
    assert_eq!(ds["data_source_type"], "DROPBOX");
    assert_eq!(ds["data_source_external_id"], ada_id);
    assert_eq!(ds["token"], Value::Null);
    assert_eq!(ds["revoked_access"], false);
    assert_eq!(ds["last_sync_action"], "ADD");
    assert_eq!(ds["organization_supplied_user_id"], "cust-1");
    assert_eq!(ds["organization_id"], org);
    assert_eq!(ds["tags"], json!({"team": "blue"}));
    assert_eq!(ds["data_source_metadata"]["email"], "ada@example.com");
    assert!(
        ["QUEUED_FOR_SYNCING", "SYNCING", "READY"].contains(&ds["sync_status"].as_str().unwrap())
    );
    // no token material anywhere in the answer
    let text = v.to_string();
    let creds = env.store.dropbox_credentials(id).unwrap().unwrap();
    assert!(!text.contains(&creds.access_token));
    assert!(!text.contains(creds.refresh_token.as_deref().unwrap()));
    assert_eq!(creds.app_key, SRV_KEY);

    // the state is single use
    let (s, v) = env.get_json(&format!("{to}&format=json")).await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("already used"),
        "{v}"
    );
    let r = env.http.get(&to).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("already used"));
    // unknown / missing state: 400, never 500
    let (s, v) = env
        .get_json(&format!(
            "{}/integrations/dropbox?code=x&state=nope&format=json",
            env.base
        ))
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, _) = env
        .get_json(&format!("{}/integrations/dropbox?format=json", env.base))
        .await;
    assert_eq!(s, 400);

    let ds = env.wait_listed(&key, "cust-1", id).await;
    assert_eq!(ds["sync_status"], "READY", "{ds}");
    assert_schema("OrganizationUserDataSourceAPI", &ds);

    let hooks = env
        .wait_hooks(|h| count_type(h, "ADD") == 1 && count_type(h, "DATA_SOURCE_READY") == 1)
        .await;
    let add = hooks.iter().find(|h| h["webhook_type"] == "ADD").unwrap();
    assert_eq!(add["obj"]["object_type"], "DATA_SOURCE");
    assert_eq!(add["obj"]["object_id"], id.to_string());
    assert_eq!(add["obj"]["additional_information"]["request_id"], "req-42");
    assert_eq!(add["customer_id"], "cust-1");

    // root level, name order
    let root = env
        .items(&key, "cust-1", json!({"data_source_id": id}))
        .await;
    assert_eq!(
        names(&root),
        vec!["archive.zip", "Docs", "notes.md", "song.mp3"]
    );
    assert_eq!(root["count"], 4);
    let by_name: HashMap<String, Value> = root["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["name"].as_str().unwrap().to_string(), i.clone()))
        .collect();
    let docs = &by_name["Docs"];
    assert_eq!(docs["item_type"], "FOLDER");
    assert_eq!(docs["is_expandable"], true);
    assert_eq!(docs["parent_external_id"], Value::Null);
    assert_eq!(by_name["notes.md"]["file_format"], "MD");
    assert_eq!(by_name["notes.md"]["is_selectable"], true);
    assert_eq!(by_name["notes.md"]["size"], 7);
    assert_eq!(by_name["song.mp3"]["file_format"], "MP3");
    assert_eq!(by_name["song.mp3"]["is_selectable"], false);
    assert_eq!(by_name["archive.zip"]["file_format"], Value::Null);
    assert_eq!(
        by_name["archive.zip"]["unselectable_reason"],
        "File type not supported"
    );
    assert!(
        by_name["notes.md"]["external_id"]
            .as_str()
            .unwrap()
            .starts_with("id:")
    );

    // directories first, descending
    let v = env
        .items(
            &key,
            "cust-1",
            json!({"data_source_id": id, "order_by": "directories_first", "order_dir": "desc"}),
        )
        .await;
    assert_eq!(names(&v)[0], "Docs");
    // children of a folder
    let docs_id = docs["external_id"].as_str().unwrap();
    let v = env
        .items(
            &key,
            "cust-1",
            json!({"data_source_id": id, "parent_id": docs_id}),
        )
        .await;
    assert_eq!(names(&v), vec!["a.txt", "Sub"]);
    assert_eq!(v["items"][0]["parent_external_id"], docs_id);
    // name search without parent searches the whole tree
    let v = env
        .items(
            &key,
            "cust-1",
            json!({"data_source_id": id, "filters": {"name": "B.PD"}}),
        )
        .await;
    assert_eq!(names(&v), vec!["b.pdf"]);
    // root_files_only keeps a search at the top level
    let v = env
        .items(
            &key,
            "cust-1",
            json!({"data_source_id": id, "filters": {"name": "b", "root_files_only": true}}),
        )
        .await;
    assert_eq!(v["count"], 0);
    let v = env
        .items(
            &key,
            "cust-1",
            json!({"data_source_id": id, "filters": {"file_formats": ["PDF", "TXT"], "external_ids": null, "item_types": ["FILE"], "name": ""}}),
        )
        .await;
    assert_eq!(
        v["count"], 0,
        "no search filter: root only, and root has no pdf/txt"
    );
    let v = env
        .items(
            &key,
            "cust-1",
            json!({"data_source_id": id, "filters": {"item_types": ["FOLDER"], "name": "su"}}),
        )
        .await;
    assert_eq!(names(&v), vec!["Sub"]);
    // pagination
    let v = env
        .items(
            &key,
            "cust-1",
            json!({"data_source_id": id, "pagination": {"limit": 2, "offset": 1}}),
        )
        .await;
    assert_eq!(names(&v), vec!["Docs", "notes.md"]);
    assert_eq!(v["count"], 4);
    let (s, _) = env
        .post(
            &key,
            "cust-1",
            "/integrations/items/list",
            json!({"data_source_id": id, "filters": {"file_formats": ["NOPE"]}}),
        )
        .await;
    assert_eq!(s, 422);

    // a file added later shows up after a new listing
    env.put(ada_id, "/Docs/new.csv", b"a,b\n1,2\n");
    let (s, v) = env
        .post(
            &key,
            "cust-1",
            "/integrations/items/sync",
            json!({"data_source_id": id}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_schema("OrganizationUserDataSourceAPI", &v);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let ds = env.wait_listed(&key, "cust-1", id).await;
    assert_eq!(ds["sync_status"], "READY");
    let v = env
        .items(
            &key,
            "cust-1",
            json!({"data_source_id": id, "parent_id": docs_id}),
        )
        .await;
    assert_eq!(names(&v), vec!["a.txt", "new.csv", "Sub"]);

    // tags
    let (s, v) = env
        .post(
            &key,
            "cust-1",
            "/data_sources/tags/add",
            json!({"data_source_id": id, "tags": {"env": "prod", "n": 3}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_schema("OrganizationUserDataSourceAPI", &v);
    assert_eq!(v["tags"], json!({"team": "blue", "env": "prod", "n": 3}));
    let (s, v) = env
        .post(
            &key,
            "cust-1",
            "/user_data_sources",
            json!({"filters": {"tags": {"AND": [{"key": "env", "value": "prod"}]}}}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["count"], 1);
    let (_, v) = env
        .post(
            &key,
            "cust-1",
            "/user_data_sources",
            json!({"filters": {"tags": {"AND": [{"key": "env", "value": "dev"}]}}}),
        )
        .await;
    assert_eq!(v["count"], 0);
    let (s, v) = env
        .post(
            &key,
            "cust-1",
            "/data_sources/tags/remove",
            json!({"data_source_id": id, "tags_to_remove": ["env"]}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["tags"], json!({"team": "blue", "n": 3}));
    let (_, v) = env
        .post(
            &key,
            "cust-1",
            "/data_sources/tags/remove",
            json!({"data_source_id": id, "remove_all_tags": true}),
        )
        .await;
    assert_eq!(v["tags"], json!({}));

    // reconnecting the same account (HTML callback) updates the same data source
    let url = env
        .oauth_url(
            &key,
            "cust-1",
            json!({"service": "DROPBOX", "connecting_new_account": true}),
        )
        .await;
    assert_eq!(query_of(&url)["force_reapprove"], "true");
    let to = env.approve(ada_id, &url).await;
    let r = env.http.get(&to).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = r.text().await.unwrap();
    assert!(page.contains("Dropbox connected"), "{page}");
    assert!(page.contains("ada@example.com"));
    assert!(page.contains(&format!("\"data_source_id\":{id}")));
    let (_, v) = env
        .post(&key, "cust-1", "/user_data_sources", json!({}))
        .await;
    assert_eq!(v["count"], 1);

    // organisation-wide listing, filters and order
    let (s, v) = env
        .org_post(
            &key,
            "/data_sources",
            json!({"filters": {"source": "DROPBOX", "revoked_access": false}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["count"], 1);
    let (s, _) = env
        .org_post(
            &key,
            "/data_sources",
            json!({"filters": {"source": "NOPE"}}),
        )
        .await;
    assert_eq!(s, 422);
}

#[tokio::test]
async fn deny_fires_cancel_and_connects_nothing() {
    let env = start().await;
    let (_, key) = env.org_with_hook("acme").await;
    let bob = env.account("bob@example.com", None);
    let bob_id = bob["account_id"].as_str().unwrap().to_string();
    let url = env
        .oauth_url(
            &key,
            "cust-d",
            json!({"service": "DROPBOX", "request_id": "r-9"}),
        )
        .await;
    // the emulator's consent page, then "Deny"
    let page = env
        .http
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rid = page
        .split("name=\"request_id\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let r = env
        .http
        .post(format!("{}/oauth2/authorize", env.emu.base_url()))
        .form(&[
            ("request_id", rid.as_str()),
            ("account_id", bob_id.as_str()),
            ("decision", "deny"),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to.contains("error=access_denied"), "{to}");
    let r = env.http.get(&to).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("declined access"), "{page}");
    assert!(page.contains("\"status\":\"denied\""));
    let hooks = env.wait_hooks(|h| count_type(h, "CANCEL") == 1).await;
    let c = hooks
        .iter()
        .find(|h| h["webhook_type"] == "CANCEL")
        .unwrap();
    assert_eq!(c["customer_id"], "cust-d");
    assert_eq!(c["obj"]["additional_information"]["error"], "access_denied");
    assert_eq!(c["obj"]["additional_information"]["request_id"], "r-9");
    let (_, v) = env
        .post(&key, "cust-d", "/user_data_sources", json!({}))
        .await;
    assert_eq!(v["count"], 0);
    // the denied state cannot be replayed with a code
    let state = query_of(&url)["state"].clone();
    let (s, _) = env
        .get_json(&format!(
            "{}/integrations/dropbox?code=abc&state={state}&format=json",
            env.base
        ))
        .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn expired_state_and_unsupported_services_are_rejected() {
    let env = start().await;
    let (_, key) = env.org("acme");
    let acct = env.account("eve@example.com", None);
    let url = env
        .oauth_url(&key, "c", json!({"service": "DROPBOX"}))
        .await;
    let to = env
        .approve(acct["account_id"].as_str().unwrap(), &url)
        .await;
    let db = rusqlite::Connection::open(env._dir.path().join("carbide.db")).unwrap();
    db.execute("UPDATE oauth_states SET expires_at = 0", [])
        .unwrap();
    let (s, v) = env.get_json(&format!("{to}&format=json")).await;
    assert_eq!(s, 400);
    assert!(v["detail"].as_str().unwrap().contains("expired"), "{v}");

    let (s, v) = env
        .post(
            &key,
            "c",
            "/integrations/oauth_url",
            json!({"service": "GOOGLE_DRIVE"}),
        )
        .await;
    assert_eq!(s, 400);
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("not supported by this server")
    );
    let (s, _) = env
        .post(
            &key,
            "c",
            "/integrations/oauth_url",
            json!({"service": "FTP"}),
        )
        .await;
    assert_eq!(s, 422);
    let (s, _) = env
        .post(
            &key,
            "c",
            "/integrations/oauth_url",
            json!({"service": "DROPBOX", "max_items_per_chunk": 0}),
        )
        .await;
    assert_eq!(s, 422);
    let (s, _) = env
        .post(
            &key,
            "c",
            "/integrations/oauth_url",
            json!({"service": "DROPBOX", "data_source_id": 999}),
        )
        .await;
    assert_eq!(s, 404);
    // custom scopes are passed through exactly
    let url = env
        .oauth_url(
            &key,
            "c",
            json!({"service": "DROPBOX", "scopes": ["files.metadata.read"]}),
        )
        .await;
    assert_eq!(query_of(&url)["scope"], "files.metadata.read");
    let url = env
        .oauth_url(
            &key,
            "c",
            json!({"service": "DROPBOX", "scope": "account_info.read files.metadata.read"}),
        )
        .await;
    assert_eq!(
        query_of(&url)["scope"],
        "account_info.read files.metadata.read"
    );
}

#[tokio::test]
async fn expired_access_token_is_refreshed_once() {
    let env = start().await;
    let (_, key) = env.org("acme");
    let acct = env.account("fay@example.com", None);
    let aid = acct["account_id"].as_str().unwrap();
    env.put(aid, "/x.txt", b"x");
    let v = env
        .connect(
            &key,
            "c",
            aid,
            json!({"service": "DROPBOX", "sync_source_items": false}),
        )
        .await;
    let id = v["data_source_id"].as_i64().unwrap();
    assert_eq!(v["data_source"]["sync_status"], "READY");
    let before = env.store.dropbox_credentials(id).unwrap().unwrap();
    env.emu.core().expire_token(&before.access_token).unwrap();

    // several concurrent calls all succeed through one refresh
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let d = env.dropbox.clone();
        tasks.push(tokio::spawn(async move {
            let client = d.client().clone();
            d.call(id, |auth| {
                let client = client.clone();
                async move { client.get_current_account(&auth).await }
            })
            .await
            .map(|a| a.email)
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), "fay@example.com");
    }
    let after = env.store.dropbox_credentials(id).unwrap().unwrap();
    assert_eq!(after.token_version, before.token_version + 1);
    assert_ne!(after.access_token, before.access_token);
    assert!(!after.revoked);

    // the listing works with the refreshed token; the source stays healthy
    let (s, _) = env
        .post(
            &key,
            "c",
            "/integrations/items/sync",
            json!({"data_source_id": id}),
        )
        .await;
    assert_eq!(s, 200);
    let ds = env.wait_listed(&key, "c", id).await;
    assert_eq!(ds["sync_status"], "READY", "{ds}");
    assert_eq!(ds["revoked_access"], false);

    // a token close to expiry is refreshed before use
    let db = rusqlite::Connection::open(env._dir.path().join("carbide.db")).unwrap();
    db.execute(
        "UPDATE dropbox_credentials SET expires_at = strftime('%s','now') + 60 WHERE data_source_id = ?1",
        [id],
    )
    .unwrap();
    let auth = env.dropbox.auth(id).await.unwrap();
    let now = env.store.dropbox_credentials(id).unwrap().unwrap();
    assert_eq!(now.token_version, after.token_version + 1);
    assert_eq!(auth.access_token, now.access_token);
    assert!(now.expires_at.unwrap() > carbide_core::timefmt::now_unix() + 3600);
}

#[tokio::test]
async fn revoked_grant_marks_source_revoked_once() {
    let env = start().await;
    let (_, key) = env.org_with_hook("acme").await;
    let acct = env.account("gil@example.com", None);
    let aid = acct["account_id"].as_str().unwrap();
    env.put(aid, "/x.txt", b"x");
    let v = env
        .connect(
            &key,
            "c",
            aid,
            json!({"service": "DROPBOX", "sync_source_items": false}),
        )
        .await;
    let id = v["data_source_id"].as_i64().unwrap();
    // the user unlinks the app at Dropbox: the grant (refresh token included) is gone
    let creds = env.store.dropbox_credentials(id).unwrap().unwrap();
    let r = env
        .http
        .post(format!("{}/2/auth/token/revoke", env.emu.base_url()))
        .bearer_auth(&creds.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let (s, _) = env
        .post(
            &key,
            "c",
            "/integrations/items/sync",
            json!({"data_source_id": id}),
        )
        .await;
    assert_eq!(s, 200);
    let ds = env.wait_listed(&key, "c", id).await;
    assert_eq!(ds["sync_status"], "SYNC_ERROR", "{ds}");
    assert_eq!(ds["revoked_access"], true);
    assert_eq!(ds["last_sync_action"], "REVOKE");
    env.wait_hooks(|h| count_type(h, "REVOKE") == 1).await;
    // no loop: further use fails fast and fires nothing more
    let (s, v) = env
        .post(
            &key,
            "c",
            "/integrations/items/sync",
            json!({"data_source_id": id}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(matches!(
        env.dropbox.auth(id).await,
        Err(carbide_sync::dropbox::DropboxError::Revoked)
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count_type(&env.hooks.0.lock().unwrap(), "REVOKE"), 1);
    let (_, v) = env
        .post(
            &key,
            "c",
            "/user_data_sources",
            json!({"filters": {"revoked_access": true}}),
        )
        .await;
    assert_eq!(v["count"], 1);

    // reconnecting clears revoked_access
    let v = env
        .connect(
            &key,
            "c",
            aid,
            json!({"service": "DROPBOX", "sync_source_items": false}),
        )
        .await;
    assert_eq!(v["data_source_id"], id);
    assert_eq!(v["created"], false);
    assert_eq!(v["data_source"]["revoked_access"], false);
    assert_eq!(v["data_source"]["sync_status"], "READY");

    // /revoke_access_token revokes at Dropbox too
    let creds = env.store.dropbox_credentials(id).unwrap().unwrap();
    let (s, v) = env
        .post(
            &key,
            "c",
            "/revoke_access_token",
            json!({"data_source_id": id}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_schema("GenericSuccessResponse", &v);
    env.wait_hooks(|h| count_type(h, "REVOKE") == 2).await;
    let r = env
        .http
        .post(format!(
            "{}/2/users/get_current_account",
            env.emu.base_url()
        ))
        .bearer_auth(&creds.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let ds = env.data_source(&key, "c", id).await;
    assert_eq!(ds["revoked_access"], true);
    let (s, _) = env
        .post(
            &key,
            "c",
            "/revoke_access_token",
            json!({"data_source_id": 4242}),
        )
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn business_account_lists_team_folders() {
    let env = start().await;
    let (_, key) = env.org("acme");
    let acct = env.account("hana@corp.example", Some("Corp"));
    let aid = acct["account_id"].as_str().unwrap();
    let root = acct["root_namespace_id"].as_str().unwrap();
    assert_ne!(root, acct["home_namespace_id"].as_str().unwrap());
    env.put(
        aid,
        &format!("ns:{root}/Team Projects/plan.docx"),
        b"PK team plan",
    );
    env.put(aid, "/mine.txt", b"my own file");
    let v = env
        .connect(&key, "c", aid, json!({"service": "DROPBOX"}))
        .await;
    let id = v["data_source_id"].as_i64().unwrap();
    let meta = &v["data_source"]["data_source_metadata"];
    assert_eq!(meta["account_type"], "business");
    assert_eq!(meta["uses_team_root"], true);
    let ds = env.wait_listed(&key, "c", id).await;
    assert_eq!(ds["sync_status"], "READY", "{ds}");
    let top = env.items(&key, "c", json!({"data_source_id": id})).await;
    let top_names = names(&top);
    assert!(
        top_names.contains(&"Team Projects".to_string()),
        "{top_names:?}"
    );
    let home = acct["home_path"]
        .as_str()
        .unwrap()
        .trim_start_matches('/')
        .to_string();
    assert!(top_names.contains(&home), "{top_names:?} lacks {home}");
    let v = env
        .items(
            &key,
            "c",
            json!({"data_source_id": id, "filters": {"name": "plan"}}),
        )
        .await;
    assert_eq!(names(&v), vec!["plan.docx"]);
    assert_eq!(v["items"][0]["file_format"], "DOCX");
    let v = env
        .items(
            &key,
            "c",
            json!({"data_source_id": id, "filters": {"name": "mine"}}),
        )
        .await;
    assert_eq!(names(&v), vec!["mine.txt"]);
}

#[tokio::test]
async fn white_label_app_takes_precedence() {
    let env = start().await;
    let (_, wl_key) = env.org("with-wl");
    let (_, plain_key) = env.org("plain");
    let (s, v) = env
        .org_post(
            &wl_key,
            "/white_label/create",
            json!([{"data_source_type": "DROPBOX", "credentials": {
                "client_id": WL_KEY, "client_secret": WL_SECRET,
                "redirect_uri": format!("{}/integrations/dropbox", env.base)}}]),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let acct = env.account("ivy@example.com", None);
    let aid = acct["account_id"].as_str().unwrap();
    let url = env
        .oauth_url(&wl_key, "c", json!({"service": "DROPBOX"}))
        .await;
    assert_eq!(query_of(&url)["client_id"], WL_KEY);
    let url2 = env
        .oauth_url(&plain_key, "c", json!({"service": "DROPBOX"}))
        .await;
    assert_eq!(query_of(&url2)["client_id"], SRV_KEY);
    let to = env.approve(aid, &url).await;
    let (s, v) = env.get_json(&format!("{to}&format=json")).await;
    assert_eq!(s, 200, "{v}");
    let id = v["data_source_id"].as_i64().unwrap();
    let creds = env.store.dropbox_credentials(id).unwrap().unwrap();
    assert_eq!(creds.app_key, WL_KEY);
    assert_eq!(
        v["data_source"]["data_source_metadata"]["white_label"],
        true
    );
    // refreshes use the white-label app too
    env.emu.core().expire_token(&creds.access_token).unwrap();
    let auth = env.dropbox.auth(id).await.unwrap();
    let client = env.dropbox.client().clone();
    let acc = env
        .dropbox
        .call(id, |a| {
            let client = client.clone();
            async move { client.get_current_account(&a).await }
        })
        .await
        .unwrap();
    assert_eq!(acc.email, "ivy@example.com");
    assert_ne!(
        env.store
            .dropbox_credentials(id)
            .unwrap()
            .unwrap()
            .access_token,
        auth.access_token
    );
}

#[tokio::test]
async fn customers_and_organizations_are_isolated() {
    let env = start().await;
    let (_, key_a) = env.org("org-a");
    let (_, key_b) = env.org("org-b");
    let one = env.account("one@example.com", None);
    let two = env.account("two@example.com", None);
    let (one_id, two_id) = (
        one["account_id"].as_str().unwrap(),
        two["account_id"].as_str().unwrap(),
    );
    env.put(one_id, "/one-secret.txt", b"1");
    env.put(two_id, "/two-secret.txt", b"2");
    let v1 = env
        .connect(&key_a, "alice", one_id, json!({"service": "DROPBOX"}))
        .await;
    let v2 = env
        .connect(&key_a, "bob", two_id, json!({"service": "DROPBOX"}))
        .await;
    let v3 = env
        .connect(&key_b, "alice", two_id, json!({"service": "DROPBOX"}))
        .await;
    let (d1, d2, d3) = (
        v1["data_source_id"].as_i64().unwrap(),
        v2["data_source_id"].as_i64().unwrap(),
        v3["data_source_id"].as_i64().unwrap(),
    );
    env.wait_listed(&key_a, "alice", d1).await;
    env.wait_listed(&key_a, "bob", d2).await;
    env.wait_listed(&key_b, "alice", d3).await;

    let (_, v) = env
        .post(&key_a, "alice", "/user_data_sources", json!({}))
        .await;
    assert_eq!(v["count"], 1);
    assert_eq!(v["results"][0]["id"], d1);
    let (_, v) = env
        .post(&key_a, "bob", "/user_data_sources", json!({}))
        .await;
    assert_eq!(v["count"], 1);
    assert_eq!(v["results"][0]["id"], d2);
    let (_, v) = env
        .org_post(&key_a, "/data_sources", json!({"order_by": "created_at"}))
        .await;
    assert_eq!(v["count"], 2);
    let (_, v) = env.org_post(&key_b, "/data_sources", json!({})).await;
    assert_eq!(v["count"], 1);
    assert_eq!(v["results"][0]["id"], d3);

    let v = env
        .items(&key_a, "alice", json!({"data_source_id": d1}))
        .await;
    assert_eq!(names(&v), vec!["one-secret.txt"]);
    for (key, cid, other) in [
        (&key_a, "alice", d2),
        (&key_a, "bob", d1),
        (&key_b, "alice", d1),
    ] {
        for path in [
            "/integrations/items/list",
            "/integrations/items/sync",
            "/integrations/items/sync/cancel",
            "/revoke_access_token",
        ] {
            let (s, _) = env
                .post(key, cid, path, json!({"data_source_id": other}))
                .await;
            assert_eq!(s, 404, "{cid} {path} {other}");
        }
        let (s, _) = env
            .post(
                key,
                cid,
                "/data_sources/tags/add",
                json!({"data_source_id": other, "tags": {"x": 1}}),
            )
            .await;
        assert_eq!(s, 404);
        let (_, v) = env
            .post(
                key,
                cid,
                "/user_data_sources",
                json!({"filters": {"ids": [other]}}),
            )
            .await;
        assert_eq!(v["count"], 0);
    }
    // nothing was revoked by the refused calls
    let (_, v) = env
        .org_post(
            &key_a,
            "/data_sources",
            json!({"filters": {"revoked_access": true}}),
        )
        .await;
    assert_eq!(v["count"], 0);
}

#[tokio::test]
async fn item_listing_can_be_cancelled() {
    let env = start().await;
    let (_, key) = env.org_with_hook("acme").await;
    let acct = env.account("kim@example.com", None);
    let aid = acct["account_id"].as_str().unwrap();
    env.put(aid, "/a.txt", b"a");
    let v = env
        .connect(
            &key,
            "c",
            aid,
            json!({"service": "DROPBOX", "sync_source_items": false}),
        )
        .await;
    let id = v["data_source_id"].as_i64().unwrap();
    // slow list_folder down so the cancel lands mid-listing
    let r = env
        .http
        .post(format!("{}/__admin/faults", env.emu.base_url()))
        .json(&json!({"route": "files/list_folder", "status": 200, "times": 1, "delay_ms": 3000}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let (s, _) = env
        .post(
            &key,
            "c",
            "/integrations/items/sync",
            json!({"data_source_id": id}),
        )
        .await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, v) = env
        .post(
            &key,
            "c",
            "/integrations/items/sync/cancel",
            json!({"data_source_id": id}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_schema("OrganizationUserDataSourceAPI", &v);
    assert_eq!(v["last_sync_action"], "CANCEL");
    assert_eq!(v["sync_status"], "READY");
    env.wait_hooks(|h| count_type(h, "CANCEL") == 1).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let ds = env.data_source(&key, "c", id).await;
    assert_eq!(ds["source_items_synced_at"], Value::Null, "{ds}");
    assert_eq!(ds["sync_status"], "READY");
    assert!(!env.dropbox.item_listing_running(id));
}

#[tokio::test]
async fn connect_with_externally_obtained_tokens() {
    let env = start().await;
    let (_, key) = env.org_with_hook("acme").await;
    let acct = env.account("ext@example.com", None);
    let account_id = acct["account_id"].as_str().unwrap().to_string();
    env.put(&account_id, "/Notes/hello.txt", b"external tokens work");
    // the organization ran its own OAuth flow with the server's Dropbox app
    let grant = env
        .emu
        .core()
        .issue_token(dropbox_emulator::TokenReq {
            app_key: SRV_KEY.into(),
            account_id: account_id.clone(),
            offline: true,
            expires_in: None,
            scope: None,
        })
        .unwrap();
    let access = grant["access_token"].as_str().unwrap().to_string();
    let refresh = grant["refresh_token"].as_str().unwrap().to_string();

    let (s, v) = env
        .post(
            &key,
            "c1",
            "/integrations/connect",
            json!({"authentication": {"source": "DROPBOX", "access_token": access,
                                      "refresh_token": refresh},
                   "sync_options": {"chunk_size": 300, "data_source_tags": {"team": "x"}}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_schema("ConnectDataSourceResponse", &v);
    assert!(v["sync_url"].is_null());
    let ds = &v["data_source"];
    assert_eq!(ds["data_source_type"], "DROPBOX");
    assert_eq!(ds["data_source_external_id"], account_id.as_str());
    assert_eq!(ds["tags"]["team"], "x");
    let id = ds["id"].as_i64().unwrap();
    env.wait_hooks(|h| count_type(h, "ADD") == 1).await;
    // the stored tokens work: the account is listed
    let listed = env.wait_listed(&key, "c1", id).await;
    assert_eq!(listed["sync_status"], "READY", "{listed}");
    let items = env.items(&key, "c1", json!({"data_source_id": id})).await;
    assert!(names(&items).contains(&"Notes".to_string()), "{items}");
    // the same account again reconnects the same data source
    let grant = env
        .emu
        .core()
        .issue_token(dropbox_emulator::TokenReq {
            app_key: SRV_KEY.into(),
            account_id: account_id.clone(),
            offline: false,
            expires_in: None,
            scope: None,
        })
        .unwrap();
    let (s, v) = env
        .post(
            &key,
            "c1",
            "/integrations/connect",
            json!({"authentication": {"source": "DROPBOX",
                                      "access_token": grant["access_token"]}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data_source"]["id"], id);

    // bad input: a rejected token, another source, missing fields
    let (s, v) = env
        .post(
            &key,
            "c1",
            "/integrations/connect",
            json!({"authentication": {"source": "DROPBOX", "access_token": "not-a-token"}}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("rejected the access token"),
        "{v}"
    );
    let (s, _) = env
        .post(
            &key,
            "c1",
            "/integrations/connect",
            json!({"authentication": {"source": "BOX", "access_token": "t"}}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, v) = env
        .post(
            &key,
            "c1",
            "/integrations/connect",
            json!({"authentication": {"source": "DROPBOX"}}),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(
        v["detail"][0]["loc"],
        json!(["body", "authentication", "access_token"])
    );
    let (s, v) = env
        .post(
            &key,
            "c1",
            "/integrations/connect",
            json!({"authentication": {"source": "DROPBOX", "access_token": "t"},
                   "sync_options": {"chunk_size": -1}}),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(
        v["detail"][0]["loc"],
        json!(["body", "sync_options", "chunk_size"])
    );
    let (s, _) = env
        .post(&key, "c1", "/integrations/connect", json!({}))
        .await;
    assert_eq!(s, 422);
}
