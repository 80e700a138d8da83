//! `deploy` (what `make deploy` runs): build, deploy, store the Twilio secrets, wire Twilio.
//!
//! 1. `sam list stack-outputs` tells whether the stack exists: a new one needs the Twilio
//!    account and number (`TWILIO_ACCOUNT_SID`, `TWILIO_NUMBER`, else asked for), an existing
//!    one keeps its parameters unless they are given;
//! 2. `sam build`, `sam deploy` with those parameters and any `--parameter Name=Value`, and the
//!    stack's outputs into a file;
//! 3. the Twilio Auth Token and API key into their secrets: from `TWILIO_AUTH_TOKEN`,
//!    `TWILIO_API_KEY` and `TWILIO_API_SECRET`, else asked for without echo, unless the secrets
//!    hold them already (`--set-secrets` asks again);
//! 4. `wire-twilio` with those outputs; when it created a TwiML App (the first deploy) or found
//!    other ones than the stack runs with, `sam deploy` again with their SIDs.
//!
//! `--dry-run` prints the commands and steps without running any: all of them need AWS.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use shared::secret::SecretKind;

use crate::AdminError;
use crate::outputs::StackOutputs;
use crate::secret_object;
use crate::secrets::{self, TwilioSecretIds};
use crate::wire::{self, wire_twilio};

pub struct Options {
    pub stack_name: String,
    pub sam: String,
    /// More `sam deploy` parameters, `Name=Value` (PublicBaseUrl, AlarmEmail, ...).
    pub parameters: Vec<String>,
    pub outputs_file: PathBuf,
    pub api_base_url: String,
    pub no_confirm_changeset: bool,
    pub set_secrets: bool,
    pub dry_run: bool,
}

/// The stack parameters that name the Twilio account and number; no secret is a parameter.
const TWILIO_IDS: [(&str, &str, &str); 2] = [
    ("TwilioAccountSid", "TWILIO_ACCOUNT_SID", "Twilio Account SID (AC...)"),
    ("TwilioNumber", "TWILIO_NUMBER", "The support number, E.164 (+15551234567)"),
];

fn check_id(parameter: &str, value: &str) -> Result<(), AdminError> {
    let ok = match parameter {
        "TwilioAccountSid" => {
            value.len() == 34 && value.starts_with("AC") && value[2..].chars().all(|c| c.is_ascii_hexdigit())
        }
        _ => shared::domain::PhoneNumber::parse(value).is_ok(),
    };
    if ok { Ok(()) } else { Err(AdminError::Usage(format!("{parameter} {value:?} is malformed"))) }
}

fn from_env(variable: &str) -> Option<String> {
    std::env::var(variable).ok().map(|value| value.trim().to_owned()).filter(|value| !value.is_empty())
}

/// `Name=Value` for each Twilio id given in the environment; a new stack needs them all, and
/// what the environment lacks is asked for on a terminal.
fn twilio_ids(new_stack: bool) -> Result<Vec<String>, AdminError> {
    let mut parameters = Vec::new();
    for (parameter, variable, prompt) in TWILIO_IDS {
        let value = match from_env(variable) {
            Some(value) => value,
            None if !new_stack => continue,
            None if std::io::stdin().is_terminal() => {
                print!("{prompt}: ");
                std::io::stdout().flush()?;
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                line.trim().to_owned()
            }
            None => {
                return Err(AdminError::Usage(format!(
                    "a new stack needs {variable} ({prompt}): set it, or run this on a terminal"
                )));
            }
        };
        check_id(parameter, &value)?;
        parameters.push(format!("{parameter}={value}"));
    }
    Ok(parameters)
}

/// `Name=Value` as `sam deploy --parameter-overrides` reads it: a value with spaces or quotes
/// in double quotes, its `"` and `\` escaped (SAM would otherwise cut it at the first space).
fn sam_parameter(parameter: &str) -> String {
    match parameter.split_once('=') {
        Some((name, value)) if value.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\') => {
            format!("{name}=\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
        }
        _ => parameter.to_owned(),
    }
}

fn deploy_args(options: &Options, overrides: &[String]) -> Vec<String> {
    // A deploy with nothing to change (the same version again) is no failure.
    let mut args =
        ["deploy", "--stack-name", &options.stack_name, "--no-fail-on-empty-changeset"].map(str::to_owned).to_vec();
    if !overrides.is_empty() {
        args.push("--parameter-overrides".to_owned());
        args.extend(overrides.iter().map(|parameter| sam_parameter(parameter)));
    }
    if options.no_confirm_changeset {
        args.push("--no-confirm-changeset".to_owned());
    }
    args
}

pub async fn deploy(options: Options, aws: &aws_config::SdkConfig, out: &mut impl Write) -> Result<(), AdminError> {
    for parameter in &options.parameters {
        if parameter.split_once('=').is_none_or(|(name, _)| name.is_empty()) {
            return Err(AdminError::Usage(format!("--parameter {parameter:?}: expected Name=Value")));
        }
    }
    let sam = options.sam.as_str();
    let list: Vec<String> =
        ["list", "stack-outputs", "--stack-name", &options.stack_name, "--output", "json"].map(str::to_owned).to_vec();
    let outputs_file = options.outputs_file.display().to_string();

    if options.dry_run {
        let mut ids: Vec<String> = TWILIO_IDS
            .iter()
            .map(|(parameter, variable, _)| {
                format!("{parameter}={}", from_env(variable).unwrap_or(format!("<{variable}>")))
            })
            .collect();
        ids.extend(options.parameters.iter().cloned());
        let sids = [wire::CUSTOMER_APP_PARAMETER, wire::AGENT_APP_PARAMETER].map(|p| format!("{p}=<the-app-SID>"));
        writeln!(out, "make deploy would run:")?;
        writeln!(out, "  {sam} {}   (does the stack exist? a new one needs the Twilio ids)", shell_words(&list))?;
        writeln!(out, "  {sam} build")?;
        writeln!(out, "  {sam} {}", shell_words(&deploy_args(&options, &ids)))?;
        writeln!(out, "  {sam} {} > {outputs_file}", shell_words(&list))?;
        writeln!(
            out,
            "  store the Twilio Auth Token and API key in the TwilioAuthTokenSecretArn and TwilioApiKeySecretArn \
             secrets: from TWILIO_AUTH_TOKEN, TWILIO_API_KEY and TWILIO_API_SECRET, else asked for without echo, \
             unless they hold them already"
        )?;
        writeln!(out, "  warmline-admin wire-twilio --stack-outputs {outputs_file}")?;
        writeln!(
            out,
            "  {sam} {}   (when wire-twilio created or found other TwiML Apps than the stack runs with)",
            shell_words(&deploy_args(&options, &sids))
        )?;
        writeln!(out, "Dry run: nothing ran.")?;
        return Ok(());
    }

    let new_stack = stack_outputs(sam, &list, false).is_err();
    let mut overrides = twilio_ids(new_stack)?;
    overrides.extend(options.parameters.iter().cloned());
    run(sam, &["build".to_owned()], out)?;
    run(sam, &deploy_args(&options, &overrides), out)?;
    writeln!(out, "$ {sam} {} > {outputs_file}", shell_words(&list))?;
    let outputs = save_outputs(sam, &list, &options.outputs_file)?;

    let secrets = aws_sdk_secretsmanager::Client::new(aws);
    store_secrets_if_needed(&secrets, &outputs, options.set_secrets, out).await?;
    let wiring = wire::Options { outputs, api_base_url: options.api_base_url.clone(), secret_id: None, dry_run: false };
    let wired = wire_twilio(&secrets, wiring, out).await?;
    if !wired.stack_is_current {
        run(sam, &deploy_args(&options, &wired.parameters), out)?;
        save_outputs(sam, &list, &options.outputs_file)?;
    }
    writeln!(
        out,
        "Deployed {} and wired Twilio to it. Add agents: make agent ARGS=\"--table <AgentsTableName> add agent1 --name \
         'First Agent'\"",
        options.stack_name
    )?;
    Ok(())
}

/// The stack's outputs; `Err` when there is no such stack (or no AWS to ask). `loud` shows
/// `sam`'s own complaints.
fn stack_outputs(sam: &str, list: &[String], loud: bool) -> Result<(String, StackOutputs), AdminError> {
    let listed = Command::new(sam)
        .args(list)
        .stderr(if loud { Stdio::inherit() } else { Stdio::null() })
        .output()
        .map_err(|err| AdminError::Usage(format!("cannot run {sam}: {err}")))?;
    if !listed.status.success() {
        return Err(AdminError::Usage(format!("{sam} list stack-outputs failed ({})", listed.status)));
    }
    let text = String::from_utf8_lossy(&listed.stdout).into_owned();
    let outputs = StackOutputs::parse(&text).map_err(|why| AdminError::Usage(format!("the stack outputs: {why}")))?;
    Ok((text, outputs))
}

fn save_outputs(sam: &str, list: &[String], file: &std::path::Path) -> Result<StackOutputs, AdminError> {
    let (text, outputs) = stack_outputs(sam, list, true)?;
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(file, text)?;
    Ok(outputs)
}

/// Each Twilio secret from the environment when given there (written only if it differs),
/// else asked for when its secret lacks it or `ask_again`, else kept.
async fn store_secrets_if_needed(
    client: &aws_sdk_secretsmanager::Client,
    outputs: &StackOutputs,
    ask_again: bool,
    out: &mut impl Write,
) -> Result<(), AdminError> {
    let ids = outputs.require(&["TwilioAuthTokenSecretArn", "TwilioApiKeySecretArn"])?;
    let (auth_id, key_id) = (ids[0].to_owned(), ids[1].to_owned());
    let mut to_ask = TwilioSecretIds { auth_token: None, api_key: None };
    let given = [
        (auth_id.as_str(), SecretKind::TwilioAuthToken, vec![("TWILIO_AUTH_TOKEN", from_env("TWILIO_AUTH_TOKEN"))]),
        (
            key_id.as_str(),
            SecretKind::TwilioApiKey,
            vec![("TWILIO_API_KEY", from_env("TWILIO_API_KEY")), ("TWILIO_API_SECRET", from_env("TWILIO_API_SECRET"))],
        ),
    ];
    for (secret_id, kind, values) in given {
        let current = secret_object::read(client, secret_id).await?;
        if values.iter().all(|(_, value)| value.is_some()) {
            let values: Vec<(&str, String)> =
                values.into_iter().map(|(name, value)| (name, value.unwrap_or_default())).collect();
            if values.iter().any(|(name, value)| secret_object::value(&current, name) != Some(value.as_str())) {
                secrets::store(client, secret_id, kind, &values).await?;
                writeln!(out, "stored {} in {secret_id}", kind.names().join(" and "))?;
            }
        } else if ask_again || kind.names().iter().any(|name| secret_object::value(&current, name).is_none()) {
            match kind {
                SecretKind::TwilioAuthToken => to_ask.auth_token = Some(secret_id.to_owned()),
                _ => to_ask.api_key = Some(secret_id.to_owned()),
            }
        }
    }
    if to_ask.auth_token.is_none() && to_ask.api_key.is_none() {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(AdminError::Usage(
            "the stack's Twilio secrets are not filled in: set TWILIO_AUTH_TOKEN, TWILIO_API_KEY and \
             TWILIO_API_SECRET, or run this on a terminal to be asked for them"
                .into(),
        ));
    }
    // Asked on the terminal without echo, as `set-twilio-secrets` asks.
    secrets::set_twilio_secrets(client, to_ask, false, out).await
}

fn run(program: &str, args: &[String], out: &mut impl Write) -> Result<(), AdminError> {
    writeln!(out, "$ {program} {}", shell_words(args))?;
    out.flush()?;
    let status = Command::new(program)
        .args(args)
        .status()
        .map_err(|err| AdminError::Usage(format!("cannot run {program}: {err}")))?;
    if !status.success() {
        return Err(AdminError::Usage(format!(
            "{program} {} failed ({status})",
            args.first().map_or("", String::as_str)
        )));
    }
    Ok(())
}

/// Arguments as a shell would need them typed.
fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|arg| {
            if !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_=+./:<>@,".contains(c)) {
                arg.clone()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_a_shell_would_split() {
        let args = ["deploy", "BusinessHours=Mon-Fri 09:00-17:00 Europe/Berlin", "it's"].map(str::to_owned);
        assert_eq!(shell_words(&args), r"deploy 'BusinessHours=Mon-Fri 09:00-17:00 Europe/Berlin' 'it'\''s'");
    }

    #[test]
    fn values_with_spaces_reach_sam_whole() {
        assert_eq!(sam_parameter("AlarmEmail=ops@example.com"), "AlarmEmail=ops@example.com");
        assert_eq!(
            sam_parameter("BusinessHours=Mon-Fri 09:00-17:00 Europe/Berlin"),
            r#"BusinessHours="Mon-Fri 09:00-17:00 Europe/Berlin""#
        );
        assert_eq!(
            sam_parameter(r#"FallbackMessage=We are "closed" \ sorry"#),
            r#"FallbackMessage="We are \"closed\" \\ sorry""#
        );
    }

    #[test]
    fn checks_the_twilio_ids() {
        assert!(check_id("TwilioAccountSid", &format!("AC{}", "a".repeat(32))).is_ok());
        assert!(check_id("TwilioAccountSid", "AC123").is_err());
        assert!(check_id("TwilioNumber", "+15551234567").is_ok());
        assert!(check_id("TwilioNumber", "555-1234").is_err());
    }
}
