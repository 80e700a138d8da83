//! Every function by name: the upstreams it opens during init and the handler it serves. One
//! release binary (`lambda/`, `WARMLINE_FUNCTION` names the function) serves them all in
//! Lambda, so the release build links once, not once per function; `functions/<name>` stays a
//! binary of its own for `cargo lambda watch` and the tools that run a function by name.

use std::fmt;

use lambda_http::{Body, Error, Request, Response};

use crate::App;
use crate::app::Upstream;
use crate::handlers;

/// The environment variable that names the function the release binary serves (template.yaml
/// sets it on every function).
pub const VARIABLE: &str = "WARMLINE_FUNCTION";

/// A function: its name is its folder under `functions/`, its binary's name and its
/// `WARMLINE_FUNCTION`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    CallConnect,
    ConferenceCallAgent,
    ConferenceConnectAgent,
    ConferenceConnectClient,
    ConferenceEvents,
    ConferenceWait,
    Pages,
    Presence,
    Session,
    Tickets,
    Token,
    Voicemail,
}

impl Function {
    pub const ALL: [Self; 12] = [
        Self::CallConnect,
        Self::ConferenceCallAgent,
        Self::ConferenceConnectAgent,
        Self::ConferenceConnectClient,
        Self::ConferenceEvents,
        Self::ConferenceWait,
        Self::Pages,
        Self::Presence,
        Self::Session,
        Self::Tickets,
        Self::Token,
        Self::Voicemail,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::CallConnect => "call-connect",
            Self::ConferenceCallAgent => "conference-call-agent",
            Self::ConferenceConnectAgent => "conference-connect-agent",
            Self::ConferenceConnectClient => "conference-connect-client",
            Self::ConferenceEvents => "conference-events",
            Self::ConferenceWait => "conference-wait",
            Self::Pages => "pages",
            Self::Presence => "presence",
            Self::Session => "session",
            Self::Tickets => "tickets",
            Self::Token => "token",
            Self::Voicemail => "voicemail",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|function| function.name() == name)
    }

    /// The connections init opens (`App::warm_up`): those its first request is likely to use.
    pub fn upstreams(self) -> &'static [Upstream] {
        use Upstream::{DynamoDb, Twilio};
        match self {
            Self::CallConnect => &[DynamoDb, Twilio],
            Self::ConferenceCallAgent => &[DynamoDb, Twilio],
            Self::ConferenceConnectAgent => &[DynamoDb],
            Self::ConferenceConnectClient => &[DynamoDb, Twilio],
            Self::ConferenceEvents => &[DynamoDb, Twilio],
            // Every hold-music turn reads the customer's conference; some ring an agent or
            // apologise.
            Self::ConferenceWait => &[DynamoDb, Twilio],
            Self::Pages => &[DynamoDb],
            // Becoming available offers the agent a waiting caller at once: a call through Twilio.
            Self::Presence => &[DynamoDb, Twilio],
            Self::Session => &[DynamoDb],
            Self::Tickets => &[DynamoDb],
            Self::Token => &[DynamoDb],
            // Callers' choices and their messages: the Calls and Tickets tables; no Twilio REST
            // call.
            Self::Voicemail => &[DynamoDb],
        }
    }

    /// Answers one request with this function's handler. One future type for every function,
    /// so the release binary holds one copy of the runtime's loop (`lambda::run`): a copy per
    /// handler costs the package 35 KB zipped, which takes it over its 3.5 MB budget
    /// (docs/PERFORMANCE.md). The match costs a request a few instructions and no allocation.
    async fn handle(self, app: &App, req: Request) -> Result<Response<Body>, Error> {
        match self {
            Self::CallConnect => handlers::call_connect::handle(app, req).await,
            Self::ConferenceCallAgent => handlers::conference_call_agent::handle(app, req).await,
            Self::ConferenceConnectAgent => handlers::conference_connect_agent::handle(app, req).await,
            Self::ConferenceConnectClient => handlers::conference_connect_client::handle(app, req).await,
            Self::ConferenceEvents => handlers::conference_events::handle(app, req).await,
            Self::ConferenceWait => handlers::conference_wait::handle(app, req).await,
            Self::Pages => handlers::pages::handle(app, req).await,
            Self::Presence => handlers::presence::handle(app, req).await,
            Self::Session => handlers::session::handle(app, req).await,
            Self::Tickets => handlers::tickets::handle(app, req).await,
            Self::Token => handlers::token::handle(app, req).await,
            Self::Voicemail => handlers::voicemail::handle(app, req).await,
        }
    }
}

/// A function's whole life: logging, the configuration and secrets (`App::from_env`), its
/// warm-up, then its handler until Lambda shuts the instance down. A name no function has fails
/// init at once, before any configuration is read, with the names there are.
pub async fn run(name: &str) -> Result<(), Error> {
    crate::telemetry::init();
    let function = Function::from_name(name).ok_or_else(|| unknown(name))?;
    let app = App::from_env().await?;
    app.warm_up(function.upstreams()).await;
    let app = &app;
    crate::lambda::run(move |req| function.handle(app, req)).await
}

/// The function `WARMLINE_FUNCTION` names, run as [`run`] does (unset reads as no name).
pub async fn run_from_env() -> Result<(), Error> {
    run(&std::env::var(VARIABLE).unwrap_or_default()).await
}

fn unknown(name: &str) -> Error {
    let names: Vec<&str> = Function::ALL.iter().map(|function| function.name()).collect();
    let given = if name.is_empty() { "unset".to_owned() } else { format!("{name:?}") };
    Box::new(UnknownFunction(format!("{VARIABLE} is {given}: it must name one of the functions: {}", names.join(", "))))
}

/// Returned from `main`, an error goes to stderr, which Lambda logs with the failed init; `main`
/// shows it by its `Debug`, so that is the sentence itself, not a quoted string.
struct UnknownFunction(String);

impl fmt::Debug for UnknownFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for UnknownFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UnknownFunction {}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// A function folder the table does not know would deploy a function that fails its init.
    #[test]
    fn the_table_knows_exactly_the_function_folders() {
        let folders = Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions");
        let mut on_disk: Vec<String> = std::fs::read_dir(&folders)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.join("Cargo.toml").is_file())
            .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut known: Vec<String> = Function::ALL.iter().map(|function| function.name().to_owned()).collect();
        known.sort();
        known.dedup();
        assert_eq!(known.len(), Function::ALL.len(), "two functions share a name");
        assert_eq!(known, on_disk);
    }

    #[test]
    fn each_function_is_found_by_its_name() {
        for function in Function::ALL {
            assert_eq!(Function::from_name(function.name()), Some(function));
        }
        assert_eq!(Function::from_name("Pages"), None);
        assert_eq!(Function::from_name(""), None);
    }

    /// Every function's first request reads or writes DynamoDB.
    #[test]
    fn every_function_warms_dynamodb() {
        for function in Function::ALL {
            assert!(function.upstreams().contains(&Upstream::DynamoDb), "{}", function.name());
        }
    }

    #[tokio::test]
    async fn an_unknown_name_fails_init_with_the_names_there_are() {
        let error = run("no-such-function").await.unwrap_err().to_string();
        assert!(error.contains("\"no-such-function\""), "{error}");
        assert!(error.contains(VARIABLE), "{error}");
        assert!(error.contains("conference-wait"), "{error}");
        let unset = run("").await.unwrap_err();
        assert!(format!("{unset:?}").starts_with("WARMLINE_FUNCTION is unset: "), "{unset:?}");
    }
}
