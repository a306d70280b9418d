//! Dropbox webhook helpers: the signature check (hex HMAC-SHA256 of the raw body keyed with the
//! app secret, compared in constant time) and the notification body.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// True when `signature_hex` (the `X-Dropbox-Signature` header) signs `body` with `app_secret`.
pub fn verify_signature(app_secret: &str, body: &[u8], signature_hex: &str) -> bool {
    let Ok(given) = hex::decode(signature_hex.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    expected.as_slice().ct_eq(&given).into()
}

/// The account ids named by a webhook notification (`list_folder.accounts`).
#[derive(Debug, serde::Deserialize)]
pub struct Notification {
    #[serde(default)]
    pub list_folder: Option<ListFolderAccounts>,
}

#[derive(Debug, serde::Deserialize)]
pub struct ListFolderAccounts {
    #[serde(default)]
    pub accounts: Vec<String>,
}

impl Notification {
    pub fn accounts(&self) -> &[String] {
        self.list_folder.as_ref().map_or(&[], |l| &l.accounts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_round_trip() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(b"{\"list_folder\":{\"accounts\":[\"dbid:x\"]}}");
        let sig = hex::encode(mac.finalize().into_bytes());
        let body = b"{\"list_folder\":{\"accounts\":[\"dbid:x\"]}}";
        assert!(verify_signature("s3cret", body, &sig));
        assert!(!verify_signature("other", body, &sig));
        assert!(!verify_signature("s3cret", b"{}", &sig));
        assert!(!verify_signature("s3cret", body, "zz"));
        let n: Notification = serde_json::from_slice(body).unwrap();
        assert_eq!(n.accounts(), ["dbid:x"]);
    }
}
