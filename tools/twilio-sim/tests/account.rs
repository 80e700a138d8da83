//! The account's configuration through the REST API: TwiML Apps (`Applications`) and the
//! account's numbers (`IncomingPhoneNumbers`), as `warmline-admin wire-twilio` uses them; the
//! official `twilio` package reads the simulator's answers as it reads Twilio's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::Value;

async fn call(server: &twilio_sim::Server, method: &str, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    call_as(server, (KEY, SECRET), method, path, form).await
}

async fn call_as(
    server: &twilio_sim::Server,
    (user, password): (&str, &str),
    method: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut url = reqwest::Url::parse(&format!("{}/2010-04-01/Accounts/{ACCOUNT}/{path}", server.url())).unwrap();
    let client = reqwest::Client::new();
    let request = match method {
        "GET" => {
            if !form.is_empty() {
                url.query_pairs_mut().extend_pairs(form);
            }
            client.get(url)
        }
        "DELETE" => client.delete(url),
        _ => client.post(url).form(form),
    };
    let response = request.basic_auth(user, Some(password)).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Nothing is called back in these tests.
async fn no_app() -> FakeApp {
    FakeApp::start(|_| (404, "text/plain", String::new())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applications_are_created_listed_by_name_updated_and_deleted() {
    let app = no_app().await;
    let server = simulator(&app).await;
    let base = "https://stack.example";

    let (status, created) = call(
        &server,
        "POST",
        "Applications.json",
        &[
            ("FriendlyName", "Warmline customers"),
            ("VoiceUrl", &format!("{base}/call/connect")),
            ("VoiceMethod", "POST"),
        ],
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let sid = created["sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("AP") && sid.len() == 34, "{sid}");
    assert_eq!(created["voice_url"], format!("{base}/call/connect"));
    assert_eq!(created["voice_fallback_url"], Value::Null, "not set is null");
    assert_eq!(created["voice_fallback_method"], "POST", "Twilio's default");
    assert_eq!(created["uri"], format!("/2010-04-01/Accounts/{ACCOUNT}/Applications/{sid}.json"));

    // The filter matches the whole name only.
    let (_, listed) = call(&server, "GET", "Applications.json", &[("FriendlyName", "Warmline customers")]).await;
    let names: Vec<&str> =
        listed["applications"].as_array().unwrap().iter().map(|a| a["sid"].as_str().unwrap()).collect();
    assert_eq!(names, [sid.as_str()]);
    let (_, partial) = call(&server, "GET", "Applications.json", &[("FriendlyName", "Warmline")]).await;
    assert_eq!(partial["applications"], serde_json::json!([]));
    let (_, all) = call(&server, "GET", "Applications.json", &[]).await;
    assert_eq!(all["applications"].as_array().unwrap().len(), 3, "the two seeded apps and the new one");

    // An update changes what it names and keeps the rest; an empty URL clears it.
    let fallback = "https://bucket.example/fallback.xml";
    let (status, updated) = call(
        &server,
        "POST",
        &format!("Applications/{sid}.json"),
        &[("VoiceFallbackUrl", fallback), ("VoiceFallbackMethod", "GET")],
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["voice_url"], format!("{base}/call/connect"));
    assert_eq!(
        (updated["voice_fallback_url"].as_str(), updated["voice_fallback_method"].as_str()),
        (Some(fallback), Some("GET"))
    );
    let (_, cleared) = call(&server, "POST", &format!("Applications/{sid}.json"), &[("VoiceFallbackUrl", "")]).await;
    assert_eq!(cleared["voice_fallback_url"], Value::Null);
    assert_eq!(server.sim.applications().iter().find(|a| a.sid == sid).unwrap().voice.voice_fallback_url, None);

    let (status, fetched) = call(&server, "GET", &format!("Applications/{sid}.json"), &[]).await;
    assert_eq!((status, fetched["friendly_name"].as_str()), (200, Some("Warmline customers")));

    let (status, _) = call(&server, "DELETE", &format!("Applications/{sid}.json"), &[]).await;
    assert_eq!(status, 204);
    let (status, gone) = call(&server, "GET", &format!("Applications/{sid}.json"), &[]).await;
    assert_eq!((status, gone["code"].as_u64()), (404, Some(20404)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_are_found_by_number_and_their_voice_urls_updated() {
    let app = no_app().await;
    let server = simulator(&app).await;
    let other = server.sim.add_phone_number("+15559990000");

    // Partial numbers and `*` for any digit, as Twilio's filter takes them.
    for (pattern, expected) in [
        (NUMBER, vec![NUMBER]),
        ("5550001", vec![NUMBER]),
        ("+1555*99*000", vec!["+15559990000"]),
        ("555", vec![NUMBER, "+15559990000"]),
        ("+4930123", vec![]),
    ] {
        let (status, listed) = call(&server, "GET", "IncomingPhoneNumbers.json", &[("PhoneNumber", pattern)]).await;
        assert_eq!(status, 200);
        let numbers: Vec<&str> = listed["incoming_phone_numbers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["phone_number"].as_str().unwrap())
            .collect();
        assert_eq!(numbers, expected, "{pattern}");
    }

    let sid = server.sim.phone_numbers().into_iter().find(|n| n.phone_number == NUMBER).unwrap().sid;
    let (status, updated) = call(
        &server,
        "POST",
        &format!("IncomingPhoneNumbers/{sid}.json"),
        &[
            ("VoiceUrl", "https://stack.example/conference/connect/client"),
            ("VoiceMethod", "POST"),
            ("VoiceFallbackUrl", "https://bucket.example/fallback.xml"),
            ("VoiceFallbackMethod", "GET"),
            ("StatusCallback", "https://stack.example/status"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["voice_url"], "https://stack.example/conference/connect/client");
    assert_eq!(updated["voice_fallback_method"], "GET");
    assert_eq!(updated["status_callback"], "https://stack.example/status");
    assert_eq!(updated["voice_application_sid"], "", "no application: the number's own URLs");
    assert_eq!(
        server.sim.voice_url_of(NUMBER),
        Some(("https://stack.example/conference/connect/client".to_owned(), "POST".to_owned()))
    );

    // A number handled by an application uses the application's URL, until that is unset.
    let seeded = format!("AP{}", "3".repeat(32));
    call(&server, "POST", &format!("IncomingPhoneNumbers/{sid}.json"), &[("VoiceApplicationSid", &seeded)]).await;
    assert_eq!(server.sim.voice_url_of(NUMBER).unwrap().0, format!("{}/browser", app.url));
    call(&server, "POST", &format!("IncomingPhoneNumbers/{sid}.json"), &[("VoiceApplicationSid", "")]).await;
    assert_eq!(server.sim.voice_url_of(NUMBER).unwrap().0, "https://stack.example/conference/connect/client");

    // The other number is untouched.
    let (_, untouched) = call(&server, "GET", &format!("IncomingPhoneNumbers/{other}.json"), &[]).await;
    assert_eq!(untouched["voice_url"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_carry_twilios_codes_and_change_nothing() {
    let app = no_app().await;
    let server = simulator(&app).await;
    let number = server.sim.phone_numbers()[0].clone();
    let path = format!("IncomingPhoneNumbers/{}.json", number.sid);

    // Each update refused: where, with what, and Twilio's status and code.
    let unknown_number = "IncomingPhoneNumbers/PN00000000000000000000000000000000.json";
    let unknown_app = "Applications/AP00000000000000000000000000000000.json";
    let cases = [
        (path.as_str(), ("VoiceUrl", "not a url"), (400, 21502)),
        (path.as_str(), ("VoiceMethod", "PUT"), (400, 21200)),
        (path.as_str(), ("VoiceApplicationSid", "AP00000000000000000000000000000099"), (400, 21200)),
        (unknown_number, ("VoiceUrl", "https://x.example/"), (404, 20404)),
        (unknown_app, ("VoiceUrl", "https://x.example/"), (404, 20404)),
    ];
    for (path, field, (status, code)) in cases {
        let (got, body) = call(&server, "POST", path, &[field]).await;
        assert_eq!((got, body["code"].as_u64()), (status, Some(code)), "{path} {field:?}: {body}");
        assert_eq!(body["more_info"], format!("https://www.twilio.com/docs/errors/{code}"));
    }

    // Wrong credentials.
    let (status, body) = call_as(&server, (KEY, "wrong"), "GET", "IncomingPhoneNumbers.json", &[]).await;
    assert_eq!((status, body["code"].as_u64()), (401, Some(20003)));

    // A restricted key without the permission: 403, 70051; the Auth Token may still.
    server.sim.deny_api_key("POST", "IncomingPhoneNumbers");
    let (status, body) = call(&server, "POST", &path, &[("VoiceUrl", "https://x.example/")]).await;
    assert_eq!((status, body["code"].as_u64()), (403, Some(70051)));
    let (status, _) = call(&server, "GET", &path, &[]).await;
    assert_eq!(status, 200, "reading is still allowed");

    assert_eq!(server.sim.phone_numbers()[0], number, "nothing changed");
    let (status, _) = call_as(&server, (ACCOUNT, TOKEN), "POST", &path, &[("VoiceUrl", "https://x.example/")]).await;
    assert_eq!(status, 200);
}

/// The official library, pointed at the simulator, reads its answers into its own resources.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_library_reads_the_simulators_answers() {
    let app = no_app().await;
    let server = simulator(&app).await;
    let script = r#"
import json, sys
from twilio.rest import Client
from twilio.base.exceptions import TwilioRestException
url, account, key, secret, number = sys.argv[1:]
client = Client(key, secret, account)
client.api.base_url = url
app = client.applications.create(friendly_name="Warmline agents", voice_url="https://stack.example/call/agent", voice_method="POST")
app = client.applications(app.sid).update(voice_fallback_url="https://bucket.example/fallback.xml", voice_fallback_method="GET")
found = client.applications.list(friendly_name="Warmline agents")
pn = client.incoming_phone_numbers.list(phone_number=number)[0]
pn = client.incoming_phone_numbers(pn.sid).update(voice_url="https://stack.example/conference/connect/client", voice_fallback_url="https://bucket.example/fallback.xml", voice_fallback_method="GET")
try:
    client.applications("AP" + "0" * 32).fetch()
    missing = None
except TwilioRestException as err:
    missing = [err.status, err.code]
print(json.dumps({
    "app": [app.sid[:2], app.friendly_name, app.voice_url, app.voice_method, app.voice_fallback_url, app.voice_fallback_method],
    "found": [a.sid == app.sid for a in found],
    "number": [pn.phone_number, pn.voice_url, pn.voice_method, pn.voice_fallback_url, pn.voice_fallback_method, pn.voice_application_sid],
    "missing": missing,
}))
"#;
    let url = server.url();
    let output = tokio::task::spawn_blocking(move || {
        python::run_python_with_args(script, &[&url, ACCOUNT, KEY, SECRET, NUMBER], "")
    })
    .await
    .unwrap();
    let seen: Value = serde_json::from_str(output.trim()).unwrap();
    assert_eq!(
        seen,
        serde_json::json!({
            "app": ["AP", "Warmline agents", "https://stack.example/call/agent", "POST", "https://bucket.example/fallback.xml", "GET"],
            "found": [true],
            "number": [NUMBER, "https://stack.example/conference/connect/client", "POST", "https://bucket.example/fallback.xml", "GET", ""],
            "missing": [404, 20404],
        })
    );
}
