//! `POST /tickets` files a ticket (form or JSON: `name`, `phone_number`, `description`) and
//! answers 201 with the stored ticket; anyone may, except other sites' pages. A number outside
//! `DIAL_COUNTRIES` is no reason to refuse the ticket, but agents will not call it back: the
//! ticket says so (`outside_dial_countries`), and the dashboard offers no call button. Filed
//! from a number that has an open ticket, the description is appended to that ticket as the
//! customer's note instead (201 all the same, with `added_to_open_ticket`); the answer carries
//! only what this request sent and the open ticket's id, never what the ticket already holds:
//! whoever files may not be whoever filed it.
//!
//! To signed-in agents only (tickets hold customers' phone numbers):
//! - `GET /tickets?status=&limit=&cursor=` lists open tickets newest first, then closed ones
//!   (`status=open` or `closed` for one of them); `?phone=` finds a number's tickets, `?name=`
//!   the tickets whose name starts with a prefix, in any case. Each is paged by `next_cursor`.
//! - `POST /tickets/{ticket_id}/status` (`status`: `open` or `closed`) closes or reopens a
//!   ticket as the signed-in agent; asking for the status it has changes nothing.
//! - `POST /tickets/{ticket_id}/notes` (`note_id`, `text`) appends the agent's note, once per
//!   `note_id`, so a retried request adds nothing.
//! - `GET /tickets/{ticket_id}/recording` serves a voicemail ticket's recording (it stays in
//!   Twilio, behind the account's credentials).

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use serde_json::json;

use crate::domain::{
    self, MAX_NOTES, NewNote, NewTicket, Note, NoteAuthor, NoteId, PhoneNumber, StatusChange, Ticket, TicketId,
    TicketRecord, TicketSearch, TicketStatus,
};
use crate::error::AppError;
use crate::pipeline::{self, Context};
use crate::routes::Route;
use crate::store::{NoteAppended, TicketPage};
use crate::{App, http, response};

mod calls;
pub use calls::{CSV_HEADER, CSV_ROWS_PER_PAGE, MAX_CSV_DAYS};

pub const DEFAULT_PAGE_SIZE: u32 = 20;
pub const MAX_PAGE_SIZE: u32 = 100;
/// Pages of a number's tickets read to find its open one before filing a new ticket instead.
const OPEN_TICKET_PAGES: usize = 5;

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    Ok(pipeline::json(app, &req, async |ctx| match &ctx.route {
        Route::TicketRecording { ticket } => recording(app, ctx, ticket).await,
        Route::TicketStatus { ticket } => change_status(app, ctx, ticket).await,
        Route::TicketNotes { ticket } => add_note(app, ctx, ticket).await,
        Route::TicketCalls { ticket } => calls::ticket_calls(app, ctx, ticket).await,
        Route::CallsCsv => calls::calls_csv(app, ctx).await,
        // The route allows GET and POST only.
        _ if ctx.req.method() == Method::POST => create(app, ctx).await,
        _ => list(app, ctx).await,
    })
    .await)
}

async fn create(app: &App, ctx: &Context<'_>) -> Result<Response<Body>, AppError> {
    ctx.reject_foreign_origin()?;
    let new = NewTicket::parse(&http::fields(ctx.req)?).map_err(AppError::invalid_fields)?;
    let now = app.clock.now_millis();
    let created_at = domain::rfc3339(now.div_euclid(1000));
    let outside_dial_countries = !app.config.dial_countries.allows(&new.phone_number);
    if let Some(open) = open_ticket_for(app, &new.phone_number).await? {
        let note = Note {
            id: NoteId::for_refiling(&new.description),
            author: NoteAuthor::Customer,
            at: created_at.clone(),
            text: new.description.clone(),
        };
        // The very filing that opened the ticket, sent again, is not a second note.
        let added = open.ticket.description == new.description
            || matches!(
                app.tickets.append_note(&open.ticket.id, &note).await?,
                NoteAppended::Appended | NoteAppended::AlreadyThere
            );
        if added {
            tracing::info!(ticket = %open.ticket.id, phone_number = %new.phone_number.masked(), "a ticket is filed again");
            let mut json = ticket_json(&TicketRecord::new(Ticket {
                id: open.ticket.id.clone(),
                name: new.name,
                phone_number: Some(new.phone_number),
                description: new.description,
                created_at,
                customer: None,
                voicemail: None,
                outside_dial_countries,
            }));
            json["added_to_open_ticket"] = json!(true);
            return Ok(response::json(StatusCode::CREATED, &json));
        }
        // A full ticket takes no more: the customer gets a ticket of their own.
    }
    tracing::info!(phone_number = %new.phone_number.masked(), outside_dial_countries, "a ticket is filed");
    let ticket = Ticket {
        id: TicketId::generate(now)?,
        name: new.name,
        phone_number: Some(new.phone_number),
        description: new.description,
        created_at,
        customer: None,
        voicemail: None,
        outside_dial_countries,
    };
    // Acknowledged only once stored: a failure here is a 503, never a 201. 80 random bits make
    // a colliding id as good as impossible; it is refused, never overwrites.
    if !app.tickets.create_ticket(&ticket).await? {
        return Err(AppError::Conflict("please file the ticket again".into()));
    }
    Ok(response::json(StatusCode::CREATED, &ticket_json(&TicketRecord::new(ticket))))
}

/// The number's open ticket with room for a note, if it has one: the newest, should two have
/// been filed at the same moment.
async fn open_ticket_for(app: &App, number: &PhoneNumber) -> Result<Option<TicketRecord>, AppError> {
    let mut after = None;
    for _ in 0..OPEN_TICKET_PAGES {
        let page = app.tickets.tickets_for_number(number, DEFAULT_PAGE_SIZE, after.as_ref()).await?;
        let open = page
            .tickets
            .into_iter()
            .filter(|record| record.status == TicketStatus::Open && record.notes.len() < MAX_NOTES)
            .max_by(|a, b| a.ticket.id.cmp(&b.ticket.id));
        if open.is_some() {
            return Ok(open);
        }
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(None)
}

/// Where a page starts: the part of the list (or the search) and the ticket it follows.
const OPEN: &str = "open";
const CLOSED: &str = "closed";
const PHONE: &str = "phone";
const NAME: &str = "name";

fn part_of(status: TicketStatus) -> &'static str {
    match status {
        TicketStatus::Open => OPEN,
        TicketStatus::Closed => CLOSED,
    }
}

fn cursor(part: &str, after: Option<&TicketId>) -> String {
    http::encode_cursor(&format!("{part}:{}", after.map(TicketId::as_str).unwrap_or_default()))
}

/// The part and ticket a cursor names. A bare ticket id is where an open-tickets page ends.
fn parse_cursor(raw: &str) -> Option<(String, Option<TicketId>)> {
    let decoded = http::decode_cursor(raw)?;
    match decoded.split_once(':') {
        None => Some((OPEN.to_owned(), Some(TicketId::parse(&decoded)?))),
        Some((part, "")) => Some((part.to_owned(), None)),
        Some((part, id)) => Some((part.to_owned(), Some(TicketId::parse(id)?))),
    }
}

async fn list(app: &App, ctx: &Context<'_>) -> Result<Response<Body>, AppError> {
    ctx.agent().await?;
    let query = http::query_params(ctx.req);
    let mut errors = domain::FieldErrors::new();
    let limit = match query.get("limit").map(|v| v.parse::<u32>()) {
        None => DEFAULT_PAGE_SIZE,
        Some(Ok(limit)) if (1..=MAX_PAGE_SIZE).contains(&limit) => limit,
        Some(_) => {
            errors.insert("limit".to_owned(), format!("must be a whole number from 1 to {MAX_PAGE_SIZE}"));
            DEFAULT_PAGE_SIZE
        }
    };
    let statuses: &[TicketStatus] = match query.get("status").map(String::as_str).filter(|s| !s.is_empty()) {
        None | Some("all") => &[TicketStatus::Open, TicketStatus::Closed],
        Some("open") => &[TicketStatus::Open],
        Some("closed") => &[TicketStatus::Closed],
        Some(_) => {
            errors.insert("status".to_owned(), "must be \"open\", \"closed\" or \"all\"".to_owned());
            &[]
        }
    };
    let search = TicketSearch::parse(&query).unwrap_or_else(|problems| {
        errors.extend(problems);
        None
    });
    let search_part = match &search {
        Some(TicketSearch::Phone(_)) => Some(PHONE),
        Some(TicketSearch::NamePrefix(_)) => Some(NAME),
        None => None,
    };
    let start = match query.get("cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(raw) => {
            let fits = |part: &str| match search_part {
                Some(searched) => part == searched,
                None => statuses.iter().any(|status| part_of(*status) == part),
            };
            let parsed = parse_cursor(raw).filter(|(part, _)| fits(part));
            if parsed.is_none() {
                errors.insert("cursor".to_owned(), "is not a cursor from a previous page".to_owned());
            }
            parsed
        }
    };
    if !errors.is_empty() {
        return Err(AppError::invalid_fields(errors));
    }
    let after = start.as_ref().and_then(|(_, id)| id.as_ref());
    let (tickets, next_cursor) = match &search {
        Some(TicketSearch::Phone(number)) => {
            let page = app.tickets.tickets_for_number(number, limit, after).await?;
            let next = page.next_after.as_ref().map(|id| cursor(PHONE, Some(id)));
            (page.tickets, next)
        }
        Some(TicketSearch::NamePrefix(prefix)) => {
            let page = app.tickets.tickets_named(prefix, limit, after).await?;
            let next = page.next_after.as_ref().map(|id| cursor(NAME, Some(id)));
            (page.tickets, next)
        }
        None => list_by_status(app, statuses, limit, start).await?,
    };
    Ok(response::json(
        StatusCode::OK,
        &json!({
            "tickets": tickets.iter().map(ticket_json).collect::<Vec<_>>(),
            "next_cursor": next_cursor,
        }),
    ))
}

/// Open tickets newest first, then (when both are asked for) closed ones: a page that ends the
/// open ones goes on with the closed.
async fn list_by_status(
    app: &App,
    statuses: &[TicketStatus],
    limit: u32,
    start: Option<(String, Option<TicketId>)>,
) -> Result<(Vec<TicketRecord>, Option<String>), AppError> {
    let (mut from, mut after) = match start {
        None => (statuses.first().copied(), None),
        Some((part, after)) => (statuses.iter().copied().find(|status| part_of(*status) == part), after),
    };
    let mut tickets = Vec::new();
    while let Some(status) = from {
        let room = limit.saturating_sub(u32::try_from(tickets.len()).unwrap_or(u32::MAX));
        let next_status = statuses.iter().copied().skip_while(|s| *s != status).nth(1);
        if room == 0 {
            // The page is full at the end of one part: a cursor to the next only if it has any.
            let TicketPage { tickets: ahead, .. } = app.tickets.list_tickets(status, 1, None).await?;
            return Ok((tickets, (!ahead.is_empty()).then(|| cursor(part_of(status), None))));
        }
        let page = app.tickets.list_tickets(status, room, after.as_ref()).await?;
        tickets.extend(page.tickets);
        if let Some(next_after) = page.next_after {
            return Ok((tickets, Some(cursor(part_of(status), Some(&next_after)))));
        }
        (from, after) = (next_status, None);
    }
    Ok((tickets, None))
}

async fn change_status(app: &App, ctx: &Context<'_>, id: &TicketId) -> Result<Response<Body>, AppError> {
    ctx.require_same_origin()?;
    let agent = ctx.agent().await?.id.clone();
    let status = domain::parse_status(&http::fields(ctx.req)?).map_err(AppError::invalid_fields)?;
    let at = domain::rfc3339(app.clock.now());
    // A change that lost a race is decided again over what won; losing twice is a conflict.
    for _ in 0..2 {
        let read = app.tickets.ticket_record(id).await?.ok_or_else(no_such_ticket)?;
        let Some(next) = read.after(StatusChange { status, by: agent.clone(), at: at.clone() }) else {
            return Ok(response::json(StatusCode::OK, &ticket_json(&read)));
        };
        if app.tickets.change_status(&read, &next).await? {
            tracing::info!(ticket = %id, agent = %agent, status = status.as_str(), "a ticket's status changes");
            return Ok(response::json(StatusCode::OK, &ticket_json(&next)));
        }
    }
    Err(AppError::Conflict("the ticket changed at the same time; reload it and try again".into()))
}

async fn add_note(app: &App, ctx: &Context<'_>, id: &TicketId) -> Result<Response<Body>, AppError> {
    ctx.require_same_origin()?;
    let agent = ctx.agent().await?.id.clone();
    let new = NewNote::parse(&http::fields(ctx.req)?).map_err(AppError::invalid_fields)?;
    let note =
        Note { id: new.id, author: NoteAuthor::Agent(agent), at: domain::rfc3339(app.clock.now()), text: new.text };
    let status = match app.tickets.append_note(id, &note).await? {
        NoteAppended::Appended => StatusCode::CREATED,
        NoteAppended::AlreadyThere => StatusCode::OK,
        NoteAppended::Full => {
            return Err(AppError::Conflict(format!("this ticket holds {MAX_NOTES} notes, the most it can")));
        }
        NoteAppended::NoSuchTicket => return Err(no_such_ticket()),
    };
    tracing::info!(ticket = %id, appended = status == StatusCode::CREATED, "a note on a ticket");
    let record = app.tickets.ticket_record(id).await?.ok_or_else(no_such_ticket)?;
    Ok(response::json(status, &ticket_json(&record)))
}

fn no_such_ticket() -> AppError {
    AppError::NotFound("no such ticket".into())
}

async fn recording(app: &App, ctx: &Context<'_>, id: &TicketId) -> Result<Response<Body>, AppError> {
    ctx.agent().await?;
    let no_recording = || AppError::NotFound("this ticket has no recording".into());
    let ticket = app.tickets.ticket(id).await?.ok_or_else(no_recording)?;
    let voicemail = ticket.voicemail.ok_or_else(no_recording)?;
    let recording = app.dialer.recording(&voicemail.recording_sid).await?;
    Ok(response::audio(&recording.content_type, recording.audio))
}

/// A ticket as the dashboard reads it; what it does not have is left out.
pub(crate) fn ticket_json(record: &TicketRecord) -> serde_json::Value {
    let ticket = &record.ticket;
    let mut json = json!({
        "id": ticket.id.as_str(),
        "name": ticket.name,
        "description": ticket.description,
        "created_at": ticket.created_at,
        "status": record.status.as_str(),
    });
    if !record.history.is_empty() {
        json["status_history"] = record
            .history
            .iter()
            .map(|change| json!({"status": change.status.as_str(), "by": change.by.as_str(), "at": change.at}))
            .collect();
    }
    if !record.notes.is_empty() {
        json["notes"] = record
            .notes
            .iter()
            .map(|note| {
                let (author, by) = match &note.author {
                    NoteAuthor::Agent(agent) => ("agent", agent.as_str()),
                    NoteAuthor::Customer => ("customer", "customer"),
                };
                json!({"id": note.id.as_str(), "author": author, "by": by, "at": note.at, "text": note.text})
            })
            .collect();
    }
    if let Some(closed) = record.closed() {
        json["closed_by"] = json!(closed.by.as_str());
        json["closed_at"] = json!(closed.at);
    }
    if let Some(phone_number) = &ticket.phone_number {
        json["phone_number"] = json!(phone_number.as_str());
    }
    if let Some(customer) = &ticket.customer {
        json["customer"] = json!(customer);
    }
    if ticket.outside_dial_countries {
        json["outside_dial_countries"] = json!(true);
    }
    if let Some(voicemail) = &ticket.voicemail {
        json["voicemail"] = json!({
            "duration_seconds": voicemail.duration_seconds,
            "recording_url": Route::TicketRecording { ticket: ticket.id.clone() }.path(),
        });
    }
    json
}
