//! The Calls table. One table, generic keys, so a conference keeps everything about
//! itself under its own partition:
//!
//! | pk            | sk            | what                                                            |
//! |---------------|---------------|-----------------------------------------------------------------|
//! | `CONF#<sid>`  | `CONF`        | the conference: `first_agent`, `tried` (list, the agents rung   |
//! |               |               | in turn), `joined` (string set), `agent_calls` (string set, the |
//! |               |               | CallSids of the calls placed to agents), `created_at`,          |
//! |               |               | `chain_moved_at`, `delivery` (the creating delivery's nonce)    |
//! | `CONF#<sid>`  | `AGENT#<id>`  | an agent who joined it: `call_sid` (the agent's call),          |
//! |               |               | `joined_at`                                                     |
//! | `AGENT#<id>`  | `CONF`        | the conference that agent is in now: `conference_id`,           |
//! |               |               | `joined_at`                                                     |
//!
//! Every item carries `expires_at` (epoch seconds), the table's TTL attribute. `joined` and
//! `agent_calls` are sets so that adding the same member twice (a retried webhook) is a no-op;
//! they are absent while empty, because DynamoDB has no empty sets.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use super::{Item, is_condition_failure, n, number_attr, s, string_attr, unavailable};
use crate::domain::{AgentId, CALL_RECORD_TTL_SECONDS, CallSid, Conference};
use crate::store::{CallStore, StoreError};

const CONFERENCE_SK: &str = "CONF";
const AGENT_PREFIX: &str = "AGENT#";
/// The conference record exists and has not expired at `:now`.
const LIVE: &str = "attribute_exists(pk) AND expires_at > :now";
/// `LIVE`, and the first-responder chain stands where the caller saw it.
const CHAIN_UNCHANGED: &str =
    "attribute_exists(pk) AND expires_at > :now AND size(tried) = :tried AND attribute_not_exists(joined)";

#[derive(Debug, Clone)]
pub struct DynamoCallStore {
    client: Client,
    table: String,
}

impl DynamoCallStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

fn conference_pk(id: &CallSid) -> String {
    format!("CONF#{id}")
}

fn agent_pk(agent: &AgentId) -> String {
    format!("{AGENT_PREFIX}{agent}")
}

fn string_set(value: impl Into<String>) -> AttributeValue {
    AttributeValue::Ss(vec![value.into()])
}

fn count(value: usize) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The strings of a list or set attribute, parsed; an absent attribute is an empty set.
fn parsed_strings<T>(item: &Item, name: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("{name} holds something unexpected"));
    let strings: Vec<&str> = match item.get(name) {
        None => Vec::new(),
        Some(AttributeValue::Ss(values)) => values.iter().map(String::as_str).collect(),
        Some(AttributeValue::L(values)) => {
            values.iter().map(|v| v.as_s().map(String::as_str).map_err(|_| corrupt())).collect::<Result<_, _>>()?
        }
        Some(_) => return Err(corrupt()),
    };
    strings.into_iter().map(|value| parse(value).ok_or_else(corrupt)).collect()
}

fn conference_from_item(id: &CallSid, item: &Item) -> Result<Conference, StoreError> {
    let agent = |value: &str| AgentId::parse(value).ok();
    let first_agent = AgentId::parse(string_attr(item, "first_agent")?)
        .map_err(|_| StoreError::Corrupt("first_agent is not an agent id".into()))?;
    let mut joined = parsed_strings(item, "joined", agent)?;
    joined.sort();
    let mut agent_calls = parsed_strings(item, "agent_calls", CallSid::parse)?;
    agent_calls.sort();
    let created_at = number_attr(item, "created_at")?;
    Ok(Conference {
        id: id.clone(),
        first_agent,
        tried: parsed_strings(item, "tried", agent)?,
        joined,
        agent_calls,
        created_at,
        expires_at: number_attr(item, "expires_at")?,
        // Records written before these attributes existed: the chain last moved when created,
        // and no delivery's retry can claim them.
        chain_moved_at: if item.contains_key("chain_moved_at") {
            number_attr(item, "chain_moved_at")?
        } else {
            created_at
        },
        delivery: item.get("delivery").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default(),
    })
}

impl DynamoCallStore {
    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(output.item)
    }

    fn put(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder().table_name(&self.table).set_item(Some(item)).build().map_err(unavailable)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// An update of the conference record under `condition`; `Ok(false)` when the condition
    /// does not hold.
    async fn update_conference(
        &self,
        id: &CallSid,
        update: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(conference_pk(id)))
            .key("sk", s(CONFERENCE_SK))
            .update_expression(update)
            .condition_expression(condition);
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err, UpdateItemError::is_conditional_check_failed_exception) => Ok(false),
            Err(err) => Err(unavailable(err)),
        }
    }

    /// Deletes an item, under `condition` if one is given; `Ok(false)` when it does not hold.
    async fn delete(
        &self,
        pk: String,
        sk: &str,
        condition: Option<(&str, Vec<(&str, AttributeValue)>)>,
    ) -> Result<bool, StoreError> {
        let mut request = self.client.delete_item().table_name(&self.table).key("pk", s(pk)).key("sk", s(sk));
        if let Some((expression, values)) = condition {
            request = request.condition_expression(expression);
            for (name, value) in values {
                request = request.expression_attribute_values(name, value);
            }
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err, DeleteItemError::is_conditional_check_failed_exception) => Ok(false),
            Err(err) => Err(unavailable(err)),
        }
    }

    /// The participant items of a conference (a handful at most: one page).
    async fn participants(&self, conference: &CallSid) -> Result<Vec<Item>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :agent)")
            .expression_attribute_values(":pk", s(conference_pk(conference)))
            .expression_attribute_values(":agent", s(AGENT_PREFIX))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(output.items.unwrap_or_default())
    }

    /// Forgets `agent`'s current conference only if it is still `conference`: an agent already
    /// in a newer call keeps it.
    async fn forget_agent_in(&self, agent: &AgentId, conference: &CallSid) -> Result<(), StoreError> {
        let condition = ("conference_id = :conference", vec![(":conference", s(conference.as_str()))]);
        self.delete(agent_pk(agent), CONFERENCE_SK, Some(condition)).await?;
        Ok(())
    }
}

/// Whether the record that refused a conditional put is the one `delivery` wrote.
fn written_by<R>(err: &SdkError<PutItemError, R>, delivery: &str) -> bool {
    let SdkError::ServiceError(failure) = err else { return false };
    let PutItemError::ConditionalCheckFailedException(refused) = failure.err() else { return false };
    refused.item().and_then(|item| item.get("delivery")).and_then(|v| v.as_s().ok()).is_some_and(|d| d == delivery)
}

fn participant_agent(item: &Item) -> Result<AgentId, StoreError> {
    string_attr(item, "sk")?
        .strip_prefix(AGENT_PREFIX)
        .and_then(|id| AgentId::parse(id).ok())
        .ok_or_else(|| StoreError::Corrupt("a participant's sk does not name an agent".into()))
}

#[async_trait]
impl CallStore for DynamoCallStore {
    async fn create_conference(&self, conference: &Conference) -> Result<bool, StoreError> {
        let tried = conference.tried.iter().map(|agent| s(agent.as_str())).collect();
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(conference_pk(&conference.id)))
            .item("sk", s(CONFERENCE_SK))
            .item("first_agent", s(conference.first_agent.as_str()))
            .item("tried", AttributeValue::L(tried))
            .item("created_at", n(conference.created_at))
            .item("expires_at", n(conference.expires_at))
            .item("chain_moved_at", n(conference.chain_moved_at))
            .item("delivery", s(conference.delivery.as_str()))
            // An expired record that the TTL sweeper has not removed yet does not count.
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_values(":now", n(conference.created_at))
            // The SDK resends a write whose reply was lost; the record then in the way may be
            // this very write's, and only its `delivery` tells.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if !conference.joined.is_empty() {
            request =
                request.item("joined", AttributeValue::Ss(conference.joined.iter().map(|a| a.to_string()).collect()));
        }
        if !conference.agent_calls.is_empty() {
            let calls = conference.agent_calls.iter().map(|c| c.to_string()).collect();
            request = request.item("agent_calls", AttributeValue::Ss(calls));
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err, PutItemError::is_conditional_check_failed_exception) => {
                Ok(written_by(&err, &conference.delivery))
            }
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn conference(&self, id: &CallSid, now: i64) -> Result<Option<Conference>, StoreError> {
        let Some(item) = self.get(conference_pk(id), CONFERENCE_SK).await? else {
            return Ok(None);
        };
        if number_attr(&item, "expires_at")? <= now {
            return Ok(None);
        }
        conference_from_item(id, &item).map(Some)
    }

    async fn delete_conference(&self, id: &CallSid) -> Result<(), StoreError> {
        self.delete(conference_pk(id), CONFERENCE_SK, None).await?;
        Ok(())
    }

    async fn add_agent_call(&self, id: &CallSid, call: &CallSid, now: i64) -> Result<bool, StoreError> {
        let values = vec![(":call", string_set(call.as_str())), (":now", n(now))];
        self.update_conference(id, "ADD agent_calls :call", LIVE, values).await
    }

    async fn try_next_agent(
        &self,
        id: &CallSid,
        tried_so_far: usize,
        next: &AgentId,
        now: i64,
    ) -> Result<bool, StoreError> {
        let values = vec![
            (":next", AttributeValue::L(vec![s(next.as_str())])),
            (":tried", count(tried_so_far)),
            (":now", n(now)),
        ];
        let update = "SET tried = list_append(tried, :next), chain_moved_at = :now";
        self.update_conference(id, update, CHAIN_UNCHANGED, values).await
    }

    async fn abandon_conference(&self, id: &CallSid, tried_so_far: usize, now: i64) -> Result<bool, StoreError> {
        let values = vec![(":tried", count(tried_so_far)), (":now", n(now))];
        self.delete(conference_pk(id), CONFERENCE_SK, Some((CHAIN_UNCHANGED, values))).await
    }

    async fn record_agent_joined(
        &self,
        agent: &AgentId,
        call: &CallSid,
        conference: &CallSid,
        now: i64,
    ) -> Result<bool, StoreError> {
        let expires_at = n(now + CALL_RECORD_TTL_SECONDS);
        // Conditional on the conference, so an agent answering just as it ends is not recorded
        // as being in a call that no longer exists.
        let joined = Update::builder()
            .table_name(&self.table)
            .key("pk", s(conference_pk(conference)))
            .key("sk", s(CONFERENCE_SK))
            .update_expression("ADD joined :agent")
            .condition_expression(LIVE)
            .expression_attribute_values(":agent", string_set(agent.as_str()))
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(unavailable)?;
        let participant: Item = [
            ("pk".to_owned(), s(conference_pk(conference))),
            ("sk".to_owned(), s(agent_pk(agent))),
            ("call_sid".to_owned(), s(call.as_str())),
            ("joined_at".to_owned(), n(now)),
            ("expires_at".to_owned(), expires_at.clone()),
        ]
        .into();
        let current: Item = [
            ("pk".to_owned(), s(agent_pk(agent))),
            ("sk".to_owned(), s(CONFERENCE_SK)),
            ("conference_id".to_owned(), s(conference.as_str())),
            ("joined_at".to_owned(), n(now)),
            ("expires_at".to_owned(), expires_at),
        ]
        .into();
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(joined).build())
            .transact_items(self.put(participant)?)
            .transact_items(self.put(current)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(err))
                if matches!(
                    err.err(),
                    TransactWriteItemsError::TransactionCanceledException(canceled)
                        if canceled.cancellation_reasons().iter().any(|r| r.code() == Some("ConditionalCheckFailed"))
                ) =>
            {
                Ok(false)
            }
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn conference_of_agent(&self, agent: &AgentId, now: i64) -> Result<Option<CallSid>, StoreError> {
        let Some(item) = self.get(agent_pk(agent), CONFERENCE_SK).await? else {
            return Ok(None);
        };
        if number_attr(&item, "expires_at")? <= now {
            return Ok(None);
        }
        CallSid::parse(string_attr(&item, "conference_id")?)
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt("conference_id is not a CallSid".into()))
    }

    async fn agent_left(&self, conference: &CallSid, call: &CallSid) -> Result<Option<AgentId>, StoreError> {
        let participants = self.participants(conference).await?;
        let Some(item) = participants.iter().find(|item| string_attr(item, "call_sid").ok() == Some(call.as_str()))
        else {
            return Ok(None);
        };
        let agent = participant_agent(item)?;
        self.forget_agent_in(&agent, conference).await?;
        Ok(Some(agent))
    }

    async fn end_conference(&self, id: &CallSid, now: i64) -> Result<Option<Conference>, StoreError> {
        // The record goes first: from then on nothing dials into this conference or records a
        // join, even if the rest of the clean-up fails.
        let removed = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(conference_pk(id)))
            .key("sk", s(CONFERENCE_SK))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(unavailable)?
            .attributes;
        for item in self.participants(id).await? {
            let agent = participant_agent(&item)?;
            self.forget_agent_in(&agent, id).await?;
            self.delete(conference_pk(id), &agent_pk(&agent), None).await?;
        }
        match removed {
            Some(item) if number_attr(&item, "expires_at")? > now => conference_from_item(id, &item).map(Some),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract;
    use crate::test_support;

    async fn fresh_store() -> Box<dyn CallStore> {
        let tables = test_support::emulator_tables().await;
        Box::new(DynamoCallStore::new(tables.client.clone(), tables.name("CallsTable")))
    }

    contract::call_store_contract!(fresh_store());

    #[tokio::test]
    async fn an_unreachable_table_is_unavailable_not_a_panic() {
        let tables = test_support::emulator_tables().await;
        let store = DynamoCallStore::new(tables.client.clone(), "no-such-table");
        let err = store.conference(&contract::sid(1), contract::NOW).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        let err = store
            .record_agent_joined(&contract::agent("agent1"), &contract::agent_call(1), &contract::sid(1), contract::NOW)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        let err = store.end_conference(&contract::sid(1), contract::NOW).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    }

    #[tokio::test]
    async fn stores_items_under_the_documented_keys() {
        let tables = test_support::emulator_tables().await;
        let table = tables.name("CallsTable");
        let store = DynamoCallStore::new(tables.client.clone(), table.clone());
        store.create_conference(&contract::conference(7, contract::NOW)).await.unwrap();
        store.add_agent_call(&contract::sid(7), &contract::agent_call(2), contract::NOW).await.unwrap();
        store
            .record_agent_joined(&contract::agent("agent2"), &contract::agent_call(2), &contract::sid(7), contract::NOW)
            .await
            .unwrap();

        let scan = tables.client.scan().table_name(table).send().await.unwrap();
        let mut keys: Vec<(String, String, i64)> = scan
            .items()
            .iter()
            .map(|item| {
                (
                    string_attr(item, "pk").unwrap().to_owned(),
                    string_attr(item, "sk").unwrap().to_owned(),
                    number_attr(item, "expires_at").unwrap() - contract::NOW,
                )
            })
            .collect();
        keys.sort();
        let conf = format!("CONF#{}", contract::sid(7));
        assert_eq!(
            keys,
            [
                ("AGENT#agent2".to_owned(), "CONF".to_owned(), CALL_RECORD_TTL_SECONDS),
                (conf.clone(), "AGENT#agent2".to_owned(), CALL_RECORD_TTL_SECONDS),
                (conf.clone(), "CONF".to_owned(), CALL_RECORD_TTL_SECONDS),
            ]
        );
        let record = scan
            .items()
            .iter()
            .find(|item| {
                string_attr(item, "sk").ok() == Some("CONF") && string_attr(item, "pk").ok() == Some(conf.as_str())
            })
            .unwrap();
        assert_eq!(record.get("tried"), Some(&AttributeValue::L(vec![s("agent1")])));
        assert_eq!(record.get("joined"), Some(&AttributeValue::Ss(vec!["agent2".into()])));
        assert_eq!(record.get("agent_calls"), Some(&AttributeValue::Ss(vec![contract::agent_call(2).to_string()])));
        let participant =
            scan.items().iter().find(|item| string_attr(item, "sk").ok() == Some("AGENT#agent2")).unwrap();
        assert_eq!(string_attr(participant, "call_sid").unwrap(), contract::agent_call(2).as_str());
    }
}
