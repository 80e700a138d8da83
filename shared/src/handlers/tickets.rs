//! `POST /tickets` files a ticket (form or JSON: `name`, `phone_number`, `description`) and
//! answers 201 with the stored ticket; anyone may, except other sites' pages.
//! `GET /tickets?limit=&cursor=` lists them newest first, to signed-in agents only: tickets
//! hold customers' phone numbers.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use serde_json::json;

use crate::domain::{NewTicket, Ticket, TicketId};
use crate::error::AppError;
use crate::pipeline::{self, Context};
use crate::{App, http, response};

pub const DEFAULT_PAGE_SIZE: u32 = 20;
pub const MAX_PAGE_SIZE: u32 = 100;

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    Ok(pipeline::json(app, &req, async |ctx| {
        // The route allows GET and POST only.
        if ctx.req.method() == Method::POST { create(app, ctx).await } else { list(app, ctx).await }
    })
    .await)
}

async fn create(app: &App, ctx: &Context<'_>) -> Result<Response<Body>, AppError> {
    ctx.reject_foreign_origin()?;
    let new = NewTicket::parse(&http::fields(ctx.req)?).map_err(AppError::invalid_fields)?;
    let now = app.clock.now_millis();
    let ticket = Ticket {
        id: TicketId::generate(now)?,
        name: new.name,
        phone_number: new.phone_number,
        description: new.description,
        created_at: rfc3339(now),
    };
    // Acknowledged only once stored: a failure here is a 503, never a 201.
    app.tickets.create_ticket(&ticket).await?;
    tracing::info!(ticket = %ticket.id, phone_number = %ticket.phone_number.masked(), "ticket filed");
    Ok(response::json(StatusCode::CREATED, &json!(ticket)))
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
            "tickets": page.tickets,
            "next_cursor": page.next_after.map(|id| http::encode_cursor(id.as_str())),
        }),
    ))
}

fn rfc3339(epoch_millis: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch_millis.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}
