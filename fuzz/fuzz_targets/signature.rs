//! Form bodies and `X-Twilio-Signature`: parsing any body never panics, and validation accepts
//! the signature computed for a request and rejects it once any one of its bits is flipped.

#![no_main]

use arbitrary::Arbitrary;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lambda_http::http::HeaderValue;
use lambda_http::http::header::CONTENT_TYPE;
use lambda_http::{Body, Request};
use libfuzzer_sys::fuzz_target;
use shared::http;
use shared::twilio::signature;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    token: &'a str,
    url: &'a str,
    /// Which bit of the 20-byte HMAC to flip.
    bit: u8,
    /// Sent as `application/json` instead of a form.
    json: bool,
    /// Used both as the raw request body and as the source of the signed parameters.
    body: &'a [u8],
    /// Another signature header, as a forger would send it.
    forged: &'a str,
}

fn request(body: &[u8], json: bool) -> Request {
    let mut req = Request::new(Body::from(body.to_vec()));
    let content_type = if json { "application/json" } else { "application/x-www-form-urlencoded" };
    req.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    req
}

fuzz_target!(|input: Input| {
    let req = request(input.body, input.json);
    // Either answer is fine for an arbitrary body; the point is that it is an answer.
    let _ = http::fields(&req);
    let params: Vec<(String, String)> = http::form_params(&request(input.body, false))
        .iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();

    // Like Twilio's `RequestValidator` (through `urlparse`), validation lower-cases the scheme, so
    // a signature over `HTTPS://` never passes; the URLs Warmline checks start `https://`.
    let url = match input.url.split_once("://") {
        Some((scheme, rest)) => format!("{}://{rest}", scheme.to_ascii_lowercase()),
        None => input.url.to_owned(),
    };
    let signed = signature::compute(input.token, &url, &params);
    assert!(signature::is_valid(input.token, &url, &params, &signed), "{input:?}");

    // Twilio sorts the parameters before signing, so their order in the body cannot matter.
    let mut reordered = params.clone();
    reordered.reverse();
    assert_eq!(signature::compute(input.token, &url, &reordered), signed, "{input:?}");

    let mut mac = STANDARD.decode(&signed).unwrap();
    assert_eq!(mac.len(), 20, "HMAC-SHA1 is 20 bytes: {signed:?}");
    let bit = usize::from(input.bit) % (8 * mac.len());
    mac[bit / 8] ^= 1 << (bit % 8);
    let flipped = STANDARD.encode(&mac);
    assert!(!signature::is_valid(input.token, &url, &params, &flipped), "bit {bit} flipped: {input:?}");

    // Whatever a forger sends as the header, the answer is a bool, not a panic.
    let _ = signature::is_valid(input.token, input.url, &params, input.forged);
    let _ = signature::is_valid_json(input.token, input.url, input.body, input.forged);
});
