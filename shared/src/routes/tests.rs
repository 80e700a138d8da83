use std::collections::BTreeSet;

use lambda_http::RequestExt as _;

use super::*;
use crate::testkit::event;

fn call(n: u32) -> CallSid {
    CallSid::parse(&format!("CA{n:032x}")).unwrap()
}

fn agent(id: &str) -> AgentId {
    AgentId::parse(id).unwrap()
}

/// One route of every kind.
fn every_route() -> Vec<Route> {
    vec![
        Route::Home,
        Route::Dashboard,
        Route::Asset { file: "styles.0123456789abcdef.css".into() },
        Route::Login,
        Route::Logout,
        Route::Tickets,
        Route::TicketRecording { ticket: crate::domain::TicketId::parse("01J00000000000000000000001").unwrap() },
        Route::TicketStatus { ticket: crate::domain::TicketId::parse("01J00000000000000000000001").unwrap() },
        Route::TicketNotes { ticket: crate::domain::TicketId::parse("01J00000000000000000000001").unwrap() },
        Route::TicketCalls { ticket: crate::domain::TicketId::parse("01J00000000000000000000001").unwrap() },
        Route::CallsCsv,
        Route::Token,
        Route::Presence,
        Route::Wallboard,
        Route::CurrentCall,
        Route::CallAction { call: call(5), action: CallAction::Hold },
        Route::CallAction { call: call(5), action: CallAction::Transfer },
        Route::BrowserCall,
        Route::AgentBrowserCall,
        Route::CustomerAnswers { agent: agent("agent1") },
        Route::CustomerCallStatus { agent: agent("agent1") },
        Route::PhoneCall,
        Route::HoldMusic { returning: false },
        Route::HoldMusic { returning: true },
        Route::AgentJoin { conference: call(1), agent: agent("agent1") },
        Route::DialColleague { agent: agent("agent1") },
        Route::ConferenceEvents { conference: call(2) },
        Route::AgentCallStatus { conference: call(3), agent: agent("agent_2") },
        Route::VoicemailChoice { conference: call(4) },
        Route::BackInLine { conference: call(4) },
        Route::VoicemailDone { conference: call(4) },
        Route::VoicemailRecorded { conference: call(4) },
    ]
}

#[test]
fn every_route_has_a_row_and_every_row_a_route() {
    let rows: BTreeSet<&str> = every_route().iter().map(|route| route.endpoint().path).collect();
    let table: BTreeSet<&str> = ENDPOINTS.iter().map(|endpoint| endpoint.path).collect();
    assert_eq!(rows, table);
    assert_eq!(table.len(), ENDPOINTS.len(), "each path is one row");
}

#[test]
fn every_route_parses_back_from_the_path_it_builds() {
    for route in every_route() {
        for method in route.endpoint().methods() {
            let path = route.path();
            assert_eq!(Route::of(&event(method, &path, &[], b"")), Ok(route.clone()), "{method} {path}");
        }
    }
}

#[test]
fn builds_the_paths_twilio_and_browsers_use() {
    assert_eq!(Route::Home.path(), "/");
    assert_eq!(Route::HoldMusic { returning: true }.path(), "/conference/wait?held=1");
    assert_eq!(
        Route::AgentCallStatus { conference: call(3), agent: agent("agent_2") }.path(),
        format!("/conference/{}/agents/agent_2/status", call(3))
    );
    assert_eq!(Route::sign_in_then(&Route::Dashboard), "/login?next=%2Fdashboard");
}

#[test]
fn takes_api_gateways_path_parameters_where_it_gives_them() {
    let path = format!("/conference/{}/connect/agent1", call(1));
    let given: std::collections::HashMap<String, String> =
        [("conference_id".to_owned(), call(1).to_string()), ("agent_id".to_owned(), "agent1".to_owned())].into();
    let request = event("POST", &path, &[], b"").with_path_parameters(given);
    assert_eq!(Route::of(&request), Ok(Route::AgentJoin { conference: call(1), agent: agent("agent1") }));
}

#[test]
fn refuses_unknown_paths_other_methods_and_malformed_parameters() {
    for path in
        ["/nope", "/dashboard/", "/static/", "/static", "/conference", "/conference/wait/x", "//", "/index.html"]
    {
        assert_eq!(Route::of(&event("GET", path, &[], b"")), Err(RouteError::NotFound), "{path}");
    }
    assert_eq!(
        Route::of(&event("DELETE", "/login", &[], b"")),
        Err(RouteError::MethodNotAllowed { allow: "GET, POST" })
    );
    assert_eq!(
        Route::of(&event("GET", "/conference/wait", &[], b"")),
        Err(RouteError::MethodNotAllowed { allow: "POST" })
    );
    for (path, parameter) in [
        ("/conference/CA123/connect/agent1".to_owned(), "conference_id"),
        (format!("/conference/{}/connect/agent%201", call(1)), "agent_id"),
        (format!("/conference/{}/agents/customer_1/status", call(1)), "agent_id"),
        ("/conference/CA123/events".to_owned(), "conference_id"),
    ] {
        assert_eq!(Route::of(&event("POST", &path, &[], b"")), Err(RouteError::BadParameter(parameter)), "{path}");
    }
}

/// The copies of the table outside Rust, as `scripts/routes.py` reads them: template.yaml's
/// HttpApi events (and its throttled routes), the `cargo lambda watch` router, the README.
#[test]
fn every_copy_of_the_route_table_agrees() {
    let output = crate::test_support::run_python(
        "import runpy, sys; sys.argv = ['routes.py', '--copies']; runpy.run_path('scripts/routes.py', run_name='__main__')",
        "",
    );
    let copies: serde_json::Value = serde_json::from_str(&output).unwrap();
    let mut table: Vec<Vec<String>> = ENDPOINTS
        .iter()
        .flat_map(|endpoint| {
            endpoint
                .methods()
                .map(|method| vec![method.to_owned(), endpoint.path.to_owned(), endpoint.function.to_owned()])
        })
        .collect();
    table.sort();
    for copy in ["template", "watch", "readme"] {
        let routes: Vec<Vec<String>> = serde_json::from_value(copies[copy].clone()).unwrap();
        assert_eq!(routes, table, "{copy} differs from shared/src/routes.rs");
    }
    let known: BTreeSet<String> = table.iter().map(|route| format!("{} {}", route[0], route[1])).collect();
    for throttled in copies["throttled"].as_array().unwrap() {
        assert!(known.contains(throttled.as_str().unwrap()), "template.yaml throttles {throttled}, which is no route");
    }
}
