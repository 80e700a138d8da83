//! `X-Twilio-Signature`: HMAC-SHA1 over the URL Twilio requested and the sorted form parameters.
//! Port handling follows Twilio's helper libraries, which accept the URL with the default port
//! added or any port removed, because Twilio itself is not consistent about it.
//!
//! Anyone can send a body for us to hash before we know it is Twilio's, so the cost stays
//! O(n log n) in the parameters: they are sorted once, and the string they sign is built once and
//! hashed after each URL variant (`pipeline` caps the body and the parameter count before that).
//! The HMAC is aws-lc's, the library rustls links: its assembly (and the CPU's SHA instructions
//! where there are some, Graviton's among them) hashes in a fraction of a portable version's time.

use std::borrow::Cow;
use std::cell::RefCell;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::secret::Secret;

/// The signature Twilio sends for a form-encoded request to `url` with `params`.
pub fn compute(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    sign(&key(auth_token), url, &signed_params(owned_pairs(params)))
}

fn owned_pairs(params: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    params.iter().map(|(name, value)| (name.as_str(), value.as_str()))
}

/// What Twilio appends to the URL: each name with each of its distinct values, names sorted and
/// each name's values sorted. Sorting the (name, value) pairs as a whole gives exactly that
/// order, and equal pairs side by side are the repeated values to drop.
fn signed_params<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut pairs: Vec<(&str, &str)> = params.into_iter().collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut signed = String::with_capacity(pairs.iter().map(|(name, value)| name.len() + value.len()).sum());
    for (name, value) in pairs {
        signed.push_str(name);
        signed.push_str(value);
    }
    signed
}

fn key(auth_token: &str) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes())
}

thread_local! {
    /// The Auth Token's key, kept: preparing it costs as much as hashing a webhook's parameters,
    /// and the token changes only when it is rotated.
    static KEY: RefCell<Option<(Secret, hmac::Key)>> = const { RefCell::new(None) };
}

/// `check` with the key of `auth_token`, prepared once per token.
fn with_key<T>(auth_token: &str, check: impl FnOnce(&hmac::Key) -> T) -> T {
    KEY.with(|kept| {
        let mut kept = kept.borrow_mut();
        match &*kept {
            Some((token, key)) if token.expose() == auth_token => check(key),
            _ => {
                let key = key(auth_token);
                let result = check(&key);
                *kept = Some((Secret::new(auth_token), key));
                result
            }
        }
    })
}

fn sign(key: &hmac::Key, url: &str, signed_params: &str) -> String {
    let mut mac = hmac::Context::with_key(key);
    mac.update(url.as_bytes());
    mac.update(signed_params.as_bytes());
    STANDARD.encode(mac.sign())
}

/// Checks a form-encoded webhook. `url` is the full URL Twilio requested, query included.
pub fn is_valid(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    is_valid_pairs(auth_token, url, owned_pairs(params), signature)
}

/// `is_valid` over parameters borrowed from wherever they were parsed into.
pub fn is_valid_pairs<'a>(
    auth_token: &str,
    url: &str,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    signature: &str,
) -> bool {
    let signed = signed_params(params);
    with_key(auth_token, |key| {
        (0..2).any(|which| constant_time_eq(&sign(key, &url_variant(url, which), &signed), signature))
    })
}

/// Checks a JSON-bodied webhook: Twilio signs the URL (which carries `bodySHA256`) with no
/// parameters, and the body must hash to that value.
pub fn is_valid_json(auth_token: &str, url: &str, body: &[u8], signature: &str) -> bool {
    let Some(expected_hash) = query_value(url, "bodySHA256") else {
        return false;
    };
    let actual_hash: String = Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect();
    constant_time_eq(&actual_hash, &expected_hash) && is_valid_pairs(auth_token, url, [], signature)
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn query_value(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or_default();
    form_urlencoded::parse(query.as_bytes()).find(|(n, _)| n == name).map(|(_, v)| v.into_owned())
}

/// The URL as given, without its port, and with the scheme's default port; the same variants
/// Twilio's helper libraries try.
#[cfg(test)]
fn url_variants(url: &str) -> [Cow<'_, str>; 2] {
    [url_variant(url, 0), url_variant(url, 1)]
}

/// The first (`which` 0) or second of the URL's variants, made only when it is tried: the
/// first is the URL as given unless it names a port, and is then not copied.
fn url_variant(url: &str, which: usize) -> Cow<'_, str> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Cow::Borrowed(url);
    };
    let netloc_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (netloc, tail) = rest.split_at(netloc_end);
    let lowercase = !scheme.bytes().any(|byte| byte.is_ascii_uppercase());

    let host_part = netloc.rsplit_once('@').map_or(netloc, |(_, host)| host);
    let port = if let Some(bracketed) = host_part.strip_prefix('[') {
        bracketed.split_once(']').and_then(|(_, after)| after.strip_prefix(':'))
    } else {
        host_part.split_once(':').map(|(_, port)| port)
    }
    .filter(|port| !port.is_empty());

    let with_netloc = |netloc: &str, port: Option<&str>| {
        let mut variant = String::with_capacity(url.len() + 4);
        variant.push_str(&scheme.to_ascii_lowercase());
        variant.push_str("://");
        variant.push_str(netloc);
        if let Some(port) = port {
            variant.push(':');
            variant.push_str(port);
        }
        variant.push_str(tail);
        Cow::Owned(variant)
    };
    let as_given = || if lowercase { Cow::Borrowed(url) } else { with_netloc(netloc, None) };
    match (port, which) {
        (Some(_), 0) => with_netloc(netloc.split(':').next().unwrap_or(netloc), None),
        (Some(_), _) => as_given(),
        (None, 0) => as_given(),
        (None, _) => with_netloc(netloc, Some(if scheme.eq_ignore_ascii_case("https") { "443" } else { "80" })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "12345";
    const U: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    fn p() -> Vec<(String, String)> {
        [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn computes_the_reference_signature() {
        assert_eq!(compute(TOKEN, U, &p()), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert!(is_valid(TOKEN, U, &p(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
    }

    #[test]
    fn accepts_a_url_whose_port_twilio_left_out() {
        assert!(is_valid(
            TOKEN,
            "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &p(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn signs_a_url_with_a_port_as_given() {
        let url = "http://mycompany.com:1234/myapp.php?foo=1&bar=2";
        assert_eq!(compute(TOKEN, url, &p()), "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=");
        assert!(is_valid(TOKEN, url, &p(), "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="));
    }

    #[test]
    fn accepts_a_signature_over_the_default_port() {
        assert!(is_valid(TOKEN, U, &p(), "kvajT1Ptam85bY51eRf/AJRuM3w="));
        assert!(is_valid(TOKEN, "http://mycompany.com/myapp.php?foo=1&bar=2", &p(), "0ZXoZLH/DfblKGATFgpif+LLRf4="));
    }

    #[test]
    fn sorts_and_deduplicates_repeated_values() {
        let params: Vec<(String, String)> =
            [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234"), ("Digits", "1234")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        assert_eq!(compute(TOKEN, U, &params), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
    }

    #[test]
    fn validates_json_bodies_by_hash() {
        let url = format!("{U}&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620");
        let body = br#"{"property": "value", "boolean": true}"#;
        assert!(is_valid_json(TOKEN, &url, body, "a9nBmqA0ju/hNViExpshrM61xv4="));
        assert!(!is_valid_json(TOKEN, &url, br#"{"property": "other"}"#, "a9nBmqA0ju/hNViExpshrM61xv4="));
        assert!(!is_valid_json(TOKEN, U, body, "a9nBmqA0ju/hNViExpshrM61xv4="));
    }

    #[test]
    fn host_case_is_part_of_the_signature() {
        let url = "https://MyCompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(compute(TOKEN, url, &p()), "g9IN/x4Cft2g517EjYvEvM/W7LU=");
        assert!(!is_valid(TOKEN, url, &p(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
    }

    #[test]
    fn rejects_tampering() {
        assert!(!is_valid(TOKEN, U, &p(), "RSOYDt4T1cUTdK1PDd93/VVr8B9="));
        assert!(!is_valid(TOKEN, &format!("{U}&somethingUnexpected=true"), &p(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
        assert!(!is_valid(TOKEN, U, &p(), ""));
        assert!(!is_valid("54321", U, &p(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
        let mut changed = p();
        changed[2].1 = "9999".into();
        assert!(!is_valid(TOKEN, U, &changed, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
    }

    #[test]
    fn url_variants_follow_the_helper_libraries() {
        assert_eq!(url_variants("https://h/x?a=1"), ["https://h/x?a=1", "https://h:443/x?a=1"]);
        assert_eq!(url_variants("http://h"), ["http://h", "http://h:80"]);
        assert_eq!(url_variants("http://127.0.0.1:9000/c"), ["http://127.0.0.1/c", "http://127.0.0.1:9000/c"]);
        assert_eq!(url_variants("HTTPS://h:/x"), ["https://h:/x", "https://h::443/x"]);
        assert_eq!(url_variants("https://[::1]:8443/x"), ["https://[/x", "https://[::1]:8443/x"]);
        assert!(matches!(url_variants("https://h/x"), [Cow::Borrowed(_), Cow::Owned(_)]));
        assert!(matches!(url_variants("http://h:1/x"), [Cow::Owned(_), Cow::Borrowed(_)]));
    }
}
