//! DynamoDB implementations of the storage ports, and the attribute helpers they share.

mod agents;
mod calls;
mod ledger;
mod tickets;

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;

pub use agents::DynamoAgentStore;
pub use calls::DynamoCallStore;
pub use ledger::DynamoLedgerStore;
pub use tickets::DynamoTicketStore;

use super::StoreError;

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn unavailable<E: std::error::Error + Send + Sync + 'static>(err: E) -> StoreError {
    StoreError::Unavailable(Box::new(err))
}

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn string_attr<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::Corrupt(format!("missing string attribute {name}")))
}

pub(crate) fn number_attr(item: &Item, name: &str) -> Result<i64, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("missing number attribute {name}")))
}

/// Whether a write was refused by its condition (the expected outcome of a duplicate), as
/// opposed to failing.
pub(crate) fn is_condition_failure<E>(err: &SdkError<E>, check: impl Fn(&E) -> bool) -> bool {
    matches!(err, SdkError::ServiceError(service) if check(service.err()))
}
