//! The Tickets table: one item per ticket, keyed by its id, with what agents did with it on the
//! same item (status, the latest status changes, notes): a ticket is read and written whole, in
//! one request, and 40 notes fit well inside DynamoDB's 400 KB item. Three indexes serve the
//! reads, so nothing scans the table:
//! - `newest_first`: partition `feed`, sort `id` (a ULID, so time-ordered); a page is a
//!   descending query below the cursor id. `feed` carries the status: `ticket` while the ticket
//!   is open (the value every ticket was filed with, so a ticket stored before statuses existed
//!   lists as open) and `closed` once closed.
//! - `by_phone_number`: partition `phone_number`, keys only; answers "is this number on a
//!   ticket" and finds a number's tickets (a browser caller's voicemail has no number, and is
//!   not in it).
//! - `by_name`: partition `names` (`ticket` on every ticket), sort `name_key` (the name in lower
//!   case); a name-prefix search is a `begins_with` query. Only tickets filed with `name_key`
//!   are in it (sparse).
//!
//! A status change is written only over the `revision` it was decided on; a note is appended
//! with `list_append` under a condition on the number of notes and on its id (`note_ids`), so a
//! retried request appends it once.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Select};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

use super::{Item, is_condition_failure, n, number_attr, s, string_attr, unavailable};
use crate::domain::{
    AgentId, MAX_NOTES, Note, NoteAuthor, NoteId, PhoneNumber, StatusChange, Ticket, TicketId, TicketRecord,
    TicketStatus, Voicemail, name_key,
};
use crate::store::{NoteAppended, StoreError, TicketPage, TicketStore};

/// `feed` of an open ticket: the value every ticket has been filed with.
const FEED: &str = "ticket";
/// `feed` of a closed ticket.
const CLOSED_FEED: &str = "closed";
/// `names` of every ticket: the one partition of `by_name`.
const NAMES: &str = "ticket";
const NEWEST_FIRST_INDEX: &str = "newest_first";
const BY_PHONE_NUMBER_INDEX: &str = "by_phone_number";
const BY_NAME_INDEX: &str = "by_name";

fn feed_of(status: TicketStatus) -> &'static str {
    match status {
        TicketStatus::Open => FEED,
        TicketStatus::Closed => CLOSED_FEED,
    }
}

fn limit_plus_one(limit: u32) -> i32 {
    // One more than asked tells whether another page exists.
    i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX)
}

#[derive(Debug, Clone)]
pub struct DynamoTicketStore {
    client: Client,
    table: String,
}

impl DynamoTicketStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

fn ticket_from_item(item: &Item) -> Result<Ticket, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("ticket {what} is malformed"));
    let optional = |name: &str| item.get(name).and_then(|value| value.as_s().ok());
    let phone_number = optional("phone_number")
        .map(|number| PhoneNumber::parse(number).map_err(|_| corrupt("phone_number")))
        .transpose()?;
    let voicemail = match optional("recording_sid") {
        None => None,
        Some(recording_sid) => Some(Voicemail {
            recording_sid: recording_sid.to_owned(),
            duration_seconds: u32::try_from(number_attr(item, "recording_seconds")?)
                .map_err(|_| corrupt("recording_seconds"))?,
        }),
    };
    Ok(Ticket {
        id: TicketId::parse(string_attr(item, "id")?).ok_or_else(|| corrupt("id"))?,
        name: string_attr(item, "name")?.to_owned(),
        phone_number,
        description: string_attr(item, "description")?.to_owned(),
        created_at: string_attr(item, "created_at")?.to_owned(),
        customer: optional("customer").cloned(),
        voicemail,
        outside_dial_countries: item
            .get("outside_dial_countries")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
    })
}

fn status_change_from(value: &AttributeValue) -> Result<StatusChange, StoreError> {
    let corrupt = || StoreError::Corrupt("ticket status_changes is malformed".into());
    let map = value.as_m().map_err(|_| corrupt())?;
    let field = |name: &str| map.get(name).and_then(|v| v.as_s().ok()).ok_or_else(corrupt);
    Ok(StatusChange {
        status: TicketStatus::parse(field("status")?).ok_or_else(corrupt)?,
        by: AgentId::parse(field("by")?).map_err(|_| corrupt())?,
        at: field("at")?.to_owned(),
    })
}

fn status_change_value(change: &StatusChange) -> AttributeValue {
    AttributeValue::M(
        [("status", s(change.status.as_str())), ("by", s(change.by.as_str())), ("at", s(&change.at))]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

fn note_from(value: &AttributeValue) -> Result<Note, StoreError> {
    let corrupt = || StoreError::Corrupt("ticket notes is malformed".into());
    let map = value.as_m().map_err(|_| corrupt())?;
    let field = |name: &str| map.get(name).and_then(|v| v.as_s().ok()).ok_or_else(corrupt);
    let author = match field("author")?.as_str() {
        "customer" => NoteAuthor::Customer,
        "agent" => NoteAuthor::Agent(AgentId::parse(field("by")?).map_err(|_| corrupt())?),
        _ => return Err(corrupt()),
    };
    Ok(Note {
        id: NoteId::parse(field("id")?).ok_or_else(corrupt)?,
        author,
        at: field("at")?.to_owned(),
        text: field("text")?.to_owned(),
    })
}

fn note_value(note: &Note) -> AttributeValue {
    let mut map: Item = [("id", s(note.id.as_str())), ("at", s(&note.at)), ("text", s(&note.text))]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    match &note.author {
        NoteAuthor::Customer => {
            map.insert("author".into(), s("customer"));
        }
        NoteAuthor::Agent(agent) => {
            map.insert("author".into(), s("agent"));
            map.insert("by".into(), s(agent.as_str()));
        }
    }
    AttributeValue::M(map)
}

fn record_from_item(item: &Item) -> Result<TicketRecord, StoreError> {
    let list = |name: &str| item.get(name).and_then(|v| v.as_l().ok()).map(Vec::as_slice).unwrap_or_default();
    let status = match item.get("status").and_then(|v| v.as_s().ok()) {
        // Stored before tickets had a status.
        None => TicketStatus::Open,
        Some(status) => {
            TicketStatus::parse(status).ok_or_else(|| StoreError::Corrupt("ticket status is malformed".into()))?
        }
    };
    Ok(TicketRecord {
        ticket: ticket_from_item(item)?,
        status,
        history: list("status_changes").iter().map(status_change_from).collect::<Result<_, _>>()?,
        notes: list("notes").iter().map(note_from).collect::<Result<_, _>>()?,
        revision: match item.get("revision") {
            None => 0,
            Some(_) => u32::try_from(number_attr(item, "revision")?)
                .map_err(|_| StoreError::Corrupt("ticket revision is malformed".into()))?,
        },
    })
}

/// The item that refused a conditional put, when DynamoDB returned it.
fn refused_by<R>(err: &SdkError<PutItemError, R>) -> Option<&Item> {
    let SdkError::ServiceError(failure) = err else { return None };
    let PutItemError::ConditionalCheckFailedException(refused) = failure.err() else { return None };
    refused.item()
}

#[async_trait]
impl TicketStore for DynamoTicketStore {
    async fn create_ticket(&self, ticket: &Ticket) -> Result<bool, StoreError> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("id", s(ticket.id.as_str()))
            .item("feed", s(FEED))
            .item("name", s(&ticket.name))
            .item("description", s(&ticket.description))
            .item("created_at", s(&ticket.created_at))
            .item("names", s(NAMES))
            .item("name_key", s(name_key(&ticket.name)))
            // A ticket is never overwritten: not by an id collision, not by a retried callback.
            .condition_expression("attribute_not_exists(id)")
            // The SDK resends a write whose reply was lost: the ticket then in the way may be
            // this very one.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(phone_number) = &ticket.phone_number {
            request = request.item("phone_number", s(phone_number.as_str()));
        }
        if let Some(customer) = &ticket.customer {
            request = request.item("customer", s(customer));
        }
        if ticket.outside_dial_countries {
            request = request.item("outside_dial_countries", AttributeValue::Bool(true));
        }
        if let Some(voicemail) = &ticket.voicemail {
            request = request
                .item("recording_sid", s(&voicemail.recording_sid))
                .item("recording_seconds", n(i64::from(voicemail.duration_seconds)));
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err, PutItemError::is_conditional_check_failed_exception) => {
                Ok(refused_by(&err).is_some_and(|existing| ticket_from_item(existing).ok().as_ref() == Some(ticket)))
            }
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", s(id.as_str()))
            .send()
            .await
            .map_err(unavailable)?;
        output.item.as_ref().map(ticket_from_item).transpose()
    }

    async fn list_tickets(
        &self,
        status: TicketStatus,
        limit: u32,
        after: Option<&TicketId>,
    ) -> Result<TicketPage, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(NEWEST_FIRST_INDEX)
            .scan_index_forward(false)
            .limit(limit_plus_one(limit))
            .expression_attribute_values(":feed", s(feed_of(status)));
        query = match after {
            Some(after) => query
                .key_condition_expression("feed = :feed AND id < :after")
                .expression_attribute_values(":after", s(after.as_str())),
            None => query.key_condition_expression("feed = :feed"),
        };
        let output = query.send().await.map_err(unavailable)?;
        let records = output.items().iter().map(record_from_item).collect::<Result<Vec<_>, _>>()?;
        Ok(page_of(records, limit))
    }

    async fn has_ticket_for(&self, phone_number: &PhoneNumber) -> Result<bool, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_PHONE_NUMBER_INDEX)
            .key_condition_expression("phone_number = :phone_number")
            .expression_attribute_values(":phone_number", s(phone_number.as_str()))
            .select(Select::Count)
            .limit(1)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(output.count() > 0)
    }

    async fn ticket_record(&self, id: &TicketId) -> Result<Option<TicketRecord>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", s(id.as_str()))
            .send()
            .await
            .map_err(unavailable)?;
        output.item.as_ref().map(record_from_item).transpose()
    }

    async fn change_status(&self, read: &TicketRecord, next: &TicketRecord) -> Result<bool, StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(read.ticket.id.as_str()))
            // Every attribute through a placeholder: DynamoDB reserves hundreds of words.
            .update_expression("SET #status = :status, feed = :feed, #changes = :history, #revision = :next")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#changes", "status_changes")
            .expression_attribute_names("#revision", "revision")
            .expression_attribute_values(":status", s(next.status.as_str()))
            .expression_attribute_values(":feed", s(feed_of(next.status)))
            .expression_attribute_values(
                ":history",
                AttributeValue::L(next.history.iter().map(status_change_value).collect()),
            )
            .expression_attribute_values(":next", n(i64::from(next.revision)));
        // Over the revision read: two agents changing the status at once cannot both win.
        request = if read.revision == 0 {
            request.condition_expression("attribute_exists(id) AND attribute_not_exists(#revision)")
        } else {
            request
                .condition_expression("#revision = :read")
                .expression_attribute_values(":read", n(i64::from(read.revision)))
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err, UpdateItemError::is_conditional_check_failed_exception) => Ok(false),
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn append_note(&self, id: &TicketId, note: &Note) -> Result<NoteAppended, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(id.as_str()))
            .update_expression("SET #notes = list_append(if_not_exists(#notes, :none), :note) ADD #ids :ids")
            .condition_expression(
                "attribute_exists(id) AND (attribute_not_exists(#notes) OR size(#notes) < :max) \
                 AND NOT contains(#ids, :id)",
            )
            .expression_attribute_names("#notes", "notes")
            .expression_attribute_names("#ids", "note_ids")
            .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":note", AttributeValue::L(vec![note_value(note)]))
            .expression_attribute_values(":ids", AttributeValue::Ss(vec![note.id.as_str().to_owned()]))
            .expression_attribute_values(":id", s(note.id.as_str()))
            .expression_attribute_values(":max", n(i64::try_from(MAX_NOTES).unwrap_or(i64::MAX)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(NoteAppended::Appended),
            Err(err) if is_condition_failure(&err, UpdateItemError::is_conditional_check_failed_exception) => {
                // Refused: read why (rare, so a read here costs less than returning the item
                // on every append).
                Ok(match self.ticket_record(id).await? {
                    None => NoteAppended::NoSuchTicket,
                    Some(record) if record.has_note(&note.id) => NoteAppended::AlreadyThere,
                    Some(_) => NoteAppended::Full,
                })
            }
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn tickets_for_number(
        &self,
        phone_number: &PhoneNumber,
        limit: u32,
        after: Option<&TicketId>,
    ) -> Result<TicketPage, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_PHONE_NUMBER_INDEX)
            .key_condition_expression("phone_number = :phone_number")
            .expression_attribute_values(":phone_number", s(phone_number.as_str()))
            .limit(limit_plus_one(limit));
        if let Some(after) = after {
            query = query
                .exclusive_start_key("phone_number", s(phone_number.as_str()))
                .exclusive_start_key("id", s(after.as_str()));
        }
        let output = query.send().await.map_err(unavailable)?;
        // The index holds keys only: each ticket is read by its id (a number has few).
        let mut records = Vec::new();
        for key in output.items().iter().take(usize::try_from(limit).unwrap_or(usize::MAX)) {
            let id = TicketId::parse(string_attr(key, "id")?)
                .ok_or_else(|| StoreError::Corrupt("ticket id is malformed".into()))?;
            if let Some(record) = self.ticket_record(&id).await? {
                records.push(record);
            }
        }
        let more = output.items().len() > records.len();
        let next_after = if more { records.last().map(|r| r.ticket.id.clone()) } else { None };
        records.sort_by(|a, b| b.ticket.id.cmp(&a.ticket.id));
        Ok(TicketPage { tickets: records, next_after })
    }

    async fn tickets_named(
        &self,
        prefix: &str,
        limit: u32,
        after: Option<&TicketId>,
    ) -> Result<TicketPage, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_NAME_INDEX)
            .key_condition_expression("#names = :names AND begins_with(#name_key, :prefix)")
            .expression_attribute_names("#names", "names")
            .expression_attribute_names("#name_key", "name_key")
            .expression_attribute_values(":names", s(NAMES))
            .expression_attribute_values(":prefix", s(prefix))
            .limit(limit_plus_one(limit));
        if let Some(after) = after {
            // The index's position is the name, which the cursor does not carry: read it.
            let Some(last) = self.ticket(after).await? else {
                return Ok(TicketPage { tickets: Vec::new(), next_after: None });
            };
            query = query
                .exclusive_start_key("id", s(after.as_str()))
                .exclusive_start_key("names", s(NAMES))
                .exclusive_start_key("name_key", s(name_key(&last.name)));
        }
        let output = query.send().await.map_err(unavailable)?;
        let records = output.items().iter().map(record_from_item).collect::<Result<Vec<_>, _>>()?;
        Ok(page_of(records, limit))
    }
}

/// The first `limit` of `records` (fetched one over `limit`), and the cursor past them.
fn page_of(mut records: Vec<TicketRecord>, limit: u32) -> TicketPage {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = records.len() > limit;
    records.truncate(limit);
    let next_after = if more { records.last().map(|r| r.ticket.id.clone()) } else { None };
    TicketPage { tickets: records, next_after }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract;
    use crate::test_support;

    async fn fresh_store() -> Box<dyn TicketStore> {
        let tables = test_support::emulator_tables().await;
        Box::new(DynamoTicketStore::new(tables.client.clone(), tables.name("TicketsTable")))
    }

    contract::ticket_store_contract!(fresh_store());
}
