//! The Tickets table: one item per ticket, keyed by its id. Two indexes serve the reads, so
//! nothing scans the table:
//! - `newest_first`: partition `feed` (the same value on every ticket), sort `id` (a ULID, so
//!   time-ordered); a page is a descending query below the cursor id.
//! - `by_phone_number`: partition `phone_number`, keys only; answers "is this number on a ticket"
//!   (a browser caller's voicemail has no number, and is not in it).

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Select};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

use super::{Item, is_condition_failure, n, number_attr, s, string_attr, unavailable};
use crate::domain::{PhoneNumber, Ticket, TicketId, Voicemail};
use crate::store::{StoreError, TicketPage, TicketStore};

const FEED: &str = "ticket";
const NEWEST_FIRST_INDEX: &str = "newest_first";
const BY_PHONE_NUMBER_INDEX: &str = "by_phone_number";

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

    async fn list_tickets(&self, limit: u32, after: Option<&TicketId>) -> Result<TicketPage, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(NEWEST_FIRST_INDEX)
            .scan_index_forward(false)
            // One more than asked tells whether another page exists.
            .limit(i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX))
            .expression_attribute_values(":feed", s(FEED));
        query = match after {
            Some(after) => query
                .key_condition_expression("feed = :feed AND id < :after")
                .expression_attribute_values(":after", s(after.as_str())),
            None => query.key_condition_expression("feed = :feed"),
        };
        let output = query.send().await.map_err(unavailable)?;
        let mut tickets = output.items().iter().map(ticket_from_item).collect::<Result<Vec<_>, _>>()?;
        let more = tickets.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        tickets.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_after = if more { tickets.last().map(|t| t.id.clone()) } else { None };
        Ok(TicketPage { tickets, next_after })
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
