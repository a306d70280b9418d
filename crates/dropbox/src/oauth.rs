//! OAuth 2.0 helpers: PKCE verifier/challenge (S256) and the authorize URL.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use sha2::{Digest, Sha256};

/// A random PKCE code verifier (64 URL-safe characters).
pub fn pkce_verifier() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
    let mut rng = rand::rng();
    (0..64)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The S256 challenge of a verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// What goes into an authorize URL.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest<'a> {
    pub app_key: &'a str,
    pub redirect_uri: &'a str,
    pub state: &'a str,
    pub scopes: &'a [String],
    pub code_challenge: Option<&'a str>,
    pub force_reapprove: bool,
}

/// Builds `{www}/oauth2/authorize?...` for the code flow with offline access (refresh tokens).
pub fn authorize_url(
    www_base: &str,
    req: &AuthorizeRequest<'_>,
) -> Result<String, url::ParseError> {
    let mut url = url::Url::parse(&format!(
        "{}/oauth2/authorize",
        www_base.trim_end_matches('/')
    ))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", req.app_key)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", req.redirect_uri)
            .append_pair("state", req.state)
            .append_pair("token_access_type", "offline");
        if !req.scopes.is_empty() {
            q.append_pair("scope", &req.scopes.join(" "));
        }
        if let Some(ch) = req.code_challenge {
            q.append_pair("code_challenge", ch)
                .append_pair("code_challenge_method", "S256");
        }
        if req.force_reapprove {
            q.append_pair("force_reapprove", "true");
        }
    }
    Ok(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc7636_example() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let v = pkce_verifier();
        assert_eq!(v.len(), 64);
        assert_ne!(v, pkce_verifier());
    }

    #[test]
    fn authorize_url_has_every_parameter() {
        let scopes = vec![
            "account_info.read".to_string(),
            "files.content.read".to_string(),
        ];
        let u = authorize_url(
            "http://127.0.0.1:9/",
            &AuthorizeRequest {
                app_key: "k",
                redirect_uri: "http://h/integrations/dropbox",
                state: "s t",
                scopes: &scopes,
                code_challenge: Some("c"),
                force_reapprove: true,
            },
        )
        .unwrap();
        assert!(
            u.starts_with("http://127.0.0.1:9/oauth2/authorize?client_id=k&response_type=code")
        );
        assert!(u.contains("redirect_uri=http%3A%2F%2Fh%2Fintegrations%2Fdropbox"));
        assert!(u.contains("state=s+t"));
        assert!(u.contains("token_access_type=offline"));
        assert!(u.contains("scope=account_info.read+files.content.read"));
        assert!(u.contains("code_challenge_method=S256"));
        assert!(u.contains("force_reapprove=true"));
    }
}
