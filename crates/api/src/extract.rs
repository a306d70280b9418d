//! Request body extraction with FastAPI-style 422 errors: tolerant of missing or odd
//! Content-Type, ignores unknown fields, and points `loc` at the offending field.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::{ApiError, ValidationItem};

/// A JSON request body parsed with path-aware errors.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            let status = e.status();
            if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::Status(status, "Request body too large".into())
            } else {
                ApiError::Status(status, e.body_text())
            }
        })?;
        parse_body(&bytes).map(JsonBody)
    }
}

/// Parses `bytes` (empty = `{}`) into `T`, mapping errors to FastAPI's 422 shape.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let trimmed = bytes.iter().all(|b| b.is_ascii_whitespace());
    let src: &[u8] = if trimmed { b"{}" } else { bytes };
    let mut de = serde_json::Deserializer::from_slice(src);
    let res: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    let out = res.map_err(|err| {
        let mut loc = vec![json!("body")];
        for seg in err.path().iter() {
            match seg {
                serde_path_to_error::Segment::Seq { index } => loc.push(json!(index)),
                serde_path_to_error::Segment::Map { key } => loc.push(json!(key)),
                serde_path_to_error::Segment::Enum { variant } => loc.push(json!(variant)),
                serde_path_to_error::Segment::Unknown => {}
            }
        }
        let inner = err.into_inner();
        ApiError::Validation(vec![describe(loc, &inner)])
    })?;
    // reject trailing garbage such as `{"a": 1}}`
    de.end()
        .map_err(|e| ApiError::Validation(vec![describe(vec![json!("body")], &e)]))?;
    Ok(out)
}

fn describe(mut loc: Vec<Value>, e: &serde_json::Error) -> ValidationItem {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => ValidationItem::new(
            vec![json!("body"), json!(e.column().saturating_sub(1))],
            format!("JSON decode error: {e}"),
            "value_error.jsondecode",
        ),
        Category::Data => {
            let msg = e.to_string();
            // strip serde's " at line X column Y" suffix
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            if let Some(rest) = msg.strip_prefix("missing field `") {
                let field = rest.trim_end_matches('`');
                loc.push(json!(field));
                ValidationItem::new(loc, "field required", "value_error.missing")
            } else if msg.starts_with("invalid type") {
                ValidationItem::new(loc, msg, "type_error")
            } else if msg.starts_with("unknown variant") {
                ValidationItem::new(loc, msg, "type_error.enum")
            } else {
                ValidationItem::new(loc, msg, "value_error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        limit: Option<i64>,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        ids: Vec<String>,
        pagination: Option<Inner>,
    }

    fn loc(e: ApiError) -> (Vec<Value>, String) {
        match e {
            ApiError::Validation(v) => (v[0].loc.clone(), v[0].kind.clone()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn locations() {
        let e = parse_body::<Outer>(br#"{"ids":["a"],"pagination":{"limit":"x"}}"#).unwrap_err();
        assert_eq!(
            loc(e),
            (
                vec![json!("body"), json!("pagination"), json!("limit")],
                "type_error".into()
            )
        );
        let e = parse_body::<Outer>(br#"{"ids":["a",3]}"#).unwrap_err();
        assert_eq!(loc(e).0, vec![json!("body"), json!("ids"), json!(1)]);
        let e = parse_body::<Outer>(br#"{}"#).unwrap_err();
        assert_eq!(
            loc(e),
            (
                vec![json!("body"), json!("ids")],
                "value_error.missing".into()
            )
        );
        let e = parse_body::<Outer>(br#"{"ids": [}"#).unwrap_err();
        assert_eq!(loc(e).1, "value_error.jsondecode");
        assert!(parse_body::<Outer>(br#"{"ids":[],"zzz":1}"#).is_ok());
        let e = parse_body::<Outer>(br#"{"ids":[]}}"#).unwrap_err();
        assert_eq!(loc(e).1, "value_error.jsondecode");
    }
}
