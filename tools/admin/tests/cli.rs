//! The admin tool through its command line, against the emulator `make test` starts: what it
//! prints, and what it leaves in the Agents table and the secret.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code: a panic is a failed test")]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use shared::domain::AgentId;
use shared::password::verify_password;
use shared::store::AgentStore;
use shared::store::dynamo::DynamoAgentStore;
use shared::test_support::{emulator_endpoint, emulator_sdk_config, emulator_tables};

fn admin(args: &[&str], table: &str, stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_warmline-admin"))
        .args(["--endpoint-url", &emulator_endpoint(), "--table", table])
        .args(args)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    assert!(!output.status.success(), "should have failed: {}", String::from_utf8_lossy(&output.stdout));
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn id(id: &str) -> AgentId {
    AgentId::parse(id).unwrap()
}

#[tokio::test]
async fn adds_lists_disables_and_resets_agents() {
    let tables = emulator_tables().await;
    let table = tables.name("AgentsTable");
    let store = DynamoAgentStore::new(tables.client.clone(), &table);

    // A generated password, shown once, that verifies against the stored hash.
    let printed = stdout(&admin(&["add", "agent1", "--name", "Ada Lovelace"], &table, ""));
    let password = printed.lines().find_map(|l| l.strip_prefix("password for agent1 (shown once): ")).unwrap();
    assert_eq!(password.len(), 20);
    let agent1 = store.agent(&id("agent1")).await.unwrap().unwrap();
    assert_eq!(agent1.display_name, "Ada Lovelace");
    assert!(agent1.password_hash.expose().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    assert!(verify_password(password, &agent1.password_hash));

    // A password from stdin is not printed.
    let printed =
        stdout(&admin(&["add", "agent2", "--name", "Grace", "--password-stdin"], &table, "a long passphrase\n"));
    assert!(!printed.contains("a long passphrase"), "{printed}");
    assert!(verify_password("a long passphrase", &store.agent(&id("agent2")).await.unwrap().unwrap().password_hash));

    let listed = stdout(&admin(&["list"], &table, ""));
    let rows: Vec<&str> = listed.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{listed}");
    assert!(rows[0].starts_with("agent1") && rows[0].contains("enabled") && rows[0].ends_with("Ada Lovelace"));
    assert!(!listed.contains("argon2"), "hashes are never shown");

    stdout(&admin(&["disable", "agent1"], &table, ""));
    let disabled = store.agent(&id("agent1")).await.unwrap().unwrap();
    assert!(!disabled.is_enabled());
    assert!(disabled.session_epoch > agent1.session_epoch, "their sessions ended");
    assert!(stdout(&admin(&["list"], &table, "")).lines().nth(1).unwrap().contains("disabled"));
    stdout(&admin(&["enable", "agent1"], &table, ""));
    assert!(store.agent(&id("agent1")).await.unwrap().unwrap().is_enabled());

    stdout(&admin(&["reset-password", "agent1", "--password-stdin"], &table, "another passphrase\n"));
    let reset = store.agent(&id("agent1")).await.unwrap().unwrap();
    assert!(verify_password("another passphrase", &reset.password_hash));
    assert!(!verify_password(password, &reset.password_hash));
}

#[tokio::test]
async fn refuses_mistakes_and_changes_nothing() {
    let tables = emulator_tables().await;
    let table = tables.name("AgentsTable");
    let store = DynamoAgentStore::new(tables.client.clone(), &table);
    stdout(&admin(&["add", "agent1", "--name", "Ada", "--password-stdin"], &table, "the first password\n"));
    let before = store.agent(&id("agent1")).await.unwrap().unwrap();

    assert!(stderr(&admin(&["add", "agent1", "--name", "Impostor"], &table, "")).contains("exists already"));
    assert!(stderr(&admin(&["add", "agent 2", "--name", "X"], &table, "")).contains("is not an agent id"));
    assert!(
        stderr(&admin(&["add", "agent3", "--name", "X", "--password-stdin"], &table, "short\n"))
            .contains("at least 12")
    );
    assert!(stderr(&admin(&["disable", "ghost"], &table, "")).contains("there is no agent ghost"));
    assert!(
        stderr(&admin(&["reset-password", "ghost", "--password-stdin"], &table, "long enough password\n"))
            .contains("ghost")
    );

    assert_eq!(store.agent(&id("agent1")).await.unwrap().unwrap(), before);
    assert_eq!(store.list_agents().await.unwrap().len(), 1);
}

async fn created_secret(contents: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("warmline-admin-test-{}-{n}", std::process::id());
    let secrets = aws_sdk_secretsmanager::Client::new(&emulator_sdk_config());
    let created = secrets.create_secret().name(&name).secret_string(contents).send().await.unwrap();
    created.arn().unwrap().to_owned()
}

async fn secret_text(arn: &str) -> serde_json::Value {
    let secrets = aws_sdk_secretsmanager::Client::new(&emulator_sdk_config());
    let output = secrets.get_secret_value().secret_id(arn).send().await.unwrap();
    serde_json::from_str(output.secret_string().unwrap()).unwrap()
}

const SID: &str = "SK0123456789abcdef0123456789abcdef";

#[tokio::test]
async fn stores_each_twilio_secret_in_its_own_secret() {
    // As the template creates them: empty values, to be filled in.
    let auth = created_secret(r#"{"TWILIO_AUTH_TOKEN": ""}"#).await;
    let key = created_secret(r#"{"TWILIO_API_KEY": "", "TWILIO_API_SECRET": "", "KEPT": "x"}"#).await;
    let args = ["set-twilio-secrets", "--auth-token-secret-id", &auth, "--api-key-secret-id", &key, "--from-stdin"];
    let printed = stdout(&admin(&args, "", &format!("tok3n-value\n{SID}\ns3cret-value\n")));
    assert!(!printed.contains("tok3n") && !printed.contains("s3cret"), "{printed}");
    assert_eq!(secret_text(&auth).await, serde_json::json!({"TWILIO_AUTH_TOKEN": "tok3n-value"}));
    assert_eq!(
        secret_text(&key).await,
        serde_json::json!({"TWILIO_API_KEY": SID, "TWILIO_API_SECRET": "s3cret-value", "KEPT": "x"})
    );
    // Each alone: a new API key (a rotation) leaves the Auth Token as it is.
    let args = ["set-twilio-secrets", "--api-key-secret-id", &key, "--from-stdin"];
    let other = SID.replace('0', "f");
    stdout(&admin(&args, "", &format!("{other}\nrotated-secret\n")));
    assert_eq!(secret_text(&key).await["TWILIO_API_KEY"], other.as_str());
    assert_eq!(secret_text(&auth).await, serde_json::json!({"TWILIO_AUTH_TOKEN": "tok3n-value"}));

    // An empty value, a malformed SID, nothing named, mixed-up secrets: refused, nothing written.
    let refusals = [
        (vec!["set-twilio-secrets", "--auth-token-secret-id", &auth, "--from-stdin"], "\n", "must not be empty"),
        (vec!["set-twilio-secrets", "--api-key-secret-id", &key, "--from-stdin"], "AC123\nx\n", "SK followed by 32"),
        (vec!["set-twilio-secrets", "--from-stdin"], "a\n", "--auth-token-secret-id"),
        (
            vec!["set-twilio-secrets", "--auth-token-secret-id", &key, "--from-stdin"],
            "a-token\n",
            "is not the secret for TWILIO_AUTH_TOKEN",
        ),
        (
            vec!["set-twilio-secrets", "--auth-token-secret-id", "no-such-secret", "--from-stdin"],
            "a\n",
            "no-such-secret",
        ),
    ];
    for (args, stdin, expected) in refusals {
        let message = stderr(&admin(&args, "", stdin));
        assert!(message.contains(expected), "{args:?}: {message}");
    }
    assert_eq!(secret_text(&auth).await, serde_json::json!({"TWILIO_AUTH_TOKEN": "tok3n-value"}));
    assert_eq!(secret_text(&key).await["TWILIO_API_SECRET"], "rotated-secret");
}

#[tokio::test]
async fn rotates_the_session_key_without_showing_it() {
    let session = created_secret(r#"{"SESSION_SECRET": "generated-by-secrets-manager-0123456789"}"#).await;
    let printed = stdout(&admin(&["rotate-session-key", "--secret-id", &session], "", ""));
    let key = secret_text(&session).await["SESSION_SECRET"].as_str().unwrap().to_owned();
    assert_eq!(key.len(), 64);
    assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()), "{key}");
    assert!(!printed.contains(&key), "{printed}");
    stdout(&admin(&["rotate-session-key", "--secret-id", &session], "", ""));
    assert_ne!(secret_text(&session).await["SESSION_SECRET"].as_str().unwrap(), key, "a new one each time");
    // Not the session secret: refused.
    let auth = created_secret(r#"{"TWILIO_AUTH_TOKEN": "t"}"#).await;
    assert!(stderr(&admin(&["rotate-session-key", "--secret-id", &auth], "", "")).contains("is not the secret for"));
}
