//! The Ledger table: the call ledger, append-only, kept for `LedgerRetentionDays`.
//!
//! | pk | sk | item |
//! |---|---|---|
//! | `CALL#<CallSid>` | `EVENT#<key>` | one event of the call (`event`: its JSON), `expires_at` |
//!
//! The beginning of a call (`began`) also carries the attributes of two sparse indexes, so
//! nothing scans the table: `by_party` (partition `party`, the caller's number or identity or
//! the number an agent called; sort `started`, `domain::started_key`) answers "the calls of
//! this number", newest first, and `by_day` (partition `day`, sort `started`) a day's calls in
//! the order they began. Each event is one conditional put, keyed by the event's deduplication
//! key, so a report Twilio delivers twice writes once; a call's record is the fold of its
//! events, made when it is read (`CallRecord::fold`).

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;

use super::{Item, is_condition_failure, n, s, string_attr, unavailable};
use crate::domain::{CallSid, LedgerEvent, started_key};
use crate::store::{LedgerPage, LedgerStore, StoreError};

const BY_PARTY_INDEX: &str = "by_party";
const BY_DAY_INDEX: &str = "by_day";

#[derive(Debug, Clone)]
pub struct DynamoLedgerStore {
    client: Client,
    table: String,
}

impl DynamoLedgerStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// One page of `index` for `partition` (`name` = `value`), past `from` in the query's
    /// direction.
    async fn page(
        &self,
        index: &str,
        name: &str,
        value: &str,
        limit: u32,
        from: Option<&str>,
        newest_first: bool,
    ) -> Result<LedgerPage, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .scan_index_forward(!newest_first)
            // One more than asked tells whether another page exists.
            .limit(i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX))
            .expression_attribute_names("#p", name)
            .expression_attribute_values(":p", s(value));
        query = match from {
            Some(from) => query
                .key_condition_expression(if newest_first {
                    "#p = :p AND started < :from"
                } else {
                    "#p = :p AND started > :from"
                })
                .expression_attribute_values(":from", s(from)),
            None => query.key_condition_expression("#p = :p"),
        };
        let output = query.send().await.map_err(unavailable)?;
        let mut entries = Vec::new();
        for item in output.items() {
            let call = string_attr(item, "pk")?
                .strip_prefix("CALL#")
                .and_then(CallSid::parse)
                .ok_or_else(|| StoreError::Corrupt("a ledger key is malformed".into()))?;
            entries.push((string_attr(item, "started")?.to_owned(), call));
        }
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = entries.len() > limit;
        entries.truncate(limit);
        let next_after = if more { entries.last().map(|(key, _)| key.clone()) } else { None };
        Ok(LedgerPage { calls: entries.into_iter().map(|(_, call)| call).collect(), next_after })
    }
}

fn event_from_item(item: &Item) -> Result<LedgerEvent, StoreError> {
    serde_json::from_str(string_attr(item, "event")?)
        .map_err(|err| StoreError::Corrupt(format!("a ledger event is malformed: {err}")))
}

#[async_trait]
impl LedgerStore for DynamoLedgerStore {
    async fn record(&self, call: &CallSid, event: &LedgerEvent, expires_at: i64) -> Result<bool, StoreError> {
        let json = serde_json::to_string(event)
            .map_err(|err| StoreError::Corrupt(format!("a ledger event cannot be written: {err}")))?;
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("CALL#{call}")))
            .item("sk", s(format!("EVENT#{}", event.key())))
            .item("event", s(json))
            .item("expires_at", n(expires_at))
            // Append-only: the first delivery of an event is the one kept.
            .condition_expression("attribute_not_exists(pk)");
        if let LedgerEvent::Began { at_ms, party, day, .. } = event {
            request = request.item("started", s(started_key(*at_ms, call))).item("day", s(day));
            if let Some(party) = party {
                request = request.item("party", s(party));
            }
        }
        match request.send().await {
            Ok(_) => Ok(true),
            // A write resent after its reply was lost meets itself: recorded either way.
            Err(err) if is_condition_failure(&err, PutItemError::is_conditional_check_failed_exception) => Ok(false),
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn events(&self, call: &CallSid) -> Result<Vec<LedgerEvent>, StoreError> {
        let mut events = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(format!("CALL#{call}")))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            for item in output.items() {
                events.push(event_from_item(item)?);
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(events);
            }
        }
    }

    async fn calls_of(&self, party: &str, limit: u32, before: Option<&str>) -> Result<LedgerPage, StoreError> {
        self.page(BY_PARTY_INDEX, "party", party, limit, before, true).await
    }

    async fn calls_on(&self, day: &str, limit: u32, after: Option<&str>) -> Result<LedgerPage, StoreError> {
        self.page(BY_DAY_INDEX, "day", day, limit, after, false).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract;
    use crate::test_support;

    async fn fresh_store() -> Box<dyn LedgerStore> {
        let tables = test_support::emulator_tables().await;
        Box::new(DynamoLedgerStore::new(tables.client.clone(), tables.name("LedgerTable")))
    }

    contract::ledger_store_contract!(fresh_store());
}
