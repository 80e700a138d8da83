//! `wire-twilio`: points the support number and Warmline's two TwiML Apps at a deployed stack
//! through Twilio's REST API, creating the apps when the account has none for the stack.
//!
//! - The customers' app (stack parameter `TwilioTwimlAppSid`) asks `/call/connect` what to do
//!   with a call the customer page places; the agents' app (`TwilioAgentTwimlAppSid`) asks
//!   `/call/agent`. The number asks `/conference/connect/client`. All three fall back to the
//!   stack's static TwiML document (`FallbackTwimlUrl`, fetched with GET) when Warmline fails.
//! - The functions read the apps' SIDs from those two stack parameters (their environment). An
//!   app is found by the SID the stack has, else by its name (`Warmline customers (<stack>)`),
//!   else created; when the stack runs with other SIDs than the apps found, the answer says so
//!   and `make deploy` deploys again with them: nobody copies a SID by hand.
//! - Everything is read and checked before anything changes: the credentials, the number (in
//!   the account, not on a SIP trunk), the fallback document (reachable, TwiML), and the
//!   permission to update the number. Then the plan is printed and carried out; a second run
//!   finds nothing to change and says so. `--dry-run` stops after the plan.
//! - Should Twilio refuse a step half-way, the error names what was changed before it and what
//!   was not; running again finishes the job (each step only brings a value to what it
//!   should be).
//! - The number's StatusCallback is left as it is: Warmline learns how a call goes from its
//!   conference's callbacks, so a status callback on the number would have no route to reach.

use std::io::Write;
use std::time::Duration;

use serde_json::Value;
use shared::routes::Route;
use shared::secret::Secret;

use crate::AdminError;
use crate::outputs::{API_KEY_SECRET_OUTPUTS, StackOutputs, WIRING_OUTPUTS};
use crate::secret_object;
use crate::twilio::{Failure, Twilio, field, items};

/// The stack parameters (and outputs) that hold the TwiML Apps' SIDs.
pub const CUSTOMER_APP_PARAMETER: &str = "TwilioTwimlAppSid";
pub const AGENT_APP_PARAMETER: &str = "TwilioAgentTwimlAppSid";

/// Twilio's limit for a FriendlyName.
const MAX_FRIENDLY_NAME: usize = 64;

pub struct Options {
    pub outputs: StackOutputs,
    pub api_base_url: String,
    /// Where the API Key secret comes from; by default the stack's (`TwilioApiKeySecretArn`, or
    /// `SecretsArn`).
    pub secret_id: Option<String>,
    pub dry_run: bool,
}

/// The TwiML Apps' SIDs after wiring, as `Name=Value` stack parameters, and whether the stack
/// runs with them already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wired {
    pub parameters: Vec<String>,
    pub stack_is_current: bool,
}

/// One of the two TwiML Apps.
struct Role {
    /// How the plan names it.
    label: &'static str,
    parameter: &'static str,
    path: &'static str,
}

/// A value to set: the REST parameter, the resource's field, the value Warmline needs.
struct Wanted {
    param: &'static str,
    field: &'static str,
    value: String,
}

#[derive(Debug, Clone)]
struct Change {
    param: &'static str,
    from: Option<String>,
    to: String,
}

enum Step {
    CreateApp { role: usize, name: String, form: Vec<(&'static str, String)> },
    UpdateApp { role: usize, sid: String, changes: Vec<Change> },
    UpdateNumber { sid: String, changes: Vec<Change> },
}

fn roles() -> [Role; 2] {
    [
        Role { label: "customers", parameter: CUSTOMER_APP_PARAMETER, path: Route::BrowserCall.endpoint().path },
        Role { label: "agents", parameter: AGENT_APP_PARAMETER, path: Route::AgentBrowserCall.endpoint().path },
    ]
}

/// `Warmline customers (<stack>)`, cut to Twilio's 64 characters.
fn friendly_name(role: &Role, stack: &str) -> String {
    let name = format!("Warmline {} ({stack})", role.label);
    if name.chars().count() <= MAX_FRIENDLY_NAME {
        return name;
    }
    let head: String = name.chars().take(MAX_FRIENDLY_NAME - 1).collect();
    format!("{head})")
}

fn voice(url: String, fallback: &str) -> Vec<Wanted> {
    vec![
        Wanted { param: "VoiceUrl", field: "voice_url", value: url },
        Wanted { param: "VoiceMethod", field: "voice_method", value: "POST".into() },
        // S3 serves the static document to GET only.
        Wanted { param: "VoiceFallbackUrl", field: "voice_fallback_url", value: fallback.to_owned() },
        Wanted { param: "VoiceFallbackMethod", field: "voice_fallback_method", value: "GET".into() },
    ]
}

fn changes(resource: &Value, wanted: &[Wanted]) -> Vec<Change> {
    wanted
        .iter()
        .filter(|w| field(resource, w.field).unwrap_or_default() != w.value)
        .map(|w| Change { param: w.param, from: field(resource, w.field).map(str::to_owned), to: w.value.clone() })
        .collect()
}

fn describe(changes: &[Change]) -> String {
    changes
        .iter()
        .map(|c| {
            let to = if c.to.is_empty() { "(unset)" } else { c.to.as_str() };
            format!("{} {} -> {to}", c.param, c.from.as_deref().unwrap_or("(unset)"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn form(changes: &[Change]) -> Vec<(&str, &str)> {
    changes.iter().map(|c| (c.param, c.to.as_str())).collect()
}

pub async fn wire_twilio(
    secrets: &aws_sdk_secretsmanager::Client,
    options: Options,
    out: &mut impl Write,
) -> Result<Wired, AdminError> {
    let outputs = &options.outputs;
    let values = outputs.require(&WIRING_OUTPUTS)?;
    let [stack, base, fallback, account, number] = values[..] else {
        return Err(AdminError::Usage("the stack outputs are incomplete".into()));
    };
    let base = base.trim_end_matches('/');
    let roles = roles();
    let secret_id = match options.secret_id.as_deref() {
        Some(id) => id,
        None => API_KEY_SECRET_OUTPUTS.iter().find_map(|name| outputs.get(name)).ok_or_else(|| {
            AdminError::Usage(
                "the stack outputs name no secret (TwilioApiKeySecretArn): deploy this version first".into(),
            )
        })?,
    };
    let secret = secret_object::read(secrets, secret_id).await?;
    // The key's SID lives with its secret; a stack with one secret for all has it as an output.
    let key = secret_object::value(&secret, "TWILIO_API_KEY").or_else(|| outputs.get("TwilioApiKey"));
    let (Some(key), Some(api_secret)) = (key, secret_object::value(&secret, "TWILIO_API_SECRET")) else {
        return Err(AdminError::Usage(format!(
            "{secret_id} holds no Twilio API key yet: store it first (make agent ARGS=\"set-twilio-secrets \
             --api-key-secret-id {secret_id}\"; make deploy asks for it)"
        )));
    };
    let twilio =
        Twilio::new(&options.api_base_url, account, key, Secret::new(api_secret)).map_err(AdminError::Usage)?;

    check_fallback(fallback).await?;
    let number_resource = find_number(&twilio, number).await?;
    let number_sid = field(&number_resource, "sid").unwrap_or_default().to_owned();

    // The plan.
    let mut steps = Vec::new();
    let mut sids: [Option<String>; 2] = [None, None];
    for (index, role) in roles.iter().enumerate() {
        let name = friendly_name(role, stack);
        let wanted = voice(format!("{base}{}", role.path), fallback);
        match find_app(&twilio, outputs.get(role.parameter), &name).await? {
            Some(app) => {
                let sid = field(&app, "sid").unwrap_or_default().to_owned();
                let changes = changes(&app, &wanted);
                if !changes.is_empty() {
                    steps.push(Step::UpdateApp { role: index, sid: sid.clone(), changes });
                }
                sids[index] = Some(sid);
            }
            None => {
                let mut form = vec![("FriendlyName", name.clone())];
                form.extend(wanted.into_iter().map(|w| (w.param, w.value)));
                steps.push(Step::CreateApp { role: index, name, form });
            }
        }
    }
    let mut wanted = voice(format!("{base}{}", Route::PhoneCall.endpoint().path), fallback);
    // An application on the number would answer its calls instead of its own Voice URL.
    wanted.push(Wanted { param: "VoiceApplicationSid", field: "voice_application_sid", value: String::new() });
    let number_changes = changes(&number_resource, &wanted);
    if !number_changes.is_empty() {
        steps.push(Step::UpdateNumber { sid: number_sid.clone(), changes: number_changes });
    }

    if steps.is_empty() {
        writeln!(out, "Twilio is wired to {base} already: nothing changed.")?;
        return report_sids(&roles, &sids, outputs, out);
    }
    writeln!(out, "To wire Twilio account {account} to {base}:")?;
    for step in &steps {
        let line = match step {
            Step::CreateApp { name, form, .. } => {
                let settings: Vec<String> = form.iter().skip(1).map(|(p, v)| format!("{p}={v}")).collect();
                format!("create the TwiML App \"{name}\": {}", settings.join(" "))
            }
            Step::UpdateApp { role, sid, changes } => {
                format!("update the {} TwiML App {sid}: {}", roles[*role].label, describe(changes))
            }
            Step::UpdateNumber { changes, .. } => format!("update the number {number}: {}", describe(changes)),
        };
        writeln!(out, "  - {line}")?;
    }
    if options.dry_run {
        writeln!(out, "Dry run: nothing changed.")?;
        return report_sids(&roles, &sids, outputs, out);
    }

    // A key that may read the number but not change it is found out before anything changes.
    if steps.iter().any(|step| matches!(step, Step::UpdateNumber { .. })) {
        twilio
            .post(&format!("IncomingPhoneNumbers/{number_sid}.json"), &[])
            .await
            .map_err(|failure| stopped(&twilio.explain(&failure, "checking that the number may be changed"), &[]))?;
    }
    let mut done: Vec<String> = Vec::new();
    for step in steps {
        let outcome = match step {
            Step::CreateApp { role, name, form } => {
                let form: Vec<(&str, &str)> = form.iter().map(|(p, v)| (*p, v.as_str())).collect();
                match twilio.post("Applications.json", &form).await {
                    Ok(app) => {
                        let sid = field(&app, "sid").unwrap_or_default().to_owned();
                        sids[role] = Some(sid.clone());
                        Ok(format!("created the TwiML App \"{name}\" ({sid})"))
                    }
                    Err(failure) => Err(twilio.explain(&failure, "creating a TwiML App")),
                }
            }
            Step::UpdateApp { role, sid, changes } => {
                match twilio.post(&format!("Applications/{sid}.json"), &form(&changes)).await {
                    Ok(_) => Ok(format!("updated the {} TwiML App {sid}: {}", roles[role].label, describe(&changes))),
                    Err(failure) => Err(twilio.explain(&failure, "updating a TwiML App")),
                }
            }
            Step::UpdateNumber { sid, changes } => {
                match twilio.post(&format!("IncomingPhoneNumbers/{sid}.json"), &form(&changes)).await {
                    Ok(_) => Ok(format!("updated the number {number}: {}", describe(&changes))),
                    Err(failure) => Err(twilio.explain(&failure, "updating the number")),
                }
            }
        };
        match outcome {
            Ok(line) => {
                writeln!(out, "{line}")?;
                done.push(line);
            }
            Err(why) => return Err(stopped(&why, &done)),
        }
    }
    writeln!(out, "Twilio is wired to {base}.")?;
    report_sids(&roles, &sids, outputs, out)
}

/// The apps' SIDs as stack parameters, and what to do when the stack runs with others. An app
/// still to be created (a dry run) has none yet.
fn report_sids(
    roles: &[Role; 2],
    sids: &[Option<String>; 2],
    outputs: &StackOutputs,
    out: &mut impl Write,
) -> Result<Wired, AdminError> {
    let parameters: Vec<String> = roles
        .iter()
        .zip(sids)
        .map(|(role, sid)| format!("{}={}", role.parameter, sid.as_deref().unwrap_or("<to be created>")))
        .collect();
    let stack_is_current =
        roles.iter().zip(sids).all(|(role, sid)| sid.is_some() && outputs.get(role.parameter) == sid.as_deref());
    if !stack_is_current {
        writeln!(
            out,
            "The stack's functions use other TwiML Apps: deploy again with --parameter-overrides {} (make deploy \
             does this itself).",
            parameters.join(" ")
        )?;
    }
    Ok(Wired { parameters, stack_is_current })
}

fn stopped(why: &str, done: &[String]) -> AdminError {
    let changed = if done.is_empty() {
        "Nothing was changed.".to_owned()
    } else {
        format!("Changed before that: {}. Run wire-twilio again to finish.", done.join("; "))
    };
    AdminError::Wiring(format!("{why}. {changed}"))
}

/// The number's resource, if the account owns it and nothing but its Voice URL answers it.
async fn find_number(twilio: &Twilio, number: &str) -> Result<Value, AdminError> {
    let refused = |failure: Failure| {
        AdminError::Wiring(format!("{}. Nothing was changed.", twilio.explain(&failure, "looking up the number")))
    };
    let page = twilio.get("IncomingPhoneNumbers.json", &[("PhoneNumber", number)]).await.map_err(refused)?;
    let Some(found) = items(&page, "incoming_phone_numbers").iter().find(|n| field(n, "phone_number") == Some(number))
    else {
        let all = twilio.get("IncomingPhoneNumbers.json", &[("PageSize", "50")]).await.map_err(refused)?;
        let numbers: Vec<&str> =
            items(&all, "incoming_phone_numbers").iter().filter_map(|n| field(n, "phone_number")).collect();
        let owned = if numbers.is_empty() {
            "it has no numbers".to_owned()
        } else {
            format!("its numbers: {}", numbers.join(", "))
        };
        return Err(AdminError::Wiring(format!(
            "the number {number} is not in Twilio account {} ({owned}). Fix: deploy with TwilioNumber set to a \
             number of this account, or buy or port {number} into it. Nothing was changed.",
            twilio.account_sid
        )));
    };
    if let Some(trunk) = field(found, "trunk_sid") {
        return Err(AdminError::Wiring(format!(
            "the number {number} belongs to the SIP trunk {trunk}, so Twilio never asks its Voice URL. Fix: remove it \
             from the trunk (Twilio console: Elastic SIP Trunking, the trunk, Numbers), then run this again. Nothing \
             was changed."
        )));
    }
    Ok(found.clone())
}

/// The app whose SID the secret holds, else the one with Warmline's name for it, else none.
async fn find_app(twilio: &Twilio, stored: Option<&str>, name: &str) -> Result<Option<Value>, AdminError> {
    let refused = |failure: Failure| {
        AdminError::Wiring(format!("{}. Nothing was changed.", twilio.explain(&failure, "looking up the TwiML Apps")))
    };
    if let Some(sid) = stored {
        match twilio.get(&format!("Applications/{sid}.json"), &[]).await {
            Ok(app) => return Ok(Some(app)),
            // Deleted since: found by name or made anew.
            Err(Failure::Api { status: 404, .. }) => {}
            Err(failure) => return Err(refused(failure)),
        }
    }
    let page = twilio.get("Applications.json", &[("FriendlyName", name)]).await.map_err(refused)?;
    Ok(items(&page, "applications").first().cloned())
}

/// Twilio fetches the fallback document exactly when Warmline cannot answer: it must be there
/// and be TwiML before any number points at it.
async fn check_fallback(url: &str) -> Result<(), AdminError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|err| AdminError::Usage(format!("cannot set up HTTPS: {err}")))?;
    let response = client.get(url).send().await.map_err(|err| {
        AdminError::Wiring(format!("cannot fetch the fallback document {url}: {err}. Nothing was changed."))
    })?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status.is_success() && body.contains("<Response") {
        return Ok(());
    }
    let hint = if status == reqwest::StatusCode::FORBIDDEN {
        " S3 refuses to serve it to the public: an account-wide S3 Block Public Access setting overrides the \
         bucket's own. Fix: allow public bucket policies for this account (S3 console: Block Public Access settings \
         for this account), or point FallbackTwimlUrl elsewhere."
    } else {
        " Fix: deploy the stack again (the document is written when the stack is created or updated)."
    };
    Err(AdminError::Wiring(format!(
        "the fallback document {url} answered {status} and no TwiML, so Twilio could not play it either.{hint} \
         Nothing was changed."
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn friendly_names_fit_twilios_limit() {
        let role = Role { label: "customers", parameter: CUSTOMER_APP_PARAMETER, path: "/call/connect" };
        assert_eq!(friendly_name(&role, "warmline"), "Warmline customers (warmline)");
        let long = friendly_name(&role, &"s".repeat(128));
        assert_eq!(long.chars().count(), 64);
        assert!(long.starts_with("Warmline customers (sss") && long.ends_with("s)"));
    }

    #[test]
    fn a_change_is_only_what_differs_and_unset_is_empty() {
        let resource = serde_json::json!({
            "voice_url": "https://a.example/call/connect",
            "voice_method": "POST",
            "voice_fallback_url": null,
            "voice_fallback_method": "POST",
            "voice_application_sid": "",
        });
        let mut wanted = voice("https://a.example/call/connect".into(), "https://b.example/f.xml");
        wanted.push(Wanted { param: "VoiceApplicationSid", field: "voice_application_sid", value: String::new() });
        assert_eq!(
            describe(&changes(&resource, &wanted)),
            "VoiceFallbackUrl (unset) -> https://b.example/f.xml, VoiceFallbackMethod POST -> GET"
        );
    }
}
