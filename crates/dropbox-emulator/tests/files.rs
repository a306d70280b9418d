//! files/* and users/* routes: listing, cursors, metadata, download, longpoll.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn list_folder_pagination_recursion_and_continue() {
    let env = start().await;
    let (aid, tok) = env.user("ada@example.com").await;
    for i in 0..30 {
        env.put(
            &aid,
            &format!("/Docs/Sub/f{i:02}.txt"),
            format!("file {i}").as_bytes(),
        )
        .await;
    }
    env.put(&aid, "/Docs b.txt", b"sorts between /docs and /docs/")
        .await;
    let mut res = env
        .rpc_ok(
            &tok,
            "files/list_folder",
            json!({"path": "", "recursive": true, "limit": 8}),
        )
        .await;
    let mut all: Vec<Value> = res["entries"].as_array().expect("e").clone();
    assert_eq!(all.len(), 8);
    while res["has_more"] == true {
        res = env
            .rpc_ok(
                &tok,
                "files/list_folder/continue",
                json!({"cursor": res["cursor"]}),
            )
            .await;
        all.extend(res["entries"].as_array().expect("e").iter().cloned());
    }
    assert_eq!(all.len(), 33);
    let paths: Vec<&str> = all
        .iter()
        .map(|e| e["path_lower"].as_str().expect("p"))
        .collect();
    let pos = |p: &str| paths.iter().position(|x| *x == p).expect(p);
    assert!(pos("/docs") < pos("/docs/sub") && pos("/docs/sub") < pos("/docs/sub/f00.txt"));
    // Non-recursive, by id, with a small limit.
    let sub = env
        .rpc_ok(&tok, "files/get_metadata", json!({"path": "/DOCS/sub"}))
        .await;
    assert_eq!(sub[".tag"], "folder");
    assert_eq!(sub["path_display"], "/Docs/Sub");
    let page = env
        .rpc_ok(
            &tok,
            "files/list_folder",
            json!({"path": sub["id"], "limit": 2000}),
        )
        .await;
    assert_eq!(page["entries"].as_array().expect("e").len(), 30);
    // Recursive listing of a subfolder includes the folder itself.
    let page = env
        .rpc_ok(
            &tok,
            "files/list_folder",
            json!({"path": "/docs", "recursive": true}),
        )
        .await;
    assert_eq!(page["entries"][0]["path_lower"], "/docs");
    // Void-ish defaults: only `path` sent.
    let top = env
        .rpc_ok(&tok, "files/list_folder", json!({"path": ""}))
        .await;
    let names: Vec<&str> = top["entries"]
        .as_array()
        .expect("e")
        .iter()
        .map(|e| e["name"].as_str().expect("n"))
        .collect();
    assert_eq!(names, vec!["Docs", "Docs b.txt"]);
    // Final cursor doubles as change cursor.
    env.put(&aid, "/Docs/new.txt", b"n").await;
    let ch = env
        .rpc_ok(
            &tok,
            "files/list_folder/continue",
            json!({"cursor": res["cursor"]}),
        )
        .await;
    assert_eq!(ch["entries"][0]["path_display"], "/Docs/new.txt");
}

#[tokio::test]
async fn cursor_reports_edits_moves_and_deletions() {
    let env = start().await;
    let (aid, tok) = env.user("ada@example.com").await;
    let a = env.put(&aid, "/W/a.txt", b"one").await;
    env.put(&aid, "/W/F/b.txt", b"two").await;
    let res = env
        .rpc_ok(
            &tok,
            "files/list_folder",
            json!({"path": "/w", "recursive": true}),
        )
        .await;
    let cursor = res["cursor"].clone();
    let edited = env.put(&aid, "/W/a.txt", b"one!").await;
    assert_eq!(edited["id"], a["id"]);
    assert_ne!(edited["rev"], a["rev"]);
    assert_ne!(edited["content_hash"], a["content_hash"]);
    let same = env.put(&aid, "/w/A.TXT", b"one!").await;
    assert_eq!(same["rev"], edited["rev"]);
    env.admin(
        "move",
        json!({"account_id": aid, "from_path": "/W/F", "to_path": "/W/G"}),
    )
    .await;
    env.admin("delete", json!({"account_id": aid, "path": "/W/a.txt"}))
        .await;
    let ch = env
        .rpc_ok(
            &tok,
            "files/list_folder/continue",
            json!({"cursor": cursor}),
        )
        .await;
    let got: Vec<(String, String)> = ch["entries"]
        .as_array()
        .expect("e")
        .iter()
        .map(|e| {
            (
                e[".tag"].as_str().expect("t").to_string(),
                e["path_lower"].as_str().expect("p").to_string(),
            )
        })
        .collect();
    let has = |t: &str, p: &str| got.contains(&(t.to_string(), p.to_string()));
    assert!(has("deleted", "/w/f"));
    assert!(has("deleted", "/w/f/b.txt"));
    assert!(has("folder", "/w/g"));
    assert!(has("file", "/w/g/b.txt"));
    assert!(has("deleted", "/w/a.txt"));
    let moved = ch["entries"]
        .as_array()
        .expect("e")
        .iter()
        .find(|e| e["path_lower"] == "/w/g/b.txt")
        .expect("moved")
        .clone();
    let by_id = env
        .rpc_ok(&tok, "files/get_metadata", json!({"path": moved["id"]}))
        .await;
    assert_eq!(by_id["path_display"], "/W/G/b.txt");
    // Deleted entries carry no id.
    assert!(
        ch["entries"]
            .as_array()
            .expect("e")
            .iter()
            .filter(|e| e[".tag"] == "deleted")
            .all(|e| e.get("id").is_none())
    );
    // include_deleted
    let listing = env
        .rpc_ok(
            &tok,
            "files/list_folder",
            json!({"path": "/w", "include_deleted": true}),
        )
        .await;
    assert!(
        listing["entries"]
            .as_array()
            .expect("e")
            .iter()
            .any(|e| e[".tag"] == "deleted" && e["name"] == "a.txt")
    );
    let md = env
        .rpc_ok(
            &tok,
            "files/get_metadata",
            json!({"path": "/w/a.txt", "include_deleted": true}),
        )
        .await;
    assert_eq!(md[".tag"], "deleted");
    assert_eq!(
        env.rpc_409(&tok, "files/get_metadata", json!({"path": "/w/a.txt"}))
            .await,
        "path/not_found/.."
    );
    // rev: lookup
    let md = env
        .rpc_ok(
            &tok,
            "files/get_metadata",
            json!({"path": format!("rev:{}", moved["rev"].as_str().expect("r"))}),
        )
        .await;
    assert_eq!(md["id"], moved["id"]);
    // get_latest_cursor
    let latest = env
        .rpc_ok(
            &tok,
            "files/list_folder/get_latest_cursor",
            json!({"path": ""}),
        )
        .await;
    let none = env
        .rpc_ok(
            &tok,
            "files/list_folder/continue",
            json!({"cursor": latest["cursor"]}),
        )
        .await;
    assert_eq!(none["entries"], json!([]));
    assert_eq!(none["has_more"], false);
    // cursors/reset
    env.admin("cursors/reset", json!({"account_id": aid})).await;
    assert_eq!(
        env.rpc_409(
            &tok,
            "files/list_folder/continue",
            json!({"cursor": latest["cursor"]})
        )
        .await,
        "reset/.."
    );
}

#[tokio::test]
async fn typed_errors_and_bad_input() {
    let env = start().await;
    let (aid, tok) = env.user("ada@example.com").await;
    env.put(&aid, "/a.txt", b"a").await;
    assert_eq!(
        env.rpc_409(&tok, "files/list_folder", json!({"path": "/missing"}))
            .await,
        "path/not_found/.."
    );
    assert_eq!(
        env.rpc_409(&tok, "files/list_folder", json!({"path": "/a.txt"}))
            .await,
        "path/not_folder/.."
    );
    assert_eq!(
        env.rpc_409(&tok, "files/list_folder", json!({"path": "id:nope"}))
            .await,
        "path/not_found/.."
    );
    let bad = |resp: reqwest::Response| async move {
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .expect("ct")
                .starts_with("text/plain")
        );
        resp.text().await.expect("t")
    };
    let t = bad(env
        .rpc(&tok, "files/list_folder", json!({"path": "/"}))
        .await)
    .await;
    assert!(t.starts_with("Error in call to API function \"files/list_folder\": "));
    assert!(t.contains("Specify the root folder as an empty string"));
    let t = bad(env
        .rpc(&tok, "files/list_folder", json!({"path": "relative"}))
        .await)
    .await;
    assert!(t.contains("did not match pattern"));
    let t = bad(env
        .rpc(&tok, "files/list_folder", json!({"path": "", "limit": 0}))
        .await)
    .await;
    assert!(t.contains("limit"));
    let t = bad(env
        .rpc(&tok, "files/list_folder", json!({"path": "", "bogus": 1}))
        .await)
    .await;
    assert!(t.contains("bogus"));
    let t = bad(env
        .rpc(&tok, "files/get_metadata", json!({"path": ""}))
        .await)
    .await;
    assert!(t.contains("root folder is unsupported"));
    let t = bad(env
        .rpc(
            &tok,
            "files/list_folder/continue",
            json!({"cursor": "garbage"}),
        )
        .await)
    .await;
    assert!(t.contains("cursor"));
    let t = bad(env
        .http
        .post(format!("{}/2/files/list_folder", env.base))
        .bearer_auth(&tok)
        .header("Content-Type", "text/xml")
        .body("{}")
        .send()
        .await
        .expect("r"))
    .await;
    assert!(t.contains("Bad HTTP \"Content-Type\" header"));
    let t = bad(env
        .http
        .post(format!("{}/2/files/list_folder", env.base))
        .bearer_auth(&tok)
        .header("Content-Type", "application/json")
        .body("{nope")
        .send()
        .await
        .expect("r"))
    .await;
    assert!(t.contains("could not decode input as JSON"));
    // Auth errors.
    let t = bad(env
        .http
        .post(format!("{}/2/users/get_current_account", env.base))
        .send()
        .await
        .expect("r"))
    .await;
    assert!(t.contains("Must provide HTTP header \"Authorization\""));
    let t = bad(env
        .http
        .post(format!("{}/2/users/get_current_account", env.base))
        .header("Authorization", "Token abc")
        .send()
        .await
        .expect("r"))
    .await;
    assert!(t.contains("Expecting \"Bearer <oauth2-access-token>\""));
    let t = bad(env
        .http
        .post(format!("{}/2/users/get_current_account", env.base))
        .header("Authorization", "Bearer bad token!")
        .send()
        .await
        .expect("r"))
    .await;
    assert!(t.contains("malformed"));
    let resp = env
        .rpc("sl.u.unknown", "users/get_current_account", Value::Null)
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let v: Value = resp.json().await.expect("j");
    assert_eq!(v["error_summary"], "invalid_access_token/..");
    env.admin("tokens/expire", json!({"access_token": tok}))
        .await;
    let resp = env
        .rpc(&tok, "users/get_current_account", Value::Null)
        .await;
    let v: Value = resp.json().await.expect("j");
    assert_eq!(v["error"][".tag"], "expired_access_token");
    // Missing scope.
    let t = env
        .admin(
            "tokens",
            json!({"app_key": APP_KEY, "account_id": aid, "scope": "account_info.read"}),
        )
        .await;
    let resp = env
        .rpc(
            t["access_token"].as_str().expect("t"),
            "files/list_folder",
            json!({"path": ""}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let v: Value = resp.json().await.expect("j");
    assert_eq!(v["error"]["required_scope"], "files.metadata.read");
    // Unknown route.
    let resp = env.rpc(&tok, "files/nope", json!({})).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn get_current_account_shapes() {
    let env = start().await;
    let (aid, tok) = env.user("ada@example.com").await;
    // Void args: null, empty body.
    let me = env
        .rpc_ok(&tok, "users/get_current_account", Value::Null)
        .await;
    assert_eq!(me["account_id"], aid);
    assert_eq!(aid.len(), 40);
    assert_eq!(me["root_info"][".tag"], "user");
    assert_eq!(me["account_type"][".tag"], "basic");
    assert!(me["referral_link"].is_string() && me["is_paired"] == false);
    let resp = env
        .http
        .post(format!("{}/2/users/get_current_account", env.base))
        .bearer_auth(&tok)
        .send()
        .await
        .expect("r");
    assert_eq!(resp.status(), StatusCode::OK);
    let team = env
        .admin("accounts", json!({"email": "ada@acme.example", "given_name": "Ada", "surname": "Lane", "team": {"name": "Acme"}}))
        .await;
    let ttok = env.token(team["account_id"].as_str().expect("id")).await;
    let me = env
        .rpc_ok(&ttok, "users/get_current_account", Value::Null)
        .await;
    assert_eq!(me["account_type"][".tag"], "business");
    assert_eq!(me["root_info"][".tag"], "team");
    assert_eq!(me["root_info"]["home_path"], "/Ada Lane");
    assert_eq!(me["team"]["name"], "Acme");
    assert_eq!(
        me["team"]["sharing_policies"].as_object().expect("p").len(),
        8
    );
    assert!(me["team_member_id"].is_string());
}

#[tokio::test]
async fn download_escaping_ranges_and_errors() {
    let env = start().await;
    let (aid, tok) = env.user("ada@example.com").await;
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let meta = env.put(&aid, "/Ré 😀.bin", &data).await;
    assert_eq!(
        meta["content_hash"],
        dropbox_emulator::util::content_hash(&data)
    );
    let dl = |range: Option<&str>| {
        let mut req = env
            .http
            .post(format!("{}/2/files/download", env.base))
            .bearer_auth(&tok)
            .header(
                "Dropbox-API-Arg",
                r#"{"path": "/r\u00e9 \ud83d\ude00.bin"}"#,
            );
        if let Some(r) = range {
            req = req.header("Range", r);
        }
        req.send()
    };
    let resp = dl(None).await.expect("dl");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    let result = resp.headers()["dropbox-api-result"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(result.contains(r"R\u00e9 \ud83d\ude00.bin"));
    let parsed: Value = serde_json::from_str(&result).expect("json");
    assert_eq!(parsed["name"], "Ré 😀.bin");
    assert_eq!(resp.bytes().await.expect("b").as_ref(), &data[..]);
    let resp = dl(Some("bytes=100-199")).await.expect("dl");
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.headers()["content-range"], "bytes 100-199/100000");
    assert_eq!(resp.bytes().await.expect("b").as_ref(), &data[100..200]);
    let resp = dl(Some("bytes=99990-")).await.expect("dl");
    assert_eq!(resp.bytes().await.expect("b").as_ref(), &data[99990..]);
    let resp = dl(Some("bytes=-10")).await.expect("dl");
    assert_eq!(resp.bytes().await.expect("b").as_ref(), &data[99990..]);
    let resp = dl(Some("bytes=100000-")).await.expect("dl");
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    // GET with query arg + authorization.
    let url = format!(
        "{}/2/files/download?arg={}&authorization={}",
        env.base,
        url::form_urlencoded::byte_serialize(meta["id"].to_string().replace('"', "").as_bytes())
            .collect::<String>(),
        "x"
    );
    let _ = url;
    let arg = json!({"path": meta["id"]}).to_string();
    let resp = env
        .http
        .get(format!("{}/2/files/download", env.base))
        .query(&[
            ("arg", arg.as_str()),
            ("authorization", &format!("Bearer {tok}")),
        ])
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.expect("b").len(), data.len());
    // Errors.
    env.admin("folders", json!({"account_id": aid, "path": "/Dir"}))
        .await;
    env.admin("files", json!({"account_id": aid, "path": "/paper.doc", "content_b64": "", "is_downloadable": false})).await;
    for (path, summary) in [
        ("/nope", "path/not_found/.."),
        ("/Dir", "path/not_file/.."),
        ("/paper.doc", "unsupported_file/.."),
    ] {
        let resp = env
            .http
            .post(format!("{}/2/files/download", env.base))
            .bearer_auth(&tok)
            .header("Dropbox-API-Arg", json!({"path": path}).to_string())
            .send()
            .await
            .expect("dl");
        assert_eq!(resp.status(), StatusCode::CONFLICT);
        assert!(resp.headers().get("dropbox-api-result").is_none());
        let v: Value = resp.json().await.expect("j");
        assert_eq!(v["error_summary"], summary);
    }
    let resp = env
        .http
        .post(format!("{}/2/files/download", env.base))
        .bearer_auth(&tok)
        .header("Dropbox-API-Arg", "{\"path\": \"/R\u{e9}\"}".as_bytes())
        .send()
        .await
        .expect("dl");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.expect("t").contains("Dropbox-API-Arg"));
}

#[tokio::test]
async fn longpoll_rules_and_wakeup() {
    let env = start().await;
    let (aid, tok) = env.user("ada@example.com").await;
    env.put(&aid, "/In/x.txt", b"x").await;
    let cur = env
        .rpc_ok(&tok, "files/list_folder", json!({"path": "/in"}))
        .await["cursor"]
        .clone();
    let lp = |body: Value, auth: bool| {
        let mut req = env
            .http
            .post(format!("{}/2/files/list_folder/longpoll", env.base))
            .header("Content-Type", "application/json")
            .body(body.to_string());
        if auth {
            req = req.bearer_auth(&tok);
        }
        req.send()
    };
    let resp = lp(json!({"cursor": cur}), true).await.expect("lp");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(
        resp.text()
            .await
            .expect("t")
            .contains("Authorization header")
    );
    for t in [29, 481] {
        let resp = lp(json!({"cursor": cur, "timeout": t}), false)
            .await
            .expect("lp");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    }
    let waiter = tokio::spawn(lp(json!({"cursor": cur, "timeout": 30}), false));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    env.put(&aid, "/Other/y.txt", b"out of scope").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!waiter.is_finished());
    env.put(&aid, "/In/z.txt", b"in scope").await;
    let resp = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
        .await
        .expect("woke")
        .expect("join")
        .expect("resp");
    assert_eq!(resp.headers()["content-type"], "application/json");
    let v: Value = resp.json().await.expect("j");
    assert_eq!(v, json!({"changes": true}));
    env.admin("cursors/reset", json!({"account_id": aid})).await;
    let resp = lp(json!({"cursor": cur}), false).await.expect("lp");
    assert_eq!(resp.status(), StatusCode::CONFLICT);
}
