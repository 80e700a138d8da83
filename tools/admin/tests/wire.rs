//! `wire-twilio` and `deploy` through the command line, against the Twilio simulator and the
//! emulator's Secrets Manager: what Twilio's account holds afterwards, what the tool printed,
//! and that refusals change nothing. `deploy` runs a stand-in `sam` (AWS is not reachable
//! here) that records its commands and keeps the stack's outputs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code: a panic is a failed test")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Value, json};
use shared::test_support::{emulator_endpoint, emulator_sdk_config};
use twilio_sim::model::PhoneNumberView;
use twilio_sim::{Server, SimConfig};

const ACCOUNT: &str = "AC11111111111111111111111111111111";
const KEY: &str = "SK22222222222222222222222222222222";
const KEY_SECRET: &str = "wire-test-key-secret";
const NUMBER: &str = "+15550001111";
const BASE: &str = "https://abc123.execute-api.us-east-1.amazonaws.com";

const FALLBACK: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say>Sorry.</Say><Hangup/></Response>"#;

/// A Twilio account with the support number, nothing configured on it, and no TwiML Apps.
async fn clean_account() -> Server {
    let config = SimConfig {
        account_sid: ACCOUNT.into(),
        auth_token: "wire-test-auth-token".into(),
        api_key: Some(KEY.into()),
        api_secret: Some(KEY_SECRET.into()),
        phone_number: NUMBER.into(),
        voice_url: String::new(),
        twiml_app_sid: String::new(),
        twiml_app_voice_url: String::new(),
        agent_twiml_app_sid: String::new(),
        agent_twiml_app_voice_url: String::new(),
        ..SimConfig::for_warmline("http://127.0.0.1:9")
    };
    Server::start(config, SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap()
}

/// The stack's bucket, serving the fallback document (or refusing it, like an account that
/// blocks public S3 objects); returns its URL.
async fn fallback_bucket(status: u16) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/fallback.xml", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/fallback.xml",
        axum::routing::get(move || async move {
            let status = axum::http::StatusCode::from_u16(status).unwrap();
            let body = if status.is_success() { FALLBACK } else { "<Error><Code>AccessDenied</Code></Error>" };
            (status, [("content-type", "text/xml")], body)
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

async fn secret(contents: Value) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = format!("wire-test-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    let client = aws_sdk_secretsmanager::Client::new(&emulator_sdk_config());
    let created = client.create_secret().name(name).secret_string(contents.to_string()).send().await.unwrap();
    created.arn().unwrap().to_owned()
}

async fn secret_value(arn: &str) -> Value {
    let client = aws_sdk_secretsmanager::Client::new(&emulator_sdk_config());
    let output = client.get_secret_value().secret_id(arn).send().await.unwrap();
    serde_json::from_str(output.secret_string().unwrap()).unwrap()
}

fn temp_dir() -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "warmline-wire-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The stack's outputs as `sam list stack-outputs --output json` prints them.
fn sam_outputs(outputs: &Value) -> String {
    let list: Vec<Value> = outputs
        .as_object()
        .unwrap()
        .iter()
        .map(|(key, value)| json!({"OutputKey": key, "OutputValue": value, "Description": "d"}))
        .collect();
    Value::Array(list).to_string()
}

struct Stack {
    outputs: Value,
    auth_secret: String,
    key_secret: String,
}

/// A deployed stack whose Twilio secrets are filled in.
async fn stack(fallback: &str) -> Stack {
    let auth_secret = secret(json!({"TWILIO_AUTH_TOKEN": "wire-test-auth-token"})).await;
    let key_secret = secret(json!({"TWILIO_API_KEY": KEY, "TWILIO_API_SECRET": KEY_SECRET, "KEPT": "x"})).await;
    let outputs = json!({
        "StackName": "warmline",
        "ApiUrl": BASE,
        "WebhookBaseUrl": BASE,
        "FallbackTwimlUrl": fallback,
        "TwilioAuthTokenSecretArn": auth_secret,
        "TwilioApiKeySecretArn": key_secret,
        "TwilioAccountSid": ACCOUNT,
        "TwilioNumber": NUMBER,
        "TwilioTwimlAppSid": "",
        "TwilioAgentTwimlAppSid": "",
    });
    Stack { outputs, auth_secret, key_secret }
}

fn outputs_file(outputs: &Value) -> PathBuf {
    let file = temp_dir().join("outputs.json");
    std::fs::write(&file, sam_outputs(outputs)).unwrap();
    file
}

async fn admin(server: &Server, args: Vec<String>, env: Vec<(&'static str, String)>) -> Output {
    let twilio = server.url();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_warmline-admin"))
            .args(["--endpoint-url", &emulator_endpoint()])
            .args(&args)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("TWILIO_API_BASE_URL", twilio)
            .envs(env)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

async fn wire(server: &Server, outputs: &Value, extra: &[&str]) -> Output {
    let file = outputs_file(outputs);
    let mut args = vec!["wire-twilio".to_owned(), "--stack-outputs".to_owned(), file.display().to_string()];
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    admin(server, args, Vec::new()).await
}

fn stdout(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "failed: {}\n{text}", String::from_utf8_lossy(&output.stderr));
    text
}

fn stderr(output: &Output) -> String {
    assert!(!output.status.success(), "should have failed: {}", String::from_utf8_lossy(&output.stdout));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn number(server: &Server) -> PhoneNumberView {
    server.sim.phone_numbers().into_iter().find(|n| n.phone_number == NUMBER).unwrap()
}

/// The account's configuration, to compare before and after a refusal.
fn account(server: &Server) -> (Vec<twilio_sim::model::ApplicationView>, Vec<PhoneNumberView>) {
    (server.sim.applications(), server.sim.phone_numbers())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wires_a_clean_account_and_a_second_run_changes_nothing() {
    let server = clean_account().await;
    let fallback = fallback_bucket(200).await;
    let stack = stack(&fallback).await;

    // The plan first: nothing changes.
    let planned = stdout(&wire(&server, &stack.outputs, &["--dry-run"]).await);
    assert!(planned.contains(r#"create the TwiML App "Warmline customers (warmline)""#), "{planned}");
    assert!(planned.contains(r#"create the TwiML App "Warmline agents (warmline)""#), "{planned}");
    assert!(
        planned.contains(&format!("update the number {NUMBER}: VoiceUrl (unset) -> {BASE}/conference/connect/client"))
    );
    assert!(planned.contains("Dry run: nothing changed."), "{planned}");
    assert_eq!(server.sim.applications(), []);
    assert_eq!(number(&server).voice.voice_url, None);

    let printed = stdout(&wire(&server, &stack.outputs, &[]).await);
    let apps = server.sim.applications();
    let app = |name: &str| apps.iter().find(|a| a.friendly_name.as_deref() == Some(name)).unwrap().clone();
    let (customers, agents) = (app("Warmline customers (warmline)"), app("Warmline agents (warmline)"));
    assert_eq!(apps.len(), 2);
    for (app, path) in [(&customers, "/call/connect"), (&agents, "/call/agent")] {
        assert_eq!(app.voice.voice_url.as_deref(), Some(format!("{BASE}{path}").as_str()));
        assert_eq!(app.voice.voice_method, "POST");
        assert_eq!(
            (app.voice.voice_fallback_url.as_deref(), app.voice.voice_fallback_method.as_str()),
            (Some(fallback.as_str()), "GET")
        );
    }
    let wired = number(&server);
    assert_eq!(wired.voice.voice_url.as_deref(), Some(format!("{BASE}/conference/connect/client").as_str()));
    assert_eq!(
        (wired.voice.voice_method.as_str(), wired.voice.voice_fallback_url.as_deref()),
        ("POST", Some(fallback.as_str()))
    );
    assert_eq!(wired.voice.voice_fallback_method, "GET");
    assert_eq!(wired.voice.status_callback, None, "Warmline has no route for it");
    assert_eq!(
        server.sim.voice_url_of(NUMBER),
        Some((format!("{BASE}/conference/connect/client"), "POST".to_owned())),
        "a call to the number reaches the stack"
    );
    // The functions read the SIDs from the stack's parameters: the tool says which.
    assert!(
        printed.contains(&format!(
            "deploy again with --parameter-overrides TwilioTwimlAppSid={} TwilioAgentTwimlAppSid={}",
            customers.sid, agents.sid
        )),
        "{printed}"
    );
    assert!(printed.contains("Twilio is wired to"), "{printed}");

    // Deployed with the SIDs, a second run finds nothing to change, and changes nothing.
    let mut deployed = stack.outputs.clone();
    deployed["TwilioTwimlAppSid"] = json!(customers.sid);
    deployed["TwilioAgentTwimlAppSid"] = json!(agents.sid);
    let before = (account(&server), server.sim.timeline().len());
    let again = stdout(&wire(&server, &deployed, &[]).await);
    assert_eq!(again.trim(), format!("Twilio is wired to {BASE} already: nothing changed."));
    let rest_writes = server
        .sim
        .timeline()
        .entries_since(before.1)
        .iter()
        .filter(|entry| matches!(&entry.event, twilio_sim::Event::Rest { method, .. } if method != "GET"))
        .count();
    assert_eq!((account(&server), rest_writes), (before.0, 0));
    // The API key's secret is read, never written.
    assert_eq!(secret_value(&stack.key_secret).await["KEPT"], "x");
    assert_eq!(secret_value(&stack.auth_secret).await, json!({"TWILIO_AUTH_TOKEN": "wire-test-auth-token"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brings_back_only_what_drifted() {
    let server = clean_account().await;
    let fallback = fallback_bucket(200).await;
    let stack = stack(&fallback).await;
    stdout(&wire(&server, &stack.outputs, &[]).await);
    let apps = server.sim.applications();
    let customers = apps.iter().find(|a| a.friendly_name.as_deref() == Some("Warmline customers (warmline)")).unwrap();

    // By hand in the console: the number sent elsewhere, through an application, and the
    // agents' app deleted.
    let other_app = server.sim.applications().len();
    let client = reqwest::Client::new();
    let api = format!("{}/2010-04-01/Accounts/{ACCOUNT}", server.url());
    let post = |path: String, form: Vec<(&'static str, String)>| {
        client.post(format!("{api}/{path}")).basic_auth(KEY, Some(KEY_SECRET)).form(&form).send()
    };
    let agents = apps.iter().find(|a| a.friendly_name.as_deref() == Some("Warmline agents (warmline)")).unwrap();
    client
        .delete(format!("{api}/Applications/{}.json", agents.sid))
        .basic_auth(KEY, Some(KEY_SECRET))
        .send()
        .await
        .unwrap();
    let elsewhere = post(
        "Applications.json".into(),
        vec![("FriendlyName", "old".into()), ("VoiceUrl", "https://old.example/".into())],
    )
    .await
    .unwrap()
    .json::<Value>()
    .await
    .unwrap();
    let sid = number(&server).sid;
    post(
        format!("IncomingPhoneNumbers/{sid}.json"),
        vec![
            ("VoiceUrl", "https://old.example/voice".into()),
            ("VoiceApplicationSid", elsewhere["sid"].as_str().unwrap().into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(server.sim.applications().len(), other_app);

    let mut deployed = stack.outputs.clone();
    deployed["TwilioTwimlAppSid"] = json!(customers.sid);
    deployed["TwilioAgentTwimlAppSid"] = json!(agents.sid);
    let printed = stdout(&wire(&server, &deployed, &[]).await);
    assert!(!printed.contains("update the customers TwiML App"), "it was right: {printed}");
    assert!(printed.contains(r#"create the TwiML App "Warmline agents (warmline)""#), "{printed}");
    assert!(printed.contains("VoiceUrl https://old.example/voice ->"), "{printed}");
    assert!(
        printed.contains(&format!("VoiceApplicationSid {} -> (unset)", elsewhere["sid"].as_str().unwrap())),
        "{printed}"
    );
    assert_eq!(server.sim.voice_url_of(NUMBER).unwrap().0, format!("{BASE}/conference/connect/client"));
    let new_agents = server
        .sim
        .applications()
        .into_iter()
        .find(|a| a.friendly_name.as_deref() == Some("Warmline agents (warmline)"))
        .unwrap();
    assert_ne!(new_agents.sid, agents.sid);
    assert!(printed.contains(&format!("TwilioAgentTwimlAppSid={}", new_agents.sid)), "{printed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_the_problem_and_the_fix_and_change_nothing() {
    let server = clean_account().await;
    let fallback = fallback_bucket(200).await;
    let stack = stack(&fallback).await;
    let before = account(&server);

    // A number the account does not own: the account's numbers are listed.
    let mut elsewhere = stack.outputs.clone();
    elsewhere["TwilioNumber"] = json!("+15557770000");
    let refused = stderr(&wire(&server, &elsewhere, &[]).await);
    assert!(
        refused
            .contains(&format!("the number +15557770000 is not in Twilio account {ACCOUNT} (its numbers: {NUMBER})")),
        "{refused}"
    );
    assert!(
        refused.contains("Fix: deploy with TwilioNumber set to a number of this account")
            && refused.contains("Nothing was changed.")
    );

    // Wrong credentials: Twilio's 401 (20003), and what to check.
    let wrong = secret(json!({"TWILIO_API_KEY": KEY, "TWILIO_API_SECRET": "not-the-secret"})).await;
    let mut wrong_key = stack.outputs.clone();
    wrong_key["TwilioApiKeySecretArn"] = json!(wrong);
    let refused = stderr(&wire(&server, &wrong_key, &[]).await);
    assert!(refused.contains("Twilio refused the credentials while looking up the number (error 20003)"), "{refused}");
    assert!(refused.contains("set-twilio-secrets") && refused.contains("Nothing was changed."), "{refused}");

    // No API key stored yet.
    let empty = secret(json!({"TWILIO_API_KEY": "", "TWILIO_API_SECRET": ""})).await;
    let mut unfilled = stack.outputs.clone();
    unfilled["TwilioApiKeySecretArn"] = json!(empty);
    assert!(stderr(&wire(&server, &unfilled, &[]).await).contains("holds no Twilio API key yet: store it first"));

    // A fallback document S3 refuses to serve.
    let mut blocked = stack.outputs.clone();
    blocked["FallbackTwimlUrl"] = json!(fallback_bucket(403).await);
    let refused = stderr(&wire(&server, &blocked, &[]).await);
    assert!(
        refused.contains("answered 403 Forbidden and no TwiML") && refused.contains("Block Public Access"),
        "{refused}"
    );

    // A restricted key that may read the number but not change it: found out before any change.
    server.sim.deny_api_key("POST", "IncomingPhoneNumbers");
    let refused = stderr(&wire(&server, &stack.outputs, &[]).await);
    assert!(
        refused.contains(&format!("the API key {KEY} may not do this (checking that the number may be changed)")),
        "{refused}"
    );
    assert!(
        refused.contains("70051") && refused.contains("Standard API key") && refused.contains("Nothing was changed."),
        "{refused}"
    );

    // Outputs of an older stack.
    let mut old = stack.outputs.clone();
    old.as_object_mut().unwrap().remove("FallbackTwimlUrl");
    assert!(stderr(&wire(&server, &old, &[]).await).contains("the stack outputs lack FallbackTwimlUrl"));

    assert_eq!(account(&server), before, "nothing changed in the account");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_half_way_says_what_was_changed() {
    let server = clean_account().await;
    let fallback = fallback_bucket(200).await;
    let stack = stack(&fallback).await;
    // Twilio's limit is 1000 apps an account: room for one more.
    for n in 0..999 {
        server.sim.add_application(&format!("someone else's app {n}"), None);
    }
    let refused = stderr(&wire(&server, &stack.outputs, &[]).await);
    let created = server
        .sim
        .applications()
        .into_iter()
        .find(|a| a.friendly_name.as_deref() == Some("Warmline customers (warmline)"))
        .unwrap();
    assert!(refused.contains("while creating a TwiML App"), "{refused}");
    assert!(
        refused.contains(&format!(
            r#"Changed before that: created the TwiML App "Warmline customers (warmline)" ({}). Run wire-twilio again to finish."#,
            created.sid
        )),
        "{refused}"
    );
    assert_eq!(number(&server).voice.voice_url, None, "the number is changed last");
}

/// The stand-in `sam`: records each command; `deploy` keeps the parameters it was given as the
/// stack's outputs, `list stack-outputs` prints them (or fails while there is no stack).
const FAKE_SAM: &str = r#"#!/usr/bin/env python3
import json, os, sys
path = os.environ["FAKE_SAM_STATE"]
with open(path) as f:
    state = json.load(f)
args = sys.argv[1:]
state["calls"].append(args)
code = 0
if args[:2] == ["list", "stack-outputs"]:
    if not state["deployed"]:
        sys.stderr.write("Error: Stack with id warmline does not exist\n")
        code = 1
    else:
        print(json.dumps([{"OutputKey": k, "OutputValue": v, "Description": ""} for k, v in state["outputs"].items()]))
elif args[:1] == ["deploy"]:
    if "--parameter-overrides" in args:
        i = args.index("--parameter-overrides") + 1
        while i < len(args) and not args[i].startswith("--"):
            key, value = args[i].split("=", 1)
            state["outputs"][key] = value
            i += 1
    if not all(state["outputs"].get(p) for p in ("TwilioAccountSid", "TwilioNumber")):
        sys.stderr.write("Error: Parameters: [TwilioAccountSid, TwilioNumber] must have values\n")
        code = 1
    else:
        state["deployed"] = True
with open(path, "w") as f:
    json.dump(state, f)
sys.exit(code)
"#;

fn fake_sam(dir: &Path, outputs: &Value) -> (PathBuf, PathBuf) {
    let sam = dir.join("sam");
    std::fs::write(&sam, FAKE_SAM).unwrap();
    let mut permissions = std::fs::metadata(&sam).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&sam, permissions).unwrap();
    let state = dir.join("state.json");
    std::fs::write(&state, json!({"calls": [], "deployed": false, "outputs": outputs}).to_string()).unwrap();
    (sam, state)
}

fn sam_state(state: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(state).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_stores_the_secrets_and_wires_twilio_in_one_command() {
    let server = clean_account().await;
    let fallback = fallback_bucket(200).await;
    // As the template creates them: empty, to be filled in.
    let auth_secret = secret(json!({"TWILIO_AUTH_TOKEN": ""})).await;
    let key_secret = secret(json!({"TWILIO_API_KEY": "", "TWILIO_API_SECRET": ""})).await;
    let mut outputs = stack(&fallback).await.outputs;
    for key in ["TwilioAccountSid", "TwilioNumber"] {
        outputs.as_object_mut().unwrap().remove(key);
    }
    outputs["TwilioAuthTokenSecretArn"] = json!(auth_secret);
    outputs["TwilioApiKeySecretArn"] = json!(key_secret);
    let dir = temp_dir();
    let (sam, state) = fake_sam(&dir, &outputs);
    let outputs_file = dir.join("outputs.json").display().to_string();
    let args = |extra: &[&str]| {
        let mut args: Vec<String> = ["deploy", "--sam", &sam.display().to_string(), "--outputs-file", &outputs_file]
            .map(str::to_owned)
            .to_vec();
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        args
    };
    let secrets_env = vec![
        ("FAKE_SAM_STATE", state.display().to_string()),
        ("TWILIO_AUTH_TOKEN", "wire-test-auth-token".to_owned()),
        ("TWILIO_API_KEY", KEY.to_owned()),
        ("TWILIO_API_SECRET", KEY_SECRET.to_owned()),
    ];
    let mut first_env = secrets_env.clone();
    first_env.push(("TWILIO_ACCOUNT_SID", ACCOUNT.to_owned()));
    first_env.push(("TWILIO_NUMBER", NUMBER.to_owned()));

    // The plan: every command, none run.
    let planned = stdout(
        &admin(&server, args(&["--dry-run", "--parameter", "AlarmEmail=ops@example.com"]), first_env.clone()).await,
    );
    assert!(planned.contains(&format!(
        "sam deploy --stack-name warmline --no-fail-on-empty-changeset --parameter-overrides TwilioAccountSid={ACCOUNT} TwilioNumber={NUMBER} AlarmEmail=ops@example.com"
    )), "{planned}");
    assert!(planned.contains("wire-twilio --stack-outputs") && planned.contains("Dry run: nothing ran."), "{planned}");
    assert_eq!(sam_state(&state)["calls"], json!([]));

    let printed = stdout(
        &admin(&server, args(&["--no-confirm-changeset", "--parameter", "AlarmEmail=ops@example.com"]), first_env)
            .await,
    );
    let apps = server.sim.applications();
    let sid = |name: &str| apps.iter().find(|a| a.friendly_name.as_deref() == Some(name)).unwrap().sid.clone();
    let (customers, agents) = (sid("Warmline customers (warmline)"), sid("Warmline agents (warmline)"));
    let commands = |state: &Value| -> Vec<String> {
        state["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|call| call.as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect::<Vec<_>>().join(" "))
            .collect()
    };
    let list = "list stack-outputs --stack-name warmline --output json";
    assert_eq!(
        commands(&sam_state(&state)),
        [
            list.to_owned(),
            "build".to_owned(),
            format!(
                "deploy --stack-name warmline --no-fail-on-empty-changeset --parameter-overrides TwilioAccountSid={ACCOUNT} TwilioNumber={NUMBER} \
                 AlarmEmail=ops@example.com --no-confirm-changeset"
            ),
            list.to_owned(),
            format!(
                "deploy --stack-name warmline --no-fail-on-empty-changeset --parameter-overrides TwilioTwimlAppSid={customers} \
                 TwilioAgentTwimlAppSid={agents} --no-confirm-changeset"
            ),
            list.to_owned(),
        ],
        "{printed}"
    );
    assert_eq!(secret_value(&auth_secret).await, json!({"TWILIO_AUTH_TOKEN": "wire-test-auth-token"}));
    assert_eq!(secret_value(&key_secret).await, json!({"TWILIO_API_KEY": KEY, "TWILIO_API_SECRET": KEY_SECRET}));
    assert!(!printed.contains(KEY_SECRET) && !printed.contains("wire-test-auth-token"), "{printed}");
    assert_eq!(server.sim.voice_url_of(NUMBER).unwrap().0, format!("{BASE}/conference/connect/client"));
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&outputs_file).unwrap()).unwrap();
    assert!(
        saved
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["OutputKey"] == "TwilioTwimlAppSid" && o["OutputValue"] == customers.as_str())
    );

    // Again, without the ids (the stack keeps its parameters): nothing changes.
    let before = account(&server);
    let again = stdout(&admin(&server, args(&["--no-confirm-changeset"]), secrets_env).await);
    assert_eq!(
        commands(&sam_state(&state))[6..],
        [
            list.to_owned(),
            "build".to_owned(),
            "deploy --stack-name warmline --no-fail-on-empty-changeset --no-confirm-changeset".to_owned(),
            list.to_owned()
        ],
        "{again}"
    );
    assert!(again.contains("nothing changed") && !again.contains("stored"), "{again}");
    assert_eq!(account(&server), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_refuses_a_new_stack_without_its_ids_or_secrets() {
    let server = clean_account().await;
    let fallback = fallback_bucket(200).await;
    let stack = stack(&fallback).await;
    let dir = temp_dir();
    let (sam, state) = fake_sam(&dir, &stack.outputs);
    let args = vec!["deploy".to_owned(), "--sam".to_owned(), sam.display().to_string()];
    let refused = stderr(&admin(&server, args.clone(), vec![("FAKE_SAM_STATE", state.display().to_string())]).await);
    assert!(refused.contains("a new stack needs TWILIO_ACCOUNT_SID"), "{refused}");
    assert_eq!(sam_state(&state)["calls"].as_array().unwrap().len(), 1, "only asked whether the stack exists");

    let env = vec![
        ("FAKE_SAM_STATE", state.display().to_string()),
        ("TWILIO_ACCOUNT_SID", "AC123".to_owned()),
        ("TWILIO_NUMBER", NUMBER.to_owned()),
    ];
    assert!(stderr(&admin(&server, args, env).await).contains("TwilioAccountSid \"AC123\" is malformed"));
}
