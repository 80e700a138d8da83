//! The call ledger as agents read it, from the `tickets` function:
//! - `GET /tickets/{ticket_id}/calls[?cursor=]`: the ticket's calls (of its phone number, or of
//!   its browser caller), newest first, `TICKET_CALLS_PER_PAGE` a page, with `next` (a cursor)
//!   when more follow.
//! - `GET /calls.csv?from=YYYY-MM-DD&to=YYYY-MM-DD[&cursor=]`: the calls that began on those
//!   days (the support line's days, at most `MAX_CSV_DAYS`), in the order they began, as CSV
//!   with a header row, `CSV_ROWS_PER_PAGE` rows a response (well inside Lambda's 6 MB), and a
//!   `Link: <…>; rel="next"` header to the next page while more follow.
//!
//! Both for signed-in agents only: a call log holds customers' numbers. Both read indexes,
//! never a scan (`LedgerStore::calls_of`, `calls_on`).

use std::collections::BTreeMap;

use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde_json::json;

use crate::call_flow;
use crate::domain::{self, CallRecord, TicketId};
use crate::error::AppError;
use crate::pipeline::Context;
use crate::routes::Route;
use crate::{App, http, response};

/// The longest range `GET /calls.csv` exports at once, in days.
pub const MAX_CSV_DAYS: i64 = 31;

/// Rows in one response of `GET /calls.csv`: each is a read of the call's events, and a page
/// stays far below Lambda's 6 MB (a row is a few hundred bytes).
pub const CSV_ROWS_PER_PAGE: u32 = 100;

/// The columns of `GET /calls.csv`, in order.
pub const CSV_HEADER: &str = "call_id,direction,channel,started_at,ended_at,caller,agents,waited_seconds,\
talked_seconds,holds,transfers,outcome,recording_url";

fn invalid(field: &str, why: &str) -> AppError {
    AppError::invalid_fields(BTreeMap::from([(field.to_owned(), why.to_owned())]))
}

/// `GET /tickets/{ticket_id}/calls`.
pub(super) async fn ticket_calls(app: &App, ctx: &Context<'_>, id: &TicketId) -> Result<Response<Body>, AppError> {
    ctx.agent().await?;
    let before = match http::query_params(ctx.req).get("cursor").filter(|cursor| !cursor.is_empty()) {
        None => None,
        Some(cursor) => Some(
            http::decode_cursor(cursor)
                .filter(|position| domain::parse_started_key(position).is_some())
                .ok_or_else(|| invalid("cursor", "is not a cursor from a previous page"))?,
        ),
    };
    let ticket = app.tickets.ticket(id).await?.ok_or_else(|| AppError::NotFound("no such ticket".into()))?;
    let (calls, next) = call_flow::ticket_calls(app, &ticket, before.as_deref()).await?;
    Ok(response::json(
        StatusCode::OK,
        &json!({
            "calls": calls.iter().map(call_json).collect::<Vec<_>>(),
            "next": next.map(|position| http::encode_cursor(&position)),
        }),
    ))
}

/// Whole seconds, to the nearest.
fn seconds(ms: i64) -> i64 {
    (ms + 500).div_euclid(1000)
}

fn recording_url(record: &CallRecord) -> Option<String> {
    record.voicemail_ticket.clone().map(|ticket| Route::TicketRecording { ticket }.path())
}

/// A call as the dashboard reads it.
fn call_json(record: &CallRecord) -> serde_json::Value {
    json!({
        "call_id": record.call.as_str(),
        "direction": record.channel.direction(),
        "channel": record.channel.as_str(),
        "started_at": domain::rfc3339(record.started_ms.div_euclid(1000)),
        "ended_at": record.ended_ms.map(|ms| domain::rfc3339(ms.div_euclid(1000))),
        "caller": record.caller,
        "agents": record.agents.iter().map(|role| json!({"agent": role.agent, "role": role.role})).collect::<Vec<_>>(),
        "waited_seconds": record.waited_ms.map(seconds),
        "talked_seconds": record.talked_ms.map(seconds),
        "holds": record.holds,
        "transfers": record.transfers,
        "outcome": record.outcome.as_str(),
        "recording_url": recording_url(record),
    })
}

/// Where an export page starts: a day of the range, and the index position on it after which
/// the page's first call comes (none: the day's first call).
#[derive(Debug, Clone, PartialEq, Eq)]
struct CsvCursor {
    day: jiff::civil::Date,
    after: Option<String>,
}

impl CsvCursor {
    fn encode(&self) -> String {
        http::encode_cursor(&format!("{}|{}", self.day, self.after.as_deref().unwrap_or_default()))
    }

    fn decode(cursor: &str) -> Option<Self> {
        let text = http::decode_cursor(cursor)?;
        let (day, after) = text.split_once('|')?;
        let after = match after {
            "" => None,
            position if domain::parse_started_key(position).is_some() => Some(position.to_owned()),
            _ => return None,
        };
        Some(Self { day: day.parse().ok()?, after })
    }
}

/// `from` and `to` of an export, checked: days, in order, at most `MAX_CSV_DAYS` apart.
fn export_range(query: &BTreeMap<String, String>) -> Result<(jiff::civil::Date, jiff::civil::Date), AppError> {
    let mut errors = BTreeMap::new();
    let mut day = |name: &str| match query.get(name).map(|value| value.parse::<jiff::civil::Date>()) {
        Some(Ok(day)) if query.get(name).is_some_and(|value| value.len() == 10) => Some(day),
        _ => {
            errors.insert(name.to_owned(), "must be a day, YYYY-MM-DD".to_owned());
            None
        }
    };
    let (from, to) = (day("from"), day("to"));
    if let (Some(from), Some(to)) = (from, to) {
        if to < from {
            errors.insert("to".to_owned(), "must not be before from".to_owned());
        } else if from.until(to).map_or(true, |span| span.get_days() >= i32::try_from(MAX_CSV_DAYS).unwrap_or(31)) {
            errors.insert("to".to_owned(), format!("must be at most {MAX_CSV_DAYS} days from from, counting both"));
        }
    }
    match (from, to) {
        (Some(from), Some(to)) if errors.is_empty() => Ok((from, to)),
        _ => Err(AppError::invalid_fields(errors)),
    }
}

/// `GET /calls.csv`.
pub(super) async fn calls_csv(app: &App, ctx: &Context<'_>) -> Result<Response<Body>, AppError> {
    ctx.agent().await?;
    let query = http::query_params(ctx.req);
    let (from, to) = export_range(&query)?;
    let mut cursor = match query.get("cursor").filter(|cursor| !cursor.is_empty()) {
        None => CsvCursor { day: from, after: None },
        Some(cursor) => CsvCursor::decode(cursor)
            .filter(|cursor| (from..=to).contains(&cursor.day))
            .ok_or_else(|| invalid("cursor", "is not a cursor from a previous page of this range"))?,
    };
    let mut body = String::with_capacity(256 * usize::try_from(CSV_ROWS_PER_PAGE).unwrap_or(100));
    body.push_str(CSV_HEADER);
    body.push_str("\r\n");
    let mut rows = 0;
    let next = loop {
        let limit = CSV_ROWS_PER_PAGE - rows;
        let (calls, more) = call_flow::calls_on(app, &cursor.day.to_string(), limit, cursor.after.as_deref()).await?;
        rows += u32::try_from(calls.len()).unwrap_or(limit);
        calls.iter().for_each(|record| csv_row(&mut body, record));
        match more {
            Some(after) => cursor.after = Some(after),
            None if cursor.day < to => {
                cursor =
                    CsvCursor { day: cursor.day.tomorrow().map_err(|_| invalid("to", "is out of range"))?, after: None }
            }
            None => break None,
        }
        if rows >= CSV_ROWS_PER_PAGE {
            break Some(cursor);
        }
    };
    let mut answer = response::csv(body, &format!("calls-{from}-{to}.csv"));
    if let Some(next) = next {
        let link = format!("<{}?from={from}&to={to}&cursor={}>; rel=\"next\"", Route::CallsCsv.path(), next.encode());
        if let Ok(link) = HeaderValue::from_str(&link) {
            answer.headers_mut().insert(lambda_http::http::header::LINK, link);
        }
    }
    Ok(answer)
}

/// One call as a CSV row.
fn csv_row(body: &mut String, record: &CallRecord) {
    let agents: Vec<String> = record.agents.iter().map(|role| format!("{}:{}", role.agent, role.role)).collect();
    let optional = |value: Option<i64>| value.map(|v| v.to_string()).unwrap_or_default();
    let fields = [
        record.call.to_string(),
        record.channel.direction().to_owned(),
        record.channel.as_str().to_owned(),
        domain::rfc3339(record.started_ms.div_euclid(1000)),
        record.ended_ms.map(|ms| domain::rfc3339(ms.div_euclid(1000))).unwrap_or_default(),
        record.caller.clone(),
        agents.join(";"),
        optional(record.waited_ms.map(seconds)),
        optional(record.talked_ms.map(seconds)),
        record.holds.to_string(),
        record.transfers.to_string(),
        record.outcome.as_str().to_owned(),
        recording_url(record).unwrap_or_default(),
    ];
    for (n, field) in fields.iter().enumerate() {
        if n > 0 {
            body.push(',');
        }
        body.push_str(&csv_field(field));
    }
    body.push_str("\r\n");
}

/// A CSV field: a value a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, or a tab or
/// carriage return first) gets a leading `'`, and a field with a comma, a quote or a line break
/// is quoted (RFC 4180).
pub fn csv_field(value: &str) -> String {
    let value =
        if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_owned() };
    if value.contains([',', '"', '\n', '\r']) { format!("\"{}\"", value.replace('"', "\"\"")) } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_never_formulas_and_are_quoted_when_they_must_be() {
        assert_eq!(csv_field("+15551230000"), "'+15551230000");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-1"), "'-1");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("agent1:answered;agent2:missed"), "agent1:answered;agent2:missed");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field(""), "");
    }

    fn range(from: &str, to: &str) -> Result<(jiff::civil::Date, jiff::civil::Date), AppError> {
        export_range(&BTreeMap::from([("from".to_owned(), from.to_owned()), ("to".to_owned(), to.to_owned())]))
    }

    fn refused(result: Result<(jiff::civil::Date, jiff::civil::Date), AppError>) -> Vec<String> {
        match result {
            Err(AppError::BadRequest { fields, .. }) => fields.into_keys().collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_export_is_of_at_most_31_days_in_order() {
        assert!(range("2027-01-01", "2027-01-31").is_ok());
        assert!(range("2027-01-15", "2027-01-15").is_ok());
        assert_eq!(refused(range("2027-01-01", "2027-02-01")), ["to"]);
        assert_eq!(refused(range("2027-01-02", "2027-01-01")), ["to"]);
        assert_eq!(refused(range("2027-1-2", "tomorrow")), ["from", "to"]);
        assert_eq!(refused(export_range(&BTreeMap::new())), ["from", "to"]);
    }

    #[test]
    fn cursors_read_back() {
        let day: jiff::civil::Date = "2027-01-15".parse().unwrap();
        let after = domain::started_key(5, &crate::domain::CallSid::parse(&format!("CA{}", "1".repeat(32))).unwrap());
        for cursor in [CsvCursor { day, after: None }, CsvCursor { day, after: Some(after) }] {
            assert_eq!(CsvCursor::decode(&cursor.encode()), Some(cursor));
        }
        assert_eq!(CsvCursor::decode(&http::encode_cursor("2027-01-15|junk")), None);
    }
}
