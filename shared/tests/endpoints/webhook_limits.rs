//! What every Twilio route refuses before it hashes anything (`http::webhook_within_limits`),
//! and what a signed request must say besides its signature (`pipeline`'s `about_our_calls`).
//! A refusal that comes before the signature check answers the same with a valid signature as
//! with a bogus one: that is how these tests show the order without timing anything.

use crate::prelude::*;
use shared::handlers::{conference_events, conference_wait};
use shared::http::{MAX_BODY_BYTES, MAX_WEBHOOK_PARAMS};

const WAIT: &str = "/conference/wait";
const BOGUS_SIGNATURE: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// `count` distinct names, each with a value that fills the body to about `count * width` bytes.
fn names(count: usize, width: usize) -> Vec<(String, String)> {
    (0..count).map(|n| (format!("a{n}"), "x".repeat(width.saturating_sub(format!("a{n}=&").len())))).collect()
}

fn body_of(params: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish()
}

/// `params` to `path`, signed by Twilio (`None`) or with `signature`.
fn request(path: &str, params: &[(String, String)], signature: Option<&str>) -> Request {
    let params: Vec<(&str, &str)> = params.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
    match signature {
        None => signed_webhook(path, &params),
        Some(signature) => webhook_with_signature(path, &params, Some(signature)),
    }
}

/// A hold-music request of the call `sid(1)` with `fillers` more distinct names, `width` bytes
/// each, as Twilio would sign it (with the `AccountSid` `signed_webhook` adds).
fn hold_music_with(fillers: usize, width: usize) -> Vec<(String, String)> {
    let mut params = vec![("AccountSid".to_owned(), ACCOUNT_SID.to_owned()), ("CallSid".to_owned(), sid(1))];
    params.extend(names(fillers, width));
    params
}

async fn nothing_changed(t: &TestApp) {
    assert_eq!((t.store.conference_ids(), t.dialer.placed(), t.dialer.updated()), (vec![], vec![], vec![]));
    assert_eq!(t.caller(&sid(1)).await, None);
}

#[tokio::test]
async fn a_huge_body_of_distinct_names_gets_413_before_any_hashing() {
    let t = TestApp::new();
    // The reported attack: 308 KB of 40,000 distinct names, and any X-Twilio-Signature.
    let params = names(40_000, 7);
    assert!((300_000..320_000).contains(&body_of(&params).len()), "{}", body_of(&params).len());
    for signature in [Some(BOGUS_SIGNATURE), None] {
        let response = conference_wait::handle(&t.app, request(WAIT, &params, signature)).await.unwrap();
        // Even correctly signed: refused by its size, so nothing was hashed before.
        assert_eq!((response.status().as_u16(), body_text(&response)), (413, "too large".to_owned()), "{signature:?}");
    }
    nothing_changed(&t).await;
}

#[tokio::test]
async fn the_largest_body_allowed_is_checked_and_refused_if_forged() {
    let t = TestApp::new();
    // 1,000 distinct names just under 16 KiB: as much hashing as anyone can make a route do.
    let params = hold_music_with(MAX_WEBHOOK_PARAMS - 2, 16);
    let size = body_of(&params).len();
    assert!((MAX_BODY_BYTES - 512..=MAX_BODY_BYTES).contains(&size), "{size}");
    assert_eq!(params.len(), MAX_WEBHOOK_PARAMS);
    let response = conference_wait::handle(&t.app, request(WAIT, &params, Some(BOGUS_SIGNATURE))).await.unwrap();
    assert_eq!((response.status().as_u16(), body_text(&response)), (403, "forbidden".to_owned()));
    nothing_changed(&t).await;

    // The same body signed by Twilio is served: the limits leave room for anything Twilio sends.
    let response = conference_wait::handle(&t.app, request(WAIT, &params, None)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(body_text(&response).contains("<Play"), "{}", body_text(&response));
}

#[tokio::test]
async fn one_byte_or_one_parameter_over_the_limits_gets_413_even_signed() {
    let t = TestApp::new();
    let mut too_long = hold_music_with(1, 0);
    too_long.push(("Padding".to_owned(), String::new()));
    let padding = MAX_BODY_BYTES + 1 - body_of(&too_long).len();
    too_long[3].1 = "p".repeat(padding);
    assert_eq!(body_of(&too_long).len(), MAX_BODY_BYTES + 1);
    let too_many = hold_music_with(MAX_WEBHOOK_PARAMS - 1, 0);
    assert_eq!(too_many.len(), MAX_WEBHOOK_PARAMS + 1);
    for params in [&too_long, &too_many] {
        for signature in [None, Some(BOGUS_SIGNATURE)] {
            let response = conference_wait::handle(&t.app, request(WAIT, params, signature)).await.unwrap();
            assert_eq!(response.status(), 413, "{} params, {signature:?}", params.len());
        }
    }
    // A status callback's route refuses the same, with the same status.
    let events = format!("/conference/{}/events", sid(1));
    let response = conference_events::handle(&t.app, request(&events, &too_many, None)).await.unwrap();
    assert_eq!((response.status().as_u16(), body_text(&response)), (413, "too large".to_owned()));
    nothing_changed(&t).await;
}

#[tokio::test]
async fn a_signed_request_must_be_about_our_account_and_say_each_thing_once() {
    let t = TestApp::new();
    t.available("agent1").await;
    t.customer_arrives(&sid(1)).await;
    let before = (t.caller(&sid(1)).await, t.dialer.placed(), t.dialer.updated());
    assert_eq!(before.1, [agent_call(&sid(1), "agent1")]);
    let events = format!("/conference/{}/events", sid(1));
    let end = |account: Option<&str>, extra: &[(&str, &str)]| {
        let mut params: Vec<(String, String)> = account
            .map(|account| ("AccountSid".to_owned(), account.to_owned()))
            .into_iter()
            .chain([
                ("ConferenceSid".to_owned(), conference_sid(&sid(1))),
                ("FriendlyName".to_owned(), sid(1)),
                ("StatusCallbackEvent".to_owned(), "conference-end".to_owned()),
                ("SequenceNumber".to_owned(), "3".to_owned()),
            ])
            .collect();
        params.extend(extra.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())));
        let borrowed: Vec<(&str, &str)> = params.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let signature = shared::twilio::signature::compute(AUTH_TOKEN, &format!("{BASE}{events}"), &params);
        webhook_with_signature(&events, &borrowed, Some(&signature))
    };
    for request in [
        end(Some("AC11111111111111111111111111111111"), &[]),
        end(None, &[]),
        end(Some(ACCOUNT_SID), &[("FriendlyName", "CA00000000000000000000000000000099")]),
        end(Some(ACCOUNT_SID), &[("AccountSid", ACCOUNT_SID)]),
    ] {
        let response = conference_events::handle(&t.app, request).await.unwrap();
        assert_eq!((response.status().as_u16(), body_text(&response)), (403, "forbidden".to_owned()));
    }
    assert_eq!((t.caller(&sid(1)).await, t.dialer.placed(), t.dialer.updated()), before);

    // Ours, each name once: the conference ends, and the ring to agent1 with it.
    let response = conference_events::handle(&t.app, end(Some(ACCOUNT_SID), &[])).await.unwrap();
    assert_eq!((response.status().as_u16(), body_text(&response)), (200, EMPTY_TWIML.to_owned()));
    assert_eq!(t.caller(&sid(1)).await, None);
    assert_eq!(t.dialer.updated().len(), 1, "the ring canceled");
}
