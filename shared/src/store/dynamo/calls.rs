//! The Calls table in DynamoDB. One table, generic keys, so a conference keeps everything about
//! itself under its own partition:
//!
//! | pk            | sk            | what                                       |
//! |---------------|---------------|--------------------------------------------|
//! | `CONF#<sid>`  | `CONF`        | the conference (first agent, timestamps)   |
//! | `CONF#<sid>`  | `AGENT#<id>`  | an agent who joined it                     |
//! | `AGENT#<id>`  | `CONF`        | the conference that agent is in now        |
//!
//! Every item carries `expires_at` (epoch seconds), the table's TTL attribute.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use super::{CALL_RECORD_TTL_SECONDS, CallStore, Conference, StoreError};
use crate::domain::{AgentId, CallSid};

const CONFERENCE_SK: &str = "CONF";

#[derive(Debug, Clone)]
pub struct DynamoCallStore {
    client: Client,
    table: String,
}

impl DynamoCallStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn conference_pk(id: &CallSid) -> String {
    format!("CONF#{id}")
}

fn agent_pk(agent: &AgentId) -> String {
    format!("AGENT#{agent}")
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn unavailable<E: std::error::Error + Send + Sync + 'static>(err: E) -> StoreError {
    StoreError::Unavailable(Box::new(err))
}

type Item = HashMap<String, AttributeValue>;

fn string_attr<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::Corrupt(format!("missing string attribute {name}")))
}

fn number_attr(item: &Item, name: &str) -> Result<i64, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("missing number attribute {name}")))
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
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .map_err(unavailable)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

#[async_trait]
impl CallStore for DynamoCallStore {
    async fn create_conference(&self, conference: &Conference) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(conference_pk(&conference.id)))
            .item("sk", s(CONFERENCE_SK))
            .item("first_agent", s(conference.first_agent.as_str()))
            .item("created_at", n(conference.created_at))
            .item("expires_at", n(conference.expires_at))
            // An expired record that the TTL sweeper has not removed yet does not count.
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_values(":now", n(conference.created_at))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(err))
                if matches!(err.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(false)
            }
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn conference(&self, id: &CallSid, now: i64) -> Result<Option<Conference>, StoreError> {
        let Some(item) = self.get(conference_pk(id), CONFERENCE_SK).await? else {
            return Ok(None);
        };
        let expires_at = number_attr(&item, "expires_at")?;
        if expires_at <= now {
            return Ok(None);
        }
        let first_agent = AgentId::parse(string_attr(&item, "first_agent")?)
            .map_err(|_| StoreError::Corrupt("first_agent is not an agent id".into()))?;
        Ok(Some(Conference {
            id: id.clone(),
            first_agent,
            created_at: number_attr(&item, "created_at")?,
            expires_at,
        }))
    }

    async fn delete_conference(&self, id: &CallSid) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(conference_pk(id)))
            .key("sk", s(CONFERENCE_SK))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn record_agent_joined(
        &self,
        agent: &AgentId,
        conference: &CallSid,
        now: i64,
    ) -> Result<(), StoreError> {
        let expires_at = n(now + CALL_RECORD_TTL_SECONDS);
        let participant: Item = [
            ("pk".to_owned(), s(conference_pk(conference))),
            ("sk".to_owned(), s(format!("AGENT#{agent}"))),
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
        self.client
            .transact_write_items()
            .transact_items(self.put(participant)?)
            .transact_items(self.put(current)?)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn conference_of_agent(
        &self,
        agent: &AgentId,
        now: i64,
    ) -> Result<Option<CallSid>, StoreError> {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract;
    use crate::test_support;

    async fn fresh_store() -> Box<dyn CallStore> {
        let tables = test_support::emulator_tables().await;
        Box::new(DynamoCallStore::new(
            tables.client.clone(),
            tables.name("CallsTable"),
        ))
    }

    contract::call_store_contract!(fresh_store());

    #[tokio::test]
    async fn an_unreachable_table_is_unavailable_not_a_panic() {
        let tables = test_support::emulator_tables().await;
        let store = DynamoCallStore::new(tables.client.clone(), "no-such-table");
        let err = store
            .conference(&contract::sid(1), contract::NOW)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    }

    #[tokio::test]
    async fn stores_items_under_the_documented_keys() {
        let tables = test_support::emulator_tables().await;
        let table = tables.name("CallsTable");
        let store = DynamoCallStore::new(tables.client.clone(), table.clone());
        store
            .create_conference(&contract::conference(7, contract::NOW))
            .await
            .unwrap();
        store
            .record_agent_joined(&contract::agent("agent2"), &contract::sid(7), contract::NOW)
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
                (
                    "AGENT#agent2".to_owned(),
                    "CONF".to_owned(),
                    CALL_RECORD_TTL_SECONDS
                ),
                (
                    conf.clone(),
                    "AGENT#agent2".to_owned(),
                    CALL_RECORD_TTL_SECONDS
                ),
                (conf, "CONF".to_owned(), CALL_RECORD_TTL_SECONDS),
            ]
        );
    }
}
