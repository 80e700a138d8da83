#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use lambda_http::http::StatusCode;
use lambda_http::request::LambdaRequest;
use lambda_http::tower::{Service, ServiceExt};
use serde_json::json;

use super::*;
use crate::handlers::conference_wait;
use crate::routes::{self, Route};
use crate::testkit::{self, TestApp};
use crate::twiml::VoiceResponse;

/// A webhook as API Gateway delivers it: a signed form body in base64, cookies apart from the
/// headers, a query string, and the fields Warmline never reads.
fn webhook_event(stage: &str, raw_path: &str) -> serde_json::Value {
    let mut event: serde_json::Value = serde_json::from_str(&testkit::signed_webhook_json(
        "/conference/wait?held=1",
        &[("CallSid", &testkit::sid(1)), ("From", "+15551234567"), ("Caller", "+15551234567")],
    ))
    .unwrap();
    event["cookies"] = json!(["a=1", "__Host-warmline_session=abc.def"]);
    event["headers"]["x-forwarded-proto"] = json!("https");
    event["headers"]["x-forwarded-for"] = json!("192.0.2.1");
    event["queryStringParameters"] = json!({ "held": "1" });
    event["pathParameters"] = json!({});
    event["stageVariables"] = json!(null);
    event["requestContext"]["stage"] = json!(stage);
    event["rawPath"] = json!(raw_path);
    event
}

/// The request `lambda_http` builds from `event`: the oracle.
fn lambda_http_request(event: &serde_json::Value) -> Request {
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

fn ours(event: &serde_json::Value) -> Request {
    serde_path_to_error::deserialize::<_, Event>(&mut serde_json::Deserializer::from_str(&event.to_string()))
        .unwrap()
        .into_request(&Context::default())
        .unwrap()
}

fn assert_same_request(ours: &Request, theirs: &Request) {
    assert_eq!(ours.method(), theirs.method());
    assert_eq!(ours.uri(), theirs.uri());
    assert_eq!(ours.headers(), theirs.headers());
    assert_eq!(ours.body().as_ref(), theirs.body().as_ref());
    assert_eq!(
        matches!(ours.body(), Body::Binary(_)),
        matches!(theirs.body(), Body::Binary(_)),
        "the same kind of body"
    );
    assert_eq!(routes::raw_path(ours), routes::raw_path(theirs));
    let context = |req: &Request| match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => {
            (ctx.domain_name.clone(), ctx.http.source_ip.clone(), ctx.http.method.clone(), ctx.stage.clone())
        }
        other => panic!("not an API Gateway v2 context: {other:?}"),
    };
    assert_eq!(context(ours), context(theirs));
}

#[test]
fn a_webhook_event_becomes_the_request_lambda_http_builds() {
    let event = webhook_event("$default", "/conference/wait");
    let (ours, theirs) = (ours(&event), lambda_http_request(&event));
    assert_same_request(&ours, &theirs);
    assert_eq!(ours.uri().to_string(), format!("{}/conference/wait?held=1", testkit::BASE));
    assert_eq!(ours.headers()["cookie"], "a=1; __Host-warmline_session=abc.def");
    assert!(std::str::from_utf8(ours.body().as_ref()).unwrap().contains(&format!("CallSid={}", testkit::sid(1))));
    assert_eq!(crate::http::source_address(&ours), Some("192.0.2.1".parse().unwrap()));
    assert_eq!(Route::of(&ours).unwrap(), Route::HoldMusic { returning: true });
}

#[test]
fn a_named_stage_goes_before_the_path_as_in_lambda_http() {
    // AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH is not set in tests.
    for raw_path in ["/conference/wait", "/prod/conference/wait"] {
        let event = webhook_event("prod", raw_path);
        let ours = ours(&event);
        assert_same_request(&ours, &lambda_http_request(&event));
        assert_eq!(ours.uri().path(), "/prod/conference/wait");
        assert_eq!(routes::raw_path(&ours), raw_path);
    }
}

#[test]
fn text_bodies_no_body_and_multi_valued_headers_are_read_as_lambda_http_reads_them() {
    let mut event = webhook_event("$default", "/tickets");
    event["body"] = json!(r#"{"name":"Ada"}"#);
    event["isBase64Encoded"] = json!(false);
    event["headers"]["accept"] = json!(["text/html", "application/json"]);
    assert_same_request(&ours(&event), &lambda_http_request(&event));
    assert!(matches!(ours(&event).body(), Body::Text(text) if text == r#"{"name":"Ada"}"#));

    event.as_object_mut().unwrap().remove("body");
    event.as_object_mut().unwrap().remove("cookies");
    event.as_object_mut().unwrap().remove("isBase64Encoded");
    assert_same_request(&ours(&event), &lambda_http_request(&event));
    assert!(matches!(ours(&event).body(), Body::Empty));
    assert!(ours(&event).headers().get("cookie").is_none());
}

#[test]
fn a_path_that_is_not_a_valid_uri_is_escaped_and_kept_raw_for_routing() {
    let event = webhook_event("$default", "/static/a b\"c");
    let ours = ours(&event);
    assert_eq!(ours.uri().path(), lambda_http_request(&event).uri().path());
    assert_eq!(routes::raw_path(&ours), "/static/a b\"c");
}

#[test]
fn a_body_that_is_not_the_base64_it_claims_fails_the_invocation() {
    let mut event = webhook_event("$default", "/conference/wait");
    event["body"] = json!("not base64!");
    let event: Event = serde_json::from_value(event).unwrap();
    assert!(event.into_request(&Context::default()).is_err());
}

#[test]
fn the_xray_trace_id_becomes_a_header_as_in_lambda_http() {
    let mut context = Context::default();
    context.xray_trace_id = Some("Root=1-5759e988-bd862e3fe1be46a994272793".into());
    let event: Event = serde_json::from_value(webhook_event("$default", "/conference/wait")).unwrap();
    let req = event.into_request(&context).unwrap();
    assert_eq!(req.headers()["x-amzn-trace-id"], "Root=1-5759e988-bd862e3fe1be46a994272793");
}

/// The document `lambda_http`'s adapter sends back for `response` to a v2 event.
async fn lambda_http_document(response: Response<Body>) -> String {
    let event = webhook_event("$default", "/conference/wait").to_string();
    let payload: LambdaRequest = serde_json::from_str(&event).unwrap();
    let response = std::sync::Mutex::new(Some(response));
    let response = &response;
    let mut adapter = lambda_http::Adapter::from(lambda_http::service_fn(move |_req: Request| async move {
        Ok::<_, Error>(response.lock().unwrap().take().unwrap())
    }));
    let answer = adapter.ready().await.unwrap().call(LambdaEvent::new(payload, Context::default())).await.unwrap();
    serde_json::to_string(&answer).unwrap()
}

fn document(response: Response<Body>) -> String {
    serde_json::to_string(&Document::from(response)).unwrap()
}

fn with_headers(status: StatusCode, headers: &[(&'static str, &str)], body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    for (name, value) in headers {
        response.headers_mut().append(*name, HeaderValue::from_str(value).unwrap());
    }
    response
}

#[tokio::test]
async fn responses_become_the_document_lambda_http_writes() {
    let twiml = || crate::response::twiml(&VoiceResponse::new().say("Please hold \"now\" & <wait>\n"));
    let cookies = || {
        with_headers(
            StatusCode::SEE_OTHER,
            &[
                ("content-type", "text/plain; charset=utf-8"),
                ("location", "/dashboard"),
                ("set-cookie", "__Host-warmline_session=abc; Path=/; Secure; HttpOnly"),
                ("set-cookie", "csrf=1; Path=/"),
                ("vary", "origin"),
                ("vary", "cookie"),
            ],
            Body::Empty,
        )
    };
    let audio =
        || with_headers(StatusCode::OK, &[("content-type", "audio/mpeg")], Body::Binary(vec![0xff, 0xfb, 0, 1]));
    let audio_as_text = || with_headers(StatusCode::OK, &[("content-type", "audio/mpeg")], Body::Text("ID3".into()));
    let empty = || with_headers(StatusCode::NO_CONTENT, &[], Body::Empty);
    let empty_binary = || with_headers(StatusCode::OK, &[("content-type", "application/octet-stream")], Body::Empty);
    let bytes_as_text = || {
        with_headers(
            StatusCode::OK,
            &[("content-type", "application/problem+json")],
            Body::Binary(b"{\"a\":1}".to_vec()),
        )
    };
    let compressed = || {
        with_headers(
            StatusCode::OK,
            &[("content-type", "text/css"), ("content-encoding", "gzip")],
            Body::Text("x".into()),
        )
    };
    let bom = || with_headers(StatusCode::OK, &[("content-type", "text/plain")], Body::Text("\u{feff}hi".into()));
    let cases: [(&str, &dyn Fn() -> Response<Body>); 9] = [
        ("TwiML", &twiml),
        ("Set-Cookie twice", &cookies),
        ("binary audio", &audio),
        ("audio given as text", &audio_as_text),
        ("empty", &empty),
        ("empty binary", &empty_binary),
        ("JSON given as bytes", &bytes_as_text),
        ("compressed", &compressed),
        ("byte order mark", &bom),
    ];
    for (name, response) in cases {
        assert_eq!(document(response()), lambda_http_document(response()).await, "{name}");
    }
    assert_eq!(
        document(cookies()),
        r#"{"statusCode":303,"headers":{"content-type":"text/plain; charset=utf-8","location":"/dashboard","vary":"origin"},"multiValueHeaders":{},"body":"","isBase64Encoded":false,"cookies":["__Host-warmline_session=abc; Path=/; Secure; HttpOnly","csrf=1; Path=/"]}"#
    );
    assert_eq!(
        document(audio()),
        r#"{"statusCode":200,"headers":{"content-type":"audio/mpeg"},"multiValueHeaders":{},"body":"//sAAQ==","isBase64Encoded":true,"cookies":[]}"#
    );
}

/// The whole invocation, as a function serves it: a signed webhook's event in, the hold music's
/// TwiML out, and the same document `lambda_http::run` would have sent (each through an app of
/// its own: the first turn of hold music is not the second).
#[tokio::test]
async fn a_webhook_is_served_end_to_end_as_through_lambda_http() {
    let event_json = webhook_event("$default", "/conference/wait").to_string();
    let kit = TestApp::new();
    let app = &kit.app;
    let event: Payload =
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(&event_json)).unwrap();
    let ours =
        serve(|req| conference_wait::handle(app, req), LambdaEvent::new(event, Context::default())).await.unwrap();
    let ours = serde_json::to_value(&ours).unwrap();

    let kit = TestApp::new();
    let app = &kit.app;
    let payload: LambdaRequest = serde_json::from_str(&event_json).unwrap();
    let mut adapter = lambda_http::Adapter::from(lambda_http::service_fn(|req| conference_wait::handle(app, req)));
    let theirs = adapter.ready().await.unwrap().call(LambdaEvent::new(payload, Context::default())).await.unwrap();
    assert_eq!(ours, serde_json::to_value(&theirs).unwrap());
    assert_eq!(ours["statusCode"], 200);
    assert!(ours["body"].as_str().unwrap().contains("<Play"), "{ours}");
}
