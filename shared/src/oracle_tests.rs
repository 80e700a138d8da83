//! Independent checks: the official `twilio` Python package judges our signatures, tokens and TwiML.
//!
//! The package is the reference Twilio ships, so agreeing with it is agreeing with Twilio. Each
//! test hands JSON to a Python snippet and gets JSON back; the snippets decide, Rust asserts. The
//! venv is required: a missing oracle fails these tests rather than skipping them.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::App;
use crate::app::{Ports, SystemClock};
use crate::domain::{AgentId, Identity};
use crate::handlers::{conference_connect_client, conference_events, conference_wait};
use crate::store::memory::{MemoryCallStore, MemoryTicketStore};
use crate::test_support::run_python;
use crate::testkit::{
    BASE, NUMBER, TestApp, body_text, borrowed, conference_report, config_with, inbound_call_params, placed_sid, sid,
    signed_webhook, webhook_with_signature,
};
use crate::twilio::access_token::TokenRequest;
use crate::twilio::{TwilioRestClient, signature};
use crate::twiml::{Conference, Dial, DialNoun, Method, Verb, VoiceResponse};

/// Sends `input` to a Python snippet and reads its answer.
fn ask_oracle<T: DeserializeOwned>(script: &str, input: &impl serde::Serialize) -> T {
    let input = serde_json::to_string(input).unwrap();
    let output = run_python(script, &input);
    serde_json::from_str(&output).unwrap_or_else(|err| panic!("oracle answered {output:?}: {err}"))
}

fn owned(params: &[(&str, &str)]) -> Vec<(String, String)> {
    params.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
}

// ---------------------------------------------------------------------------------------------
// X-Twilio-Signature

/// Random webhooks, each signed by `RequestValidator` over several spellings of its URL's port,
/// and `validate()`'s verdict for every (signed URL, requested URL) pair.
const SIGNATURE_CASES: &str = r#"
import json, random, sys
from twilio.request_validator import RequestValidator

class MultiDict(dict):
    # RequestValidator reads repeated names through getall(), as with Flask's MultiDict; a plain
    # dict of lists would reach set() as an unhashable list.
    def getall(self, name):
        return self[name]

request = json.load(sys.stdin)
rng = random.Random(request["seed"])
DEFAULT_PORT = {"http": 80, "https": 443}
HOSTS = ["abc123.execute-api.us-east-1.amazonaws.com", "support.example.com", "localhost", "127.0.0.1"]
SEGMENTS = ["conference", "connect", "CA0123abcd", "a%20b", "x+y", "user@host", "a:b", "it's", "%2F"]
QUERY_PARTS = ["foo=1", "foo=2", "foo=", "bar=x+y", "bar", "a%20b=c:d", "e@f='g'", "FOO=1"]
NAMES = ["CallSid", "Caller", "Digits", "From", "To", "Sid", "SidAccount", "", "a b", "x'y",
         "@:", "é", "日本", "😀", "！"]
PIECES = list("aZ09") + ["'", "@", ":", "+", "%20", "&", "=", " ", "\n", "é", "日本", "😀", "！"]

def text():
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 6)))

def token():
    if rng.random() < 0.1:
        return text()
    return "".join(rng.choice("0123456789abcdef") for _ in range(32))

def url(scheme, host, port, rest):
    return f"{scheme}://{host}{'' if port is None else f':{port}'}{rest}"

def case():
    scheme = rng.choice(["http", "https"])
    other_scheme = "https" if scheme == "http" else "http"
    host = "".join(c.upper() if rng.random() < 0.5 else c for c in rng.choice(HOSTS))
    rest = "".join("/" + rng.choice(SEGMENTS) for _ in range(rng.randint(0, 4)))
    if rng.random() < 0.6:
        rest += "?" + "&".join(rng.choice(QUERY_PARTS) for _ in range(rng.randint(1, 4)))
    port = rng.choice([None, None, DEFAULT_PORT[scheme], DEFAULT_PORT[other_scheme],
                       rng.randint(1, 65535)])

    params = [(rng.choice(NAMES), text()) for _ in range(rng.randint(0, 8))]
    if params and rng.random() < 0.3:
        params.append(rng.choice(params))
    rng.shuffle(params)
    multidict = MultiDict()
    for name, value in params:
        multidict.setdefault(name, []).append(value)

    urls = [url(scheme, host, port, rest)]
    for variant in (None, DEFAULT_PORT[scheme], rng.randint(1024, 65535)):
        candidate = url(scheme, host, variant, rest)
        if candidate not in urls:
            urls.append(candidate)

    secret = token()
    validator = RequestValidator(secret)
    signatures = [validator.compute_signature(u, multidict) for u in urls]
    accepted = [[validator.validate(seen, multidict, signed) for seen in urls]
                for signed in signatures]
    position = rng.randrange(len(signatures[0]) - 1)
    replacement = rng.choice([c for c in "ABCXYZabcxyz0189+/" if c != signatures[0][position]])
    tampered = signatures[0][:position] + replacement + signatures[0][position + 1:]
    return {
        "token": secret,
        "params": params,
        "urls": urls,
        "signatures": signatures,
        "accepted": accepted,
        "tampered": tampered,
        "tampered_accepted": validator.validate(urls[0], multidict, tampered),
    }

print(json.dumps([case() for _ in range(request["count"])]))
"#;

#[derive(Debug, Deserialize)]
struct SignatureCase {
    token: String,
    params: Vec<(String, String)>,
    /// The URL as generated, then the same without a port, with the default port and with
    /// another port, when those differ from it.
    urls: Vec<String>,
    /// Python's signature over each of `urls`.
    signatures: Vec<String>,
    /// `accepted[s][r]`: does `validate()` accept a request to `urls[r]` signed over `urls[s]`?
    accepted: Vec<Vec<bool>>,
    tampered: String,
    tampered_accepted: bool,
}

#[test]
fn oracle_signatures_agree_with_request_validator() {
    const SEED: u64 = 20_260_415;
    const COUNT: usize = 600;
    let cases: Vec<SignatureCase> = ask_oracle(SIGNATURE_CASES, &json!({"seed": SEED, "count": COUNT}));
    assert_eq!(cases.len(), COUNT);

    let mut tally = [0_usize; 2];
    for (i, case) in cases.iter().enumerate() {
        let context = || format!("case {i} of {COUNT} (seed {SEED}): {case:#?}");
        for (url, expected) in case.urls.iter().zip(&case.signatures) {
            assert_eq!(
                signature::compute(&case.token, url, &case.params),
                *expected,
                "signature over {url:?} in {}",
                context()
            );
        }
        for (signed, verdicts) in case.signatures.iter().zip(&case.accepted) {
            for (requested, &accepted) in case.urls.iter().zip(verdicts) {
                assert_eq!(
                    signature::is_valid(&case.token, requested, &case.params, signed),
                    accepted,
                    "{signed:?} for a request to {requested:?} in {}",
                    context()
                );
                tally[usize::from(accepted)] += 1;
            }
        }
        assert!(!case.tampered_accepted, "Python accepted a tampered signature in {}", context());
        assert!(
            !signature::is_valid(&case.token, &case.urls[0], &case.params, &case.tampered),
            "accepted a tampered signature in {}",
            context()
        );
    }
    // Guards the generator: agreeing proves little unless both verdicts are common.
    let [rejected, accepted] = tally;
    assert!(rejected > COUNT && accepted > COUNT, "{accepted} accepted and {rejected} rejected over {COUNT} cases");
}

/// `RequestValidator`'s signature for each request and its verdict on the signature the request
/// carries: one process for every case, because starting Python costs more than a thousand cases.
const SIGNATURE_JUDGE: &str = r#"
import json, sys
from twilio.request_validator import RequestValidator

class MultiDict(dict):
    def getall(self, name):
        return self[name]

validators = {}
verdicts = []
for token, url, params, signature in json.load(sys.stdin):
    validator = validators.get(token) or validators.setdefault(token, RequestValidator(token))
    multidict = MultiDict()
    for name, value in params:
        multidict.setdefault(name, []).append(value)
    verdicts.append([validator.compute_signature(url, multidict), validator.validate(url, multidict, signature)])
print(json.dumps(verdicts))
"#;

/// SplitMix64: the same seed gives the same cases on every machine, so a failure can be replayed
/// from the seed it prints.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn port(&mut self) -> String {
        (1 + self.next() % 65_535).to_string()
    }

    fn text(&mut self, pieces: &[&str], max: usize) -> String {
        (0..self.below(max + 1)).map(|_| self.pick(pieces)).collect()
    }
}

/// A request URL in parts, so that the signer can get it subtly wrong.
#[derive(Clone)]
struct UrlParts {
    scheme: &'static str,
    user_info: &'static str,
    host: String,
    port: Option<String>,
    rest: String,
}

impl UrlParts {
    fn to_url(&self) -> String {
        let port = self.port.as_ref().map(|p| format!(":{p}")).unwrap_or_default();
        format!("{}://{}{}{port}{}", self.scheme, self.user_info, self.host, self.rest)
    }
}

/// How the request's signature relates to the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signer {
    /// Signed over exactly this URL and these parameters.
    Genuine,
    /// Signed over the same URL with another port, or none: only some of these are accepted.
    OtherPort,
    /// A genuine signature with one character changed.
    Tampered,
    /// Cut short, extended, empty or in the wrong case.
    Mangled,
    /// Signed over other parameters: a value changed, one added or one left out.
    OtherParams,
    OtherToken,
    /// Signed over the URL with its host in another case, the other scheme or another query.
    OtherUrl,
}

const SIGNERS: [Signer; 7] = [
    Signer::Genuine,
    Signer::OtherPort,
    Signer::Tampered,
    Signer::Mangled,
    Signer::OtherParams,
    Signer::OtherToken,
    Signer::OtherUrl,
];

struct GeneratedCase {
    signer: Signer,
    token: String,
    url: String,
    params: Vec<(String, String)>,
    signature: String,
}

fn generate_signature_case(rng: &mut Rng) -> GeneratedCase {
    const HOSTS: &[&str] = &[
        "abc123.execute-api.us-east-1.amazonaws.com",
        "support.example.com",
        "localhost",
        "127.0.0.1",
        "bücher.example",
    ];
    const USER_INFO: &[&str] = &["", "", "", "", "user@", "user:pass@", "us%40er:p%3Ass@", "agent:@"];
    const SEGMENTS: &[&str] =
        &["conference", "connect", "CA0123abcd", "a%20b", "x+y", "user@host", "a:b", "it's", "%2F", "é", "日本", ""];
    const QUERY: &[&str] = &[
        "foo=1",
        "foo=2",
        "foo=",
        "bar=x+y",
        "bar",
        "a%20b=c:d",
        "e@f='g'",
        "FOO=1",
        "q=日本",
        "k=v%2Bw",
        "=",
        "x=it's",
    ];
    const NAMES: &[&str] = &[
        "CallSid",
        "Caller",
        "Digits",
        "From",
        "To",
        "Sid",
        "SidAccount",
        "",
        "a b",
        "x'y",
        "@:",
        "é",
        "日本",
        "😀",
        "！",
    ];
    const PIECES: &[&str] =
        &["a", "Z", "0", "9", "'", "@", ":", "+", "%20", "&", "=", " ", "\n", "é", "日本", "😀", "！", "+1555"];
    const BASE64: &[&str] = &["A", "B", "Z", "a", "z", "0", "9", "+", "/"];

    // `urlparse` lower-cases the scheme, so a signature over `HTTPS://` never passes.
    let scheme = rng.pick(&["https", "https", "https", "http", "http", "HTTPS", "Http"]);
    let default_port = |scheme: &str| if scheme.eq_ignore_ascii_case("https") { "443" } else { "80" };
    let other_default = if default_port(scheme) == "443" { "80" } else { "443" };
    // Port 0, or one that is not a number, makes `RequestValidator` raise; Twilio sends neither.
    let port = match rng.below(8) {
        0..=2 => None,
        3 => Some(default_port(scheme).to_owned()),
        4 => Some(other_default.to_owned()),
        5 => Some(rng.pick(&["8080", "08080", "9000", ""]).to_owned()),
        _ => Some(rng.port()),
    };
    let host: String =
        rng.pick(HOSTS).chars().map(|c| if rng.chance(50) { c.to_ascii_uppercase() } else { c }).collect();
    let mut rest: String = (0..rng.below(5)).map(|_| format!("/{}", rng.pick(SEGMENTS))).collect();
    // Never an empty query: `urlparse` drops a bare `?`, which Warmline's URLs never end with.
    if rng.chance(60) {
        let parts: Vec<&str> = (0..1 + rng.below(4)).map(|_| rng.pick(QUERY)).collect();
        rest.push('?');
        rest.push_str(&parts.join("&"));
    }
    let parts = UrlParts { scheme, user_info: rng.pick(USER_INFO), host, port, rest };

    let mut params: Vec<(String, String)> =
        (0..rng.below(9)).map(|_| (rng.pick(NAMES).to_owned(), rng.text(PIECES, 6))).collect();
    if !params.is_empty() && rng.chance(30) {
        let repeated = params[rng.below(params.len())].clone();
        let value = if rng.chance(50) { repeated.1 } else { rng.text(PIECES, 3) };
        params.push((repeated.0, value));
    }
    let token = if rng.chance(90) { rng.text(&["0", "3", "7", "9", "a", "c", "f"], 32) } else { rng.text(PIECES, 8) };

    let url = parts.to_url();
    let genuine = signature::compute(&token, &url, &params);
    // Mostly signatures that should pass, so that both verdicts are common.
    let signer = match rng.below(10) {
        0..=2 => Signer::Genuine,
        3..=4 => Signer::OtherPort,
        n => SIGNERS[n - 3],
    };
    let signature = match signer {
        Signer::Genuine => genuine,
        Signer::OtherPort => {
            let port = match rng.below(4) {
                0 => None,
                1 => Some(default_port(scheme).to_owned()),
                2 => Some(other_default.to_owned()),
                _ => Some(rng.port()),
            };
            signature::compute(&token, &UrlParts { port, ..parts.clone() }.to_url(), &params)
        }
        Signer::Tampered => {
            // The last character is padding, the only one that cannot change.
            let at = rng.below(genuine.len() - 1);
            let others: Vec<&str> = BASE64.iter().copied().filter(|c| *c != &genuine[at..=at]).collect();
            format!("{}{}{}", &genuine[..at], rng.pick(&others), &genuine[at + 1..])
        }
        Signer::Mangled => match rng.below(4) {
            0 => String::new(),
            1 => genuine[..rng.below(genuine.len())].to_owned(),
            2 => format!("{genuine}{}", rng.pick(BASE64)),
            _ => genuine.to_ascii_lowercase(),
        },
        Signer::OtherParams => {
            let mut other = params.clone();
            match rng.below(3) {
                0 if !other.is_empty() => {
                    let at = rng.below(other.len());
                    other[at].1.push_str(rng.pick(PIECES));
                }
                1 if !other.is_empty() => {
                    other.remove(rng.below(other.len()));
                }
                _ => other.push((rng.pick(NAMES).to_owned(), rng.text(PIECES, 3))),
            }
            signature::compute(&token, &url, &other)
        }
        Signer::OtherToken => signature::compute(&format!("{token}{}", rng.pick(PIECES)), &url, &params),
        Signer::OtherUrl => {
            let mut other = parts.clone();
            match rng.below(3) {
                0 => other.host = other.host.to_ascii_lowercase(),
                1 => other.scheme = if default_port(scheme) == "443" { "http" } else { "https" },
                _ => other.rest.push_str(if other.rest.contains('?') { "&foo=1" } else { "?foo=1" }),
            }
            signature::compute(&token, &other.to_url(), &params)
        }
    };
    GeneratedCase { signer, token, url, params, signature }
}

#[test]
fn oracle_100k_generated_signatures_agree_with_request_validator() {
    const COUNT: usize = 100_000;
    let seed = std::env::var("WARMLINE_SIGNATURE_SEED").map_or(0x5EED_7117_1110, |s| s.parse().unwrap());
    let mut rng = Rng(seed);
    let cases: Vec<GeneratedCase> = (0..COUNT).map(|_| generate_signature_case(&mut rng)).collect();
    let input: Vec<Value> = cases.iter().map(|c| json!([c.token, c.url, c.params, c.signature])).collect();
    let verdicts: Vec<(String, bool)> = ask_oracle(SIGNATURE_JUDGE, &input);
    assert_eq!(verdicts.len(), COUNT);

    let mut disagreements = Vec::new();
    // tally[signer][accepted]
    let mut tally = [[0_usize; 2]; SIGNERS.len()];
    for (i, (case, (theirs, accepted))) in cases.iter().zip(&verdicts).enumerate() {
        let ours = signature::compute(&case.token, &case.url, &case.params);
        let we_accept = signature::is_valid(&case.token, &case.url, &case.params, &case.signature);
        if ours != *theirs || we_accept != *accepted {
            disagreements.push(format!(
                "case {i}: {:?} signature {:?} for {:?} with token {:?} and params {:?}: we compute {ours:?} and \
                 {}, RequestValidator computes {theirs:?} and {}",
                case.signer,
                case.signature,
                case.url,
                case.token,
                case.params,
                if we_accept { "accept" } else { "reject" },
                if *accepted { "accepts" } else { "rejects" },
            ));
        }
        tally[SIGNERS.iter().position(|s| *s == case.signer).unwrap()][usize::from(*accepted)] += 1;
    }
    assert!(
        disagreements.is_empty(),
        "{} of {COUNT} cases disagree with RequestValidator (seed {seed}, replay with WARMLINE_SIGNATURE_SEED={seed}); \
         the first ones:\n{}",
        disagreements.len(),
        disagreements[..disagreements.len().min(10)].join("\n")
    );

    // Guards the generator: agreement proves little unless every kind of case is common and
    // both verdicts are.
    let summary = format!("{:?}", SIGNERS.iter().zip(&tally).collect::<Vec<_>>());
    for (signer, [rejected, accepted]) in SIGNERS.iter().zip(tally) {
        assert!(rejected + accepted > COUNT / 20, "too few {signer:?} cases: {summary}");
        if *signer == Signer::OtherPort {
            assert!(accepted > 0 && rejected > 0, "{summary}");
        }
    }
    let accepted: usize = tally.iter().map(|[_, accepted]| accepted).sum();
    assert!((COUNT / 5..COUNT * 4 / 5).contains(&accepted), "{accepted} of {COUNT} accepted: {summary}");
    let refused_genuine = cases
        .iter()
        .zip(&verdicts)
        .filter(|(case, (_, accepted))| case.signer == Signer::Genuine && case.url.starts_with("http") && !accepted)
        .count();
    assert_eq!(refused_genuine, 0, "RequestValidator refused genuine signatures over lower-case URLs");
}

// ---------------------------------------------------------------------------------------------
// Access Tokens

/// Verifies each token with PyJWT and compares it with the one `AccessToken` mints for the same
/// grant at the same instant.
const TOKEN_JUDGE: &str = r#"
import json, sys
from unittest.mock import patch
import jwt
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant

HEADER = {"alg": "HS256", "cty": "twilio-fpa;v=1", "typ": "JWT"}
# The tokens are minted at fixed instants, long expired: judge signature and claims, not the clock.
DECODE = {"algorithms": ["HS256"], "options": {"verify_exp": False, "verify_nbf": False}}

def reference(case):
    with patch("time.time", return_value=case["issued_at"]):
        token = AccessToken(case["account_sid"], case["api_key"], case["secret"],
                            identity=case["identity"], ttl=case["ttl"])
        token.add_grant(VoiceGrant(incoming_allow=case["agent"],
                                   outgoing_application_sid=case["app_sid"],
                                   outgoing_application_params=case["params"]))
        return token.to_jwt()

def judge(case):
    try:
        claims = jwt.decode(case["token"], case["secret"], **DECODE)
    except jwt.InvalidTokenError as err:
        return {"verdict": f"PyJWT rejects it: {err!r}"}
    header = jwt.get_unverified_header(case["token"])
    if header != HEADER:
        return {"verdict": f"header {header} is not {HEADER}"}
    theirs = reference(case)
    expected = jwt.decode(theirs, case["secret"], **DECODE)
    if claims != expected:
        return {"verdict": f"claims {claims} are not twilio's {expected}"}
    return {"verdict": "ok", "token": theirs, "deterministic": theirs == reference(case)}

print(json.dumps([judge(case) for case in json.load(sys.stdin)]))
"#;

#[derive(Debug, Deserialize)]
struct TokenVerdict {
    verdict: String,
    /// Twilio's token for the same grant, and whether minting it again gives the same bytes.
    token: Option<String>,
    deterministic: Option<bool>,
}

#[tokio::test]
async fn oracle_access_tokens_match_twilios_access_token() {
    let tokens = TestApp::new().app.token_signer().await.unwrap();
    let agent = |id: &str| Identity::Agent(AgentId::parse(id).unwrap());
    let params = |value: Value| value.as_object().cloned();
    let cases = [
        (agent("agent1"), 3600, params(json!({"ticket": "T-1"}))),
        (agent("agent2"), 1, None),
        (agent("agent1"), 3600, params(json!({}))),
        (agent("agent1"), 86_400, None),
        (Identity::parse("customer_0a1b2c3d").unwrap(), 600, None),
        (
            Identity::new_customer().unwrap(),
            3600,
            params(json!({"phoneNumber": "+15551234567", "n": 1.5, "nested": {"a": [1, true, null]}})),
        ),
        (agent("agent2"), 900, params(json!({"note": "é 日本 😀 <&>\"'"}))),
    ];

    let mut minted = Vec::new();
    let mut requests = Vec::new();
    for (n, (identity, ttl, outgoing_params)) in cases.iter().enumerate() {
        let request = TokenRequest {
            identity,
            issued_at: 1_700_000_000 + 7919 * n as u64,
            ttl_seconds: *ttl,
            outgoing_params: outgoing_params.clone(),
        };
        let token = tokens.mint(&request).unwrap();
        assert_eq!(tokens.mint(&request).unwrap(), token, "minting is deterministic");
        requests.push(json!({
            "token": token,
            "secret": tokens.api_secret.expose(),
            "account_sid": tokens.account_sid,
            "api_key": tokens.api_key,
            "app_sid": tokens.twiml_app_sid,
            "identity": identity.as_str(),
            "agent": matches!(identity, Identity::Agent(_)),
            "issued_at": request.issued_at,
            "ttl": ttl,
            "params": outgoing_params,
        }));
        minted.push(token);
    }

    let verdicts: Vec<TokenVerdict> = ask_oracle(TOKEN_JUDGE, &requests);
    assert_eq!(verdicts.len(), cases.len());
    for ((verdict, ours), request) in verdicts.iter().zip(&minted).zip(&requests) {
        assert_eq!(verdict.verdict, "ok", "{request}");
        // Python's json escapes non-ASCII as \uXXXX where serde_json writes UTF-8: the same
        // claims then differ in bytes. Otherwise both sides are deterministic and serialise in
        // the same order, so the tokens must be identical.
        if request["params"].to_string().is_ascii() {
            assert_eq!(verdict.deterministic, Some(true), "{request}");
            assert_eq!(verdict.token.as_ref(), Some(ours), "{request}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// TwiML

/// Builds each document's equivalent with `VoiceResponse` and compares it with ours as parsed
/// XML; ours must also be well-formed for a strict parser.
const TWIML_JUDGE: &str = r#"
import json, re, sys
import xml.etree.ElementTree as ET
from twilio.twiml.voice_response import VoiceResponse

# XML 1.0's Char production. The library writes other characters as they are, making documents
# no parser accepts (ours drop them), so the oracle is only given what a document can hold.
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

def legal(value):
    if isinstance(value, str):
        return NOT_XML.sub("", value)
    if isinstance(value, dict):
        return {key: legal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [legal(item) for item in value]
    return value

def add(parent, node):
    args = [node["value"]] if "value" in node else []
    element = getattr(parent, node["verb"])(*args, **node.get("attrs", {}))
    for child in node.get("nouns", []):
        add(element, child)

def build(verbs):
    response = VoiceResponse()
    for verb in verbs:
        add(response, legal(verb))
    return response.to_xml()

def difference(ours, theirs, where=""):
    where = f"{where}/{ours.tag}"
    for aspect in ("tag", "attrib", "text", "tail"):
        a, b = getattr(ours, aspect), getattr(theirs, aspect)
        if aspect in ("text", "tail"):
            a, b = a or "", b or ""
        if a != b:
            return f"{where}: {aspect} {a!r} != twilio's {b!r}"
    if len(ours) != len(theirs):
        return f"{where}: children {[c.tag for c in ours]} != twilio's {[c.tag for c in theirs]}"
    for a, b in zip(ours, theirs):
        found = difference(a, b, where)
        if found:
            return found
    return None

def judge(document):
    try:
        ours = ET.fromstring(document["xml"].encode("utf-8"))
    except ET.ParseError as err:
        return f"not well-formed: {err}"
    theirs = build(document["verbs"])
    found = difference(ours, ET.fromstring(theirs.encode("utf-8")))
    return f"{found}\n ours:    {document['xml']!r}\n twilio's: {theirs!r}" if found else "ok"

print(json.dumps({d["name"]: judge(d) for d in json.load(sys.stdin)}))
"#;

/// Everything TwiML must escape or drop: markup, both quotes, a CDATA end, C0 controls and a
/// non-character, with whitespace, DEL and non-ASCII that must survive. A raw CR in element text
/// reaches any parser as LF, and the library leaves it raw, so CR is only tested in attributes,
/// where both sides write it as a character reference.
const HOSTILE: &str = "<Say>&amp; \"double\" 'single' ]]> \u{0}\u{1}\u{8}\u{B}\u{C}\u{1F}\u{FFFE}\u{FFFF} tab\there\nnext \u{7F} é 日本 😀";

/// A document Warmline serves, and how the Python library would write it.
struct Document {
    name: &'static str,
    xml: String,
    verbs: Value,
}

fn conference_verbs(name: &str, attrs: Value) -> Value {
    json!({"verb": "dial", "nouns": [{"verb": "conference", "value": name, "attrs": attrs}]})
}

async fn served_documents() -> Vec<Document> {
    let hold_music = "https://cdn.example.com/hold.mp3?a=1&b='2'";
    let t = TestApp::build(config_with(&[("HOLD_MUSIC_URL", hold_music)]), MemoryCallStore::new(), Default::default());
    let customer = inbound_call_params(&sid(1));
    let client =
        conference_connect_client::handle(&t.app, signed_webhook("/conference/connect/client", &borrowed(&customer)))
            .await
            .unwrap();
    let wait = conference_wait::handle(&t.app, signed_webhook("/conference/wait", &borrowed(&customer))).await.unwrap();
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    let first = t.agent_answers(&sid(1), "agent1", &placed_sid(0)).await;
    // No customer ever called as sid(2): the call is gone.
    let ended = t.agent_answers(&sid(2), "agent1", &sid(0xa9e48)).await;
    // agent1 leaves the customer alone: the TwiML that replaces the customer's call's.
    let left = conference_report(&sid(1), "participant-leave", Some(&placed_sid(0)));
    let status_report = conference_events::handle(&t.app, left).await.unwrap();
    let back_in_line = match t.dialer.updated().as_slice() {
        [(customer, crate::twilio::CallUpdate::Twiml(twiml))] if customer.as_str() == sid(1) => twiml.clone(),
        other => panic!("expected the customer's call to get new TwiML, got {other:?}"),
    };
    for response in [&client, &wait, &status_report] {
        assert_eq!(response.status(), 200, "{}", body_text(response));
    }
    let customer_conference = conference_verbs(
        &sid(1),
        json!({
            "start_conference_on_enter": false,
            "end_conference_on_exit": true,
            "wait_url": format!("{BASE}/conference/wait"),
            "wait_method": "POST",
            "status_callback": format!("{BASE}/conference/{}/events", sid(1)),
            "status_callback_event": "join leave end",
            "status_callback_method": "POST",
        }),
    );

    vec![
        Document {
            name: "customer joins the conference",
            xml: body_text(&client),
            verbs: json!([customer_conference.clone()]),
        },
        Document {
            name: "customer waits",
            xml: body_text(&wait),
            verbs: json!([
                {"verb": "say", "value": crate::call_flow::HOLD_MESSAGE},
                {"verb": "play", "value": hold_music, "attrs": {"loop": 1}},
                {"verb": "redirect", "value": format!("{BASE}/conference/wait?held=1"), "attrs": {"method": "POST"}},
            ]),
        },
        Document {
            name: "an agent joins",
            xml: first,
            verbs: json!([conference_verbs(
                &sid(1),
                json!({"start_conference_on_enter": true, "end_conference_on_exit": false})
            )]),
        },
        Document {
            name: "agent answers after the customer left",
            xml: ended,
            verbs: json!([
                {"verb": "say", "value": crate::call_flow::CALL_ENDED},
                {"verb": "hangup"},
            ]),
        },
        Document { name: "a status callback is acknowledged", xml: body_text(&status_report), verbs: json!([]) },
        Document {
            name: "a customer left alone goes back into line",
            xml: back_in_line,
            verbs: json!([{"verb": "say", "value": crate::call_flow::BACK_IN_LINE}, customer_conference]),
        },
    ]
}

fn hostile_document() -> Document {
    let attribute = format!("{HOSTILE}\r\n\t");
    let response = VoiceResponse::new()
        .say(HOSTILE)
        .play(HOSTILE, Some(3))
        .verb(Verb::Pause { length_seconds: Some(2) })
        .verb(Verb::Redirect { url: HOSTILE.to_owned(), method: Some(Method::Get) })
        .dial(Dial {
            action: None,
            caller_id: Some(attribute.clone()),
            timeout_seconds: Some(20),
            noun: DialNoun::Number(HOSTILE.to_owned()),
        })
        .dial(Dial { action: None, caller_id: None, timeout_seconds: None, noun: DialNoun::Client(HOSTILE.to_owned()) })
        .dial(Dial {
            action: None,
            caller_id: None,
            timeout_seconds: None,
            noun: DialNoun::Conference(Conference {
                start_conference_on_enter: Some(true),
                end_conference_on_exit: Some(false),
                wait_url: Some(attribute.clone()),
                wait_method: Some(Method::Get),
                status_callback: Some(attribute.clone()),
                status_callback_event: Some(attribute.clone()),
                status_callback_method: Some(Method::Get),
                ..Conference::named(HOSTILE)
            }),
        })
        .hangup();
    Document {
        name: "hostile text through every verb",
        xml: response.to_xml(),
        verbs: json!([
            {"verb": "say", "value": HOSTILE},
            {"verb": "play", "value": HOSTILE, "attrs": {"loop": 3}},
            {"verb": "pause", "attrs": {"length": 2}},
            {"verb": "redirect", "value": HOSTILE, "attrs": {"method": "GET"}},
            {"verb": "dial", "attrs": {"caller_id": attribute, "timeout": 20},
             "nouns": [{"verb": "number", "value": HOSTILE}]},
            {"verb": "dial", "nouns": [{"verb": "client", "value": HOSTILE}]},
            conference_verbs(HOSTILE, json!({
                "start_conference_on_enter": true,
                "end_conference_on_exit": false,
                "wait_url": attribute,
                "wait_method": "GET",
                "status_callback": attribute,
                "status_callback_event": attribute,
                "status_callback_method": "GET",
            })),
            {"verb": "hangup"},
        ]),
    }
}

#[tokio::test]
async fn oracle_twiml_matches_voice_response() {
    let mut documents = served_documents().await;
    documents.push(hostile_document());
    let input: Vec<Value> = documents.iter().map(|d| json!({"name": d.name, "xml": d.xml, "verbs": d.verbs})).collect();

    let verdicts: std::collections::BTreeMap<String, String> = ask_oracle(TWIML_JUDGE, &input);
    let failures: Vec<String> = documents
        .iter()
        .filter_map(|d| match verdicts.get(d.name).map(String::as_str) {
            Some("ok") => None,
            other => Some(format!("{}: {}", d.name, other.unwrap_or("no verdict"))),
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} documents differ from twilio's:\n{}",
        failures.len(),
        documents.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Acceptance: a webhook signed by Twilio's library, through the handler, to the REST API

/// `RequestValidator`'s signature for each (url, params) request.
const SIGN: &str = r#"
import json, sys
from twilio.request_validator import RequestValidator

request = json.load(sys.stdin)
validator = RequestValidator(request["token"])
print(json.dumps([validator.compute_signature(url, dict(params))
                  for url, params in request["requests"]]))
"#;

#[tokio::test]
async fn an_oracle_signed_call_is_offered_to_an_agent_through_the_rest_api() {
    const PATH: &str = "/conference/connect/client";
    let server = MockServer::start().await;
    let config = config_with(&[("TWILIO_API_BASE_URL", &server.uri())]);
    let calls_path = format!("/2010-04-01/Accounts/{}/Calls.json", config.twilio.account_sid);
    Mock::given(method("POST"))
        .and(path(&calls_path))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sid": sid(0xa9e47), "status": "queued"})))
        .mount(&server)
        .await;
    let twilio = &config.twilio;
    let dialer = TwilioRestClient::from_config(twilio).unwrap();
    let credentials = format!("{}:{}", twilio.api_key, twilio.api_secret.expose());
    let auth_token = twilio.auth_token.expose().to_owned();
    let agents = Arc::new(crate::store::memory::MemoryAgentStore::new());
    let app = App::new(
        config,
        Ports {
            calls: Arc::new(MemoryCallStore::new()),
            tickets: Arc::new(MemoryTicketStore::new()),
            agents: agents.clone(),
            ledger: Arc::new(crate::store::memory::MemoryLedgerStore::new()),
            dialer: Arc::new(dialer),
            clock: Arc::new(SystemClock),
        },
    );
    let agent1 = AgentId::parse("agent1").unwrap();
    let account = crate::domain::Agent::new(agent1.clone(), "Agent 1", crate::secret::Secret::new("-"), 0);
    crate::store::AgentStore::create_agent(agents.as_ref(), &account).await.unwrap();
    let links = crate::http::Links::new(BASE);
    crate::call_flow::agent_says(&app, &links, &agent1, crate::domain::Availability::Available).await.unwrap();

    // Each attempt is a new call, so a forgery that got through would dial again.
    let genuine = inbound_call_params(&sid(1));
    let elsewhere = inbound_call_params(&sid(2));
    let unsigned = inbound_call_params(&sid(3));
    let signatures: Vec<String> = ask_oracle(
        SIGN,
        &json!({
            "token": auth_token,
            "requests": [
                [format!("{BASE}{PATH}"), genuine],
                [format!("{BASE}/conference/wait"), elsewhere],
            ],
        }),
    );

    let response = conference_connect_client::handle(
        &app,
        webhook_with_signature(PATH, &borrowed(&genuine), Some(&signatures[0])),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        body_text(&response),
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial><Conference startConferenceOnEnter="false" endConferenceOnExit="true" waitUrl="{BASE}/conference/wait" waitMethod="POST" statusCallback="{BASE}/conference/{sid}/events" statusCallbackEvent="join leave end" statusCallbackMethod="POST">{sid}</Conference></Dial></Response>"#,
            sid = sid(1)
        )
    );
    // The agent rings once the caller is in the conference.
    assert_eq!(server.received_requests().await.unwrap().len(), 0, "nothing slow before the caller's TwiML");
    conference_events::handle(&app, conference_report(&sid(1), "participant-join", Some(&sid(1)))).await.unwrap();

    let requests = server.received_requests().await.unwrap();
    let [request] = requests.as_slice() else {
        panic!("expected one request to Twilio, got {requests:#?}");
    };
    assert_eq!((request.method.as_str(), request.url.path()), ("POST", calls_path.as_str()));
    let authorization = request.headers.get("authorization").unwrap().to_str().unwrap();
    let basic = STANDARD.decode(authorization.strip_prefix("Basic ").unwrap()).unwrap();
    assert_eq!(String::from_utf8(basic).unwrap(), credentials);
    let mut form: Vec<(String, String)> = form_urlencoded::parse(&request.body).into_owned().collect();
    form.sort();
    let agent_url = format!("{BASE}/conference/{}/connect/agent1", sid(1));
    let status_url = format!("{BASE}/conference/{}/agents/agent1/status", sid(1));
    // The ring names the customer's call for the agent's browser (a custom parameter).
    let to = format!("client:agent1?conference={}", sid(1));
    let mut expected = owned(&[
        ("To", &to),
        ("From", NUMBER),
        ("Url", &agent_url),
        ("Timeout", "20"),
        ("StatusCallback", &status_url),
        ("StatusCallbackEvent", "completed"),
        ("StatusCallbackMethod", "POST"),
    ]);
    expected.sort();
    assert_eq!(form, expected);

    for (what, request) in [
        ("unsigned", webhook_with_signature(PATH, &borrowed(&unsigned), None)),
        ("signed for another URL", webhook_with_signature(PATH, &borrowed(&elsewhere), Some(&signatures[1]))),
    ] {
        let response = conference_connect_client::handle(&app, request).await.unwrap();
        assert_eq!(response.status(), 403, "{what}");
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 1, "a forged webhook reached Twilio");
}

// ---------------------------------------------------------------------------------------------
// The Participants API

/// What the official library sends for a participant's hold, resume and removal: each request's
/// method, path and form, recorded by an HTTP client that answers every request itself.
const PARTICIPANT_REQUESTS: &str = r#"
import json, sys
from urllib.parse import urlsplit
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.rest import Client

request = json.load(sys.stdin)
sent = []

class Recorder(HttpClient):
    def request(self, method, uri, params=None, data=None, headers=None, auth=None, timeout=None, allow_redirects=False):
        form = sorted([name, "true" if value is True else "false" if value is False else str(value)]
                      for name, value in (data or {}).items())
        sent.append([method, urlsplit(uri).path, form])
        if method == "DELETE":
            return Response(204, "")
        return Response(200, json.dumps({"call_sid": request["call"], "conference_sid": request["conference"]}))

import logging
client = Client(request["key"], request["secret"], request["account"], http_client=Recorder(logging.getLogger("oracle"), False))
participant = client.conferences(request["conference"]).participants(request["call"])
participant.update(hold=True, hold_url=request["hold_url"], hold_method="POST")
participant.update(hold=False)
participant.delete()
print(json.dumps(sent))
"#;

/// A request to Twilio as the oracle reports it: method, path, and the form sorted.
type SentRequest = (String, String, Vec<(String, String)>);

#[tokio::test]
async fn participant_changes_are_the_requests_twilios_library_sends() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200).set_body_json(json!({}))).mount(&server).await;
    Mock::given(method("DELETE")).respond_with(ResponseTemplate::new(204)).mount(&server).await;
    let config = config_with(&[("TWILIO_API_BASE_URL", &server.uri())]);
    let client = TwilioRestClient::from_config(&config.twilio).unwrap();
    let conference = format!("CF{}", "c0".repeat(16));
    let call = crate::domain::CallSid::parse(&sid(7)).unwrap();
    let hold_url = format!("{BASE}/conference/wait?held=1");
    for update in [
        crate::twilio::ParticipantUpdate::Hold { hold_url: hold_url.clone() },
        crate::twilio::ParticipantUpdate::Resume,
        crate::twilio::ParticipantUpdate::Remove,
    ] {
        crate::twilio::Dialer::update_participant(&client, &conference, &call, &update).await.unwrap();
    }
    let ours: Vec<SentRequest> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|request| {
            let mut form: Vec<(String, String)> = form_urlencoded::parse(&request.body).into_owned().collect();
            form.sort();
            (request.method.to_string(), request.url.path().to_owned(), form)
        })
        .collect();
    let theirs: Vec<SentRequest> = ask_oracle(
        PARTICIPANT_REQUESTS,
        &json!({
            "account": config.twilio.account_sid,
            "key": config.twilio.api_key,
            "secret": config.twilio.api_secret.expose(),
            "conference": conference,
            "call": call.as_str(),
            "hold_url": hold_url,
        }),
    );
    assert_eq!(ours, theirs);
    assert_eq!(ours.len(), 3);
}
