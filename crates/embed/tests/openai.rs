//! Tests the OpenAI-compatible provider against an in-test axum server: request shape, ordering
//! by `index`, batching, retries on 429/5xx, no retry on 4xx, and response validation.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use carbide_embed::{EmbedError, Embedder, OpenAiCompatible, OpenAiConfig};
use serde_json::{Value, json};

/// What the fake server does with request number `n` (0-based).
#[derive(Clone, Copy)]
enum Script {
    /// Answers correctly, items in reverse order.
    Ok,
    /// 429 with Retry-After: 0 for the first two requests, then OK.
    RateLimitedTwice,
    /// Always 503.
    AlwaysDown,
    /// 400 with a body.
    BadRequest,
    /// Vectors of the wrong length.
    WrongDims,
}

#[derive(Clone)]
struct Fake {
    script: Script,
    calls: Arc<AtomicUsize>,
    seen: Arc<Log>,
}

/// Authorization header and JSON body of every request.
#[derive(Default)]
struct Log(std::sync::Mutex<Vec<(Option<String>, Value)>>);

/// Vector for text `t`: deterministic, depends on the text, so ordering errors are visible.
fn vector(t: &str) -> Vec<f32> {
    (0..4).map(|i| (t.len() * 10 + i) as f32).collect()
}

async fn handler(State(f): State<Fake>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let n = f.calls.fetch_add(1, Ordering::SeqCst);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    f.seen.0.lock().expect("log").push((auth, body.clone()));
    let inputs: Vec<String> = body["input"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let ok = |dims: usize| {
        let mut data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut v = vector(t);
                v.truncate(dims);
                json!({"object": "embedding", "index": i, "embedding": v})
            })
            .collect();
        data.reverse();
        Json(json!({"object": "list", "model": body["model"], "data": data})).into_response()
    };
    match f.script {
        Script::Ok => ok(4),
        Script::RateLimitedTwice if n < 2 => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "0")],
            "slow down",
        )
            .into_response(),
        Script::RateLimitedTwice => ok(4),
        Script::AlwaysDown => (StatusCode::SERVICE_UNAVAILABLE, "down").into_response(),
        Script::BadRequest => (
            StatusCode::BAD_REQUEST,
            r#"{"error":{"message":"bad model"}}"#,
        )
            .into_response(),
        Script::WrongDims => ok(3),
    }
}

/// Starts the fake on an ephemeral loopback port in its own runtime thread.
fn serve(script: Script) -> (String, Fake) {
    let fake = Fake {
        script,
        calls: Arc::new(AtomicUsize::new(0)),
        seen: Arc::new(Log::default()),
    };
    let app = axum::Router::new()
        .route("/v1/embeddings", post(handler))
        .with_state(fake.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().expect("addr"))
                .expect("send addr");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    let addr = rx.recv().expect("server address");
    (format!("http://{addr}/"), fake)
}

fn provider(base: &str, batch_size: usize) -> OpenAiCompatible {
    let mut cfg = OpenAiConfig::new(base, "text-embedding-3-small", 4, 8191);
    cfg.api_key = Some("sk-test-secret".into());
    cfg.batch_size = batch_size;
    cfg.max_retries = 3;
    cfg.initial_backoff = Duration::from_millis(1);
    cfg.max_backoff = Duration::from_millis(5);
    OpenAiCompatible::new(cfg).expect("provider")
}

#[test]
fn embeds_in_order_batched_with_auth() {
    let (base, fake) = serve(Script::Ok);
    let p = provider(&base, 2);
    let texts = ["a", "bb", "ccc", "dddd", "eeeee"];
    let got = p.embed(&texts).expect("embed");
    let want: Vec<Vec<f32>> = texts.iter().map(|t| vector(t)).collect();
    assert_eq!(got, want);
    assert_eq!(fake.calls.load(Ordering::SeqCst), 3, "5 texts at batch 2");
    {
        let seen = fake.seen.0.lock().expect("log");
        assert_eq!(seen[0].0.as_deref(), Some("Bearer sk-test-secret"));
        assert_eq!(
            seen[0].1,
            json!({"model": "text-embedding-3-small", "input": ["a", "bb"]})
        );
    }
    assert_eq!(p.embed_query("zz").expect("query"), vector("zz"));
    assert!(p.embed(&[]).expect("empty").is_empty());
    assert_eq!(
        (p.dims(), p.max_tokens(), p.model_id()),
        (4, 8191, "text-embedding-3-small")
    );
    assert!(p.count_tokens("héllo").expect("count") >= 5);
    assert!(
        !format!("{p:?}").contains("sk-test-secret"),
        "api key must not be printed"
    );
}

#[test]
fn retries_rate_limits() {
    let (base, fake) = serve(Script::RateLimitedTwice);
    let got = provider(&base, 8)
        .embed(&["x"])
        .expect("embed after retries");
    assert_eq!(got, vec![vector("x")]);
    assert_eq!(fake.calls.load(Ordering::SeqCst), 3);
}

#[test]
fn gives_up_after_max_retries_on_5xx() {
    let (base, fake) = serve(Script::AlwaysDown);
    let err = provider(&base, 8).embed(&["x"]).expect_err("must fail");
    assert!(matches!(err, EmbedError::Http { status: 503, .. }), "{err}");
    assert_eq!(fake.calls.load(Ordering::SeqCst), 4, "1 try + 3 retries");
}

#[test]
fn does_not_retry_client_errors() {
    let (base, fake) = serve(Script::BadRequest);
    let err = provider(&base, 8).embed(&["x"]).expect_err("must fail");
    match err {
        EmbedError::Http { status, body } => {
            assert_eq!(status, 400);
            assert!(body.contains("bad model"));
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn rejects_wrong_dimensions() {
    let (base, _) = serve(Script::WrongDims);
    let err = provider(&base, 8).embed(&["x"]).expect_err("must fail");
    assert!(matches!(err, EmbedError::BadResponse(_)), "{err}");
}

#[test]
fn unreachable_server_is_a_transport_error() {
    // Bind then drop a listener so the port is very likely closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let err = provider(&format!("http://127.0.0.1:{port}"), 8)
        .embed(&["x"])
        .expect_err("must fail");
    assert!(matches!(err, EmbedError::Transport(_)), "{err}");
}

#[test]
fn rejects_bad_config() {
    let err = OpenAiCompatible::new(OpenAiConfig::new("ftp://x", "m", 4, 10)).expect_err("scheme");
    assert!(matches!(err, EmbedError::Config(_)));
    let err = OpenAiCompatible::new(OpenAiConfig::new("http://x", "m", 0, 10)).expect_err("dims");
    assert!(matches!(err, EmbedError::Config(_)));
}
