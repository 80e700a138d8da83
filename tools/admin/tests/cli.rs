//! The admin tool through its command line, against the emulator `make test` starts: what it
//! prints, and what it leaves in the Agents table and the secret.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code: a panic is a failed test")]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use shared::app::read_secrets;
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

#[tokio::test]
async fn stores_the_twilio_secrets_and_keeps_the_session_key() {
    let secrets = aws_sdk_secretsmanager::Client::new(&emulator_sdk_config());
    let name = format!("warmline-admin-test-{}", std::process::id());
    // As the template creates it: empty Twilio values, a generated session key.
    let created = secrets
        .create_secret()
        .name(&name)
        .secret_string(r#"{"TWILIO_AUTH_TOKEN": "", "TWILIO_API_SECRET": "", "SESSION_SECRET": "generated-by-secrets-manager-0123456789"}"#)
        .send()
        .await
        .unwrap();
    let arn = created.arn().unwrap();

    let printed =
        stdout(&admin(&["set-twilio-secrets", "--secret-id", arn, "--from-stdin"], "", "tok3n-value\ns3cret-value\n"));
    assert!(!printed.contains("tok3n") && !printed.contains("s3cret"), "{printed}");
    let stored = read_secrets(&secrets, arn).await.unwrap();
    let values: Vec<(&str, &str)> = ["TWILIO_AUTH_TOKEN", "TWILIO_API_SECRET", "SESSION_SECRET"]
        .into_iter()
        .map(|name| (name, stored.get(name).unwrap().expose()))
        .collect();
    assert_eq!(
        values,
        [
            ("TWILIO_AUTH_TOKEN", "tok3n-value"),
            ("TWILIO_API_SECRET", "s3cret-value"),
            ("SESSION_SECRET", "generated-by-secrets-manager-0123456789")
        ]
    );

    // An empty value, or a secret that is not Warmline's, is refused.
    assert!(
        stderr(&admin(&["set-twilio-secrets", "--secret-id", arn, "--from-stdin"], "", "\nx\n"))
            .contains("must not be empty")
    );
    assert!(
        !stderr(&admin(&["set-twilio-secrets", "--secret-id", "no-such-secret", "--from-stdin"], "", "a\nb\n"))
            .is_empty()
    );
}
