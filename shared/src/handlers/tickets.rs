//! `POST /tickets` files a ticket (form or JSON: `name`, `phone_number`, `description`) and
//! answers 201 with the stored ticket; anyone may, except other sites' pages. A number outside
//! `DIAL_COUNTRIES` is no reason to refuse the ticket, but agents will not call it back: the
//! ticket says so (`outside_dial_countries`), and the dashboard offers no call button.
//! `GET /tickets?limit=&cursor=` lists them newest first, to signed-in agents only: tickets
//! hold customers' phone numbers. A voicemail is a ticket too, with its recording, which
//! `GET /tickets/{ticket_id}/recording` serves to signed-in agents (it stays in Twilio, behind
//! the account's credentials).

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use serde_json::json;

use crate::domain::{self, NewTicket, Ticket, TicketId};
use crate::error::AppError;
use crate::pipeline::{self, Context};
use crate::routes::Route;
use crate::{App, http, response};

pub const DEFAULT_PAGE_SIZE: u32 = 20;
pub const MAX_PAGE_SIZE: u32 = 100;

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    Ok(pipeline::json(app, &req, async |ctx| match &ctx.route {
        Route::TicketRecording { ticket } => recording(app, ctx, ticket).await,
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
    let outside_dial_countries = !app.config.dial_countries.allows(&new.phone_number);
    tracing::info!(phone_number = %new.phone_number.masked(), outside_dial_countries, "a ticket is filed");
    let ticket = Ticket {
        id: TicketId::generate(now)?,
        name: new.name,
        phone_number: Some(new.phone_number),
        description: new.description,
        created_at: domain::rfc3339(now.div_euclid(1000)),
        customer: None,
        voicemail: None,
        outside_dial_countries,
    };
    // Acknowledged only once stored: a failure here is a 503, never a 201. 80 random bits make
    // a colliding id as good as impossible; it is refused, never overwrites.
    if !app.tickets.create_ticket(&ticket).await? {
        return Err(AppError::Conflict("please file the ticket again".into()));
    }
    Ok(response::json(StatusCode::CREATED, &ticket_json(&ticket)))
}

async fn list(app: &App, ctx: &Context<'_>) -> Result<Response<Body>, AppError> {
    ctx.agent().await?;
    let query = http::query_params(ctx.req);
    let mut errors = std::collections::BTreeMap::new();
    let limit = match query.get("limit").map(|v| v.parse::<u32>()) {
        None => DEFAULT_PAGE_SIZE,
        Some(Ok(limit)) if (1..=MAX_PAGE_SIZE).contains(&limit) => limit,
        Some(_) => {
            errors.insert("limit".to_owned(), format!("must be a whole number from 1 to {MAX_PAGE_SIZE}"));
            DEFAULT_PAGE_SIZE
        }
    };
    let after = match query.get("cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(cursor) => {
            let decoded = http::decode_cursor(cursor).and_then(|id| TicketId::parse(&id));
            if decoded.is_none() {
                errors.insert("cursor".to_owned(), "is not a cursor from a previous page".to_owned());
            }
            decoded
        }
    };
    if !errors.is_empty() {
        return Err(AppError::invalid_fields(errors));
    }
    let page = app.tickets.list_tickets(limit, after.as_ref()).await?;
    Ok(response::json(
        StatusCode::OK,
        &json!({
            "tickets": page.tickets.iter().map(ticket_json).collect::<Vec<_>>(),
            "next_cursor": page.next_after.map(|id| http::encode_cursor(id.as_str())),
        }),
    ))
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
fn ticket_json(ticket: &Ticket) -> serde_json::Value {
    let mut json = json!({
        "id": ticket.id.as_str(),
        "name": ticket.name,
        "description": ticket.description,
        "created_at": ticket.created_at,
    });
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
