//! Taps: one pass-through per function instance and upstream, so every request a function sends
//! to DynamoDB or Twilio is known by the instance that sent it, and so by the invocation that
//! instance was serving (an instance serves one at a time). DynamoDB requests are priced in read
//! and write units as they go by (`units`), Twilio's are counted.
//!
//! Pricing a write needs the item as it was before, which the request does not carry: the taps
//! remember every item they saw read or written (all of a run's items go through them). A
//! `Select=COUNT` query reads items it does not return; the taps ask the emulator for them
//! again, directly, which is neither delayed nor counted.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::units::{item_size, read_units, write_units};

type Item = Map<String, Value>;

/// A DynamoDB request as billed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DynamoCall {
    pub operation: String,
    /// The table's logical id in template.yaml (`CallsTable`), or the name when unknown.
    pub table: String,
    pub read_units: f64,
    /// The table's own write units.
    pub write_units: f64,
    /// Write units of the global secondary indexes the writes changed.
    pub index_write_units: f64,
    /// A conditional write whose condition failed (still billed), or a canceled transaction.
    pub refused: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    DynamoDb(DynamoCall),
    /// A request to Twilio's REST API: the method, the path after the account, the status, and
    /// the conference a call it places is for (from its `Url`).
    Twilio {
        method: String,
        resource: String,
        status: u16,
        conference: Option<String>,
    },
}

/// One request through a tap.
#[derive(Debug, Clone)]
pub struct TapRecord {
    pub instance: u64,
    /// When the request reached the tap.
    pub at: Instant,
    /// From then until the upstream's answer was in.
    pub took: std::time::Duration,
    pub call: Call,
}

/// Where an instance sends its requests.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub dynamodb: String,
    pub twilio: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TapError {
    #[error("the emulator did not describe table {table}: {reason}")]
    Describe { table: String, reason: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A table's keys and global secondary indexes, from DescribeTable.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub logical: String,
    pub keys: Vec<String>,
    pub indexes: Vec<Index>,
}

#[derive(Debug, Clone)]
pub struct Index {
    pub name: String,
    pub keys: Vec<String>,
    /// `None`: every attribute (`ALL`); otherwise the non-key attributes it carries.
    pub projected: Option<Vec<String>>,
}

impl Schema {
    fn key_of(&self, item: &Item) -> String {
        self.keys
            .iter()
            .map(|key| item.get(key).map(Value::to_string).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("|")
    }

    /// The write units the indexes cost when an item goes from `old` to `new`.
    fn index_writes(&self, old: Option<&Item>, new: Option<&Item>) -> f64 {
        self.indexes
            .iter()
            .map(|index| {
                let before = old.and_then(|item| index.entry(&self.keys, item));
                let after = new.and_then(|item| index.entry(&self.keys, item));
                match (before, after) {
                    (None, None) => 0.0,
                    (Some(entry), None) | (None, Some(entry)) => write_units(item_size(&entry)),
                    (Some(before), Some(after)) if index.key(&before) != index.key(&after) => {
                        write_units(item_size(&before)) + write_units(item_size(&after))
                    }
                    (Some(before), Some(after)) if before != after => write_units(item_size(&after)),
                    _ => 0.0,
                }
            })
            .fold(0.0, |total, units| total + units)
    }
}

impl Index {
    /// The item as this index holds it, if it is in the index (it has the index's keys).
    fn entry(&self, table_keys: &[String], item: &Item) -> Option<Item> {
        if !self.keys.iter().all(|key| item.contains_key(key)) {
            return None;
        }
        Some(match &self.projected {
            None => item.clone(),
            Some(attributes) => item
                .iter()
                .filter(|(name, _)| table_keys.contains(name) || self.keys.contains(name) || attributes.contains(name))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
        })
    }

    fn key(&self, entry: &Item) -> Vec<Option<Value>> {
        self.keys.iter().map(|key| entry.get(key).cloned()).collect()
    }
}

struct Inner {
    http: reqwest::Client,
    /// Where DynamoDB requests go on (the latency proxy in front of the emulator).
    dynamodb: String,
    /// The emulator itself, for the taps' own reads.
    emulator: String,
    twilio: String,
    schemas: HashMap<String, Schema>,
    items: Mutex<HashMap<(String, String), Item>>,
    records: Mutex<Vec<TapRecord>>,
    servers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

#[derive(Clone)]
pub struct Taps {
    inner: Arc<Inner>,
}

/// moto picks the service from the credential scope of `Authorization`; it checks no signature.
const EMULATOR_AUTH: &str =
    "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0";

impl Taps {
    /// Taps in front of `dynamodb` and `twilio`, for `tables` (name, logical id) in `emulator`.
    pub async fn start(
        dynamodb: &str,
        emulator: &str,
        twilio: &str,
        tables: &[(String, String)],
    ) -> Result<Self, TapError> {
        let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().map_err(std::io::Error::other)?;
        let mut schemas = HashMap::new();
        for (name, logical) in tables {
            let described = emulator_call(&http, emulator, "DescribeTable", &json!({ "TableName": name }))
                .await
                .map_err(|reason| TapError::Describe { table: name.clone(), reason })?;
            schemas.insert(name.clone(), schema(logical, &described["Table"]));
        }
        let inner = Inner {
            http,
            dynamodb: dynamodb.trim_end_matches('/').to_owned(),
            emulator: emulator.trim_end_matches('/').to_owned(),
            twilio: twilio.trim_end_matches('/').to_owned(),
            schemas,
            items: Mutex::default(),
            records: Mutex::default(),
            servers: Mutex::default(),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Two fresh taps for `instance`: its DynamoDB endpoint and its Twilio REST base URL.
    pub async fn open(&self, instance: u64) -> std::io::Result<Endpoints> {
        let dynamodb = self.listen(instance, Upstream::DynamoDb).await?;
        let twilio = self.listen(instance, Upstream::Twilio).await?;
        Ok(Endpoints { dynamodb: format!("http://{dynamodb}"), twilio: format!("http://{twilio}") })
    }

    async fn listen(&self, instance: u64, upstream: Upstream) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let state = Tap { taps: self.clone(), instance, upstream };
        let app = axum::Router::new().fallback(forward).with_state(state);
        let server = tokio::spawn(async move {
            // Ends when the run drops the taps; an instance that goes away just stops calling.
            let _ = axum::serve(crate::net::no_delay(listener), app).await;
        });
        lock(&self.inner.servers).push(server);
        Ok(addr)
    }

    /// Every request so far, in the order they reached the taps.
    pub fn records(&self) -> Vec<TapRecord> {
        let mut records = lock(&self.inner.records).clone();
        records.sort_by_key(|record| record.at);
        records
    }

    fn record(&self, instance: u64, at: Instant, took: std::time::Duration, call: Call) {
        lock(&self.inner.records).push(TapRecord { instance, at, took, call });
    }

    fn schema(&self, table: &str) -> Schema {
        self.inner
            .schemas
            .get(table)
            .cloned()
            .unwrap_or_else(|| Schema { logical: table.to_owned(), ..Schema::default() })
    }

    fn remembered(&self, table: &str, key: &str) -> Option<Item> {
        lock(&self.inner.items).get(&(table.to_owned(), key.to_owned())).cloned()
    }

    fn remember(&self, table: &str, schema: &Schema, item: Option<&Item>, key: Option<String>) {
        let mut items = lock(&self.inner.items);
        match (item, key) {
            (Some(item), _) => {
                items.insert((table.to_owned(), schema.key_of(item)), item.clone());
            }
            (None, Some(key)) => {
                items.remove(&(table.to_owned(), key));
            }
            (None, None) => {}
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for server in lock(&self.servers).drain(..) {
            server.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock means a panic elsewhere already failed the run; the data is still whole.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn schema(logical: &str, table: &Value) -> Schema {
    let keys = |schema: &Value| -> Vec<String> {
        schema
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|key| key["AttributeName"].as_str().map(str::to_owned))
            .collect()
    };
    let indexes = table["GlobalSecondaryIndexes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|index| Index {
            name: index["IndexName"].as_str().unwrap_or_default().to_owned(),
            keys: keys(&index["KeySchema"]),
            projected: match index["Projection"]["ProjectionType"].as_str() {
                Some("ALL") => None,
                Some("INCLUDE") => Some(
                    index["Projection"]["NonKeyAttributes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|name| name.as_str().map(str::to_owned))
                        .collect(),
                ),
                _ => Some(Vec::new()),
            },
        })
        .collect();
    Schema { logical: logical.to_owned(), keys: keys(&table["KeySchema"]), indexes }
}

async fn emulator_call(http: &reqwest::Client, emulator: &str, operation: &str, body: &Value) -> Result<Value, String> {
    let response = http
        .post(emulator)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", format!("DynamoDB_20120810.{operation}"))
        .header("authorization", EMULATOR_AUTH)
        .body(body.to_string())
        .send()
        .await
        .map_err(|err| err.to_string())?;
    let status = response.status();
    let text = response.text().await.map_err(|err| err.to_string())?;
    if !status.is_success() {
        return Err(format!("{status}: {text}"));
    }
    serde_json::from_str(&text).map_err(|err| err.to_string())
}

#[derive(Clone, Copy)]
enum Upstream {
    DynamoDb,
    Twilio,
}

#[derive(Clone)]
struct Tap {
    taps: Taps,
    instance: u64,
    upstream: Upstream,
}

/// Headers that belong to one connection; the length is set again from the body.
const HOP_BY_HOP: [&str; 6] = ["host", "connection", "keep-alive", "transfer-encoding", "content-length", "upgrade"];

async fn forward(State(tap): State<Tap>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let at = Instant::now();
    let inner = &tap.taps.inner;
    let base = match tap.upstream {
        Upstream::DynamoDb => &inner.dynamodb,
        Upstream::Twilio => &inner.twilio,
    };
    let mut outgoing = headers.clone();
    for name in HOP_BY_HOP {
        outgoing.remove(name);
    }
    let path = uri.path_and_query().map_or("/", |path| path.as_str());
    let sent =
        inner.http.request(method.clone(), format!("{base}{path}")).headers(outgoing).body(body.clone()).send().await;
    let Ok(answer) = sent else {
        return (StatusCode::BAD_GATEWAY, "the upstream is unreachable").into_response();
    };
    let status = answer.status();
    let mut answer_headers = answer.headers().clone();
    for name in HOP_BY_HOP {
        answer_headers.remove(name);
    }
    let Ok(answer_body) = answer.bytes().await else {
        return (StatusCode::BAD_GATEWAY, "the upstream's answer broke off").into_response();
    };
    let took = at.elapsed();
    match tap.upstream {
        Upstream::DynamoDb => {
            let operation = headers
                .get("x-amz-target")
                .and_then(|target| target.to_str().ok())
                .and_then(|target| target.rsplit('.').next())
                .unwrap_or_default()
                .to_owned();
            let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let answer: Value = serde_json::from_slice(&answer_body).unwrap_or(Value::Null);
            let calls = tap.taps.price(&operation, &request, status.as_u16(), &answer).await;
            for call in calls {
                tap.taps.record(tap.instance, at, took, Call::DynamoDb(call));
            }
        }
        Upstream::Twilio => {
            let resource = uri.path().split_once("/Accounts/").map_or(uri.path(), |(_, rest)| rest);
            let resource = resource.split_once('/').map_or(resource, |(_, rest)| rest);
            let resource = if resource.starts_with("Calls/") { "Calls/{CallSid}.json" } else { resource };
            tap.taps.record(
                tap.instance,
                at,
                took,
                Call::Twilio {
                    method: method.to_string(),
                    resource: resource.to_owned(),
                    status: status.as_u16(),
                    conference: conference_of(&body),
                },
            );
        }
    }
    (status, answer_headers, answer_body).into_response()
}

impl Taps {
    /// The units `operation` costs, one entry per table it touches.
    async fn price(&self, operation: &str, request: &Value, status: u16, answer: &Value) -> Vec<DynamoCall> {
        let ok = status == 200;
        let refused = answer["__type"].as_str().is_some_and(|kind| {
            kind.ends_with("ConditionalCheckFailedException") || kind.ends_with("TransactionCanceledException")
        });
        let table = request["TableName"].as_str().unwrap_or_default();
        let schema = self.schema(table);
        let mut call = DynamoCall {
            operation: operation.to_owned(),
            table: schema.logical.clone(),
            refused,
            ..DynamoCall::default()
        };
        match operation {
            "GetItem" => {
                let item = answer["Item"].as_object();
                let consistent = request["ConsistentRead"].as_bool() == Some(true);
                call.read_units = read_units(item.map_or(0, item_size), consistent);
                if ok {
                    let key = request["Key"].as_object().map(|key| schema.key_of(key));
                    self.remember(table, &schema, item, key);
                }
            }
            "Query" | "Scan" => {
                let consistent = request["ConsistentRead"].as_bool() == Some(true);
                let read = if request["Select"].as_str() == Some("COUNT") {
                    // The items were read, only not returned: read them again to size them.
                    let mut again = request.clone();
                    if let Some(fields) = again.as_object_mut() {
                        fields.remove("Select");
                    }
                    let listed = emulator_call(&self.inner.http, &self.inner.emulator, operation, &again).await;
                    listed.map_or(0, |listed| items_size(&listed))
                } else {
                    let returned = items_size(answer);
                    let (count, scanned) =
                        (answer["Count"].as_u64().unwrap_or(0), answer["ScannedCount"].as_u64().unwrap_or(0));
                    // A filter drops items after they are read: the dropped ones cost as much.
                    if count > 0 && scanned > count { returned * scanned / count } else { returned }
                };
                call.read_units = read_units(read, consistent);
                if ok && request["Select"].as_str() != Some("COUNT") {
                    let projected_whole = match request["IndexName"].as_str() {
                        None => true,
                        Some(name) => {
                            schema.indexes.iter().any(|index| index.name == name && index.projected.is_none())
                        }
                    };
                    if projected_whole {
                        for item in answer["Items"].as_array().into_iter().flatten().filter_map(Value::as_object) {
                            self.remember(table, &schema, Some(item), None);
                        }
                    }
                }
            }
            "PutItem" | "DeleteItem" | "UpdateItem" => {
                let key = match operation {
                    "PutItem" => request["Item"].as_object().map(|item| schema.key_of(item)),
                    _ => request["Key"].as_object().map(|key| schema.key_of(key)),
                };
                let old = key.as_deref().and_then(|key| self.remembered(table, key));
                let new = match operation {
                    "PutItem" => request["Item"].as_object().cloned(),
                    "DeleteItem" => None,
                    _ if ok => {
                        let read = json!({ "TableName": table, "Key": request["Key"], "ConsistentRead": true });
                        let got = emulator_call(&self.inner.http, &self.inner.emulator, "GetItem", &read).await;
                        got.ok().and_then(|got| got["Item"].as_object().cloned())
                    }
                    _ => None,
                };
                let old_size = old.as_ref().map_or(0, item_size);
                if ok {
                    call.write_units = write_units(old_size.max(new.as_ref().map_or(0, item_size)));
                    call.index_write_units = schema.index_writes(old.as_ref(), new.as_ref());
                    self.remember(table, &schema, new.as_ref(), key);
                } else if refused {
                    call.write_units = write_units(old_size);
                }
            }
            "TransactWriteItems" => return self.price_transaction(request, ok, refused),
            _ => {}
        }
        vec![call]
    }

    /// Each action of a transaction at twice the standard units; the indexes at the standard
    /// rate. A canceled transaction is billed as if its writes had gone through, without the
    /// index writes that never happened.
    fn price_transaction(&self, request: &Value, ok: bool, refused: bool) -> Vec<DynamoCall> {
        let mut calls: Vec<DynamoCall> = Vec::new();
        for action in request["TransactItems"].as_array().into_iter().flatten() {
            let Some((kind, body)) = action.as_object().and_then(|action| action.iter().next()) else { continue };
            let table = body["TableName"].as_str().unwrap_or_default();
            let schema = self.schema(table);
            let key = match kind.as_str() {
                "Put" => body["Item"].as_object().map(|item| schema.key_of(item)),
                _ => body["Key"].as_object().map(|key| schema.key_of(key)),
            };
            let old = key.as_deref().and_then(|key| self.remembered(table, key));
            let new = match kind.as_str() {
                "Put" => body["Item"].as_object().cloned(),
                // An update's result is not in the request; Warmline's transactions only put and delete.
                "Update" | "ConditionCheck" => old.clone(),
                _ => None,
            };
            let size = old.as_ref().map_or(0, item_size).max(new.as_ref().map_or(0, item_size));
            let mut call = DynamoCall {
                operation: "TransactWriteItems".to_owned(),
                table: schema.logical.clone(),
                write_units: 2.0 * write_units(size),
                refused,
                ..DynamoCall::default()
            };
            if ok && kind != "ConditionCheck" {
                call.index_write_units = schema.index_writes(old.as_ref(), new.as_ref());
                self.remember(table, &schema, new.as_ref(), key);
            }
            match calls.iter_mut().find(|earlier| earlier.table == call.table) {
                Some(earlier) => {
                    earlier.write_units += call.write_units;
                    earlier.index_write_units += call.index_write_units;
                }
                None => calls.push(call),
            }
        }
        calls
    }
}

/// The conference in a placed call's `Url` (`…/conference/{conference}/connect/{agent}`).
fn conference_of(form: &[u8]) -> Option<String> {
    let url = std::str::from_utf8(form).ok()?.split('&').find_map(|pair| pair.strip_prefix("Url="))?;
    let url = url.replace("%2F", "/").replace("%2f", "/");
    let rest = url.split("/conference/").nth(1)?;
    rest.split('/').next().map(str::to_owned)
}

fn items_size(answer: &Value) -> u64 {
    answer["Items"].as_array().into_iter().flatten().filter_map(Value::as_object).map(item_size).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls_schema() -> Schema {
        let described = json!({
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "GlobalSecondaryIndexes": [
                {"IndexName": "waiting", "KeySchema": [{"AttributeName": "queue"}, {"AttributeName": "queue_key"}], "Projection": {"ProjectionType": "ALL"}},
                {"IndexName": "phones", "KeySchema": [{"AttributeName": "phone"}], "Projection": {"ProjectionType": "KEYS_ONLY"}},
            ]
        });
        schema("CallsTable", &described)
    }

    fn item(value: Value) -> Item {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn an_item_entering_leaving_or_moving_in_an_index_costs_its_entry() {
        let schema = calls_schema();
        let outside = item(json!({"pk": {"S": "CONF#CA1"}, "sk": {"S": "CONF"}, "state": {"S": "offered"}}));
        let waiting = item(
            json!({"pk": {"S": "CONF#CA1"}, "sk": {"S": "CONF"}, "state": {"S": "waiting"}, "queue": {"S": "waiting"}, "queue_key": {"S": "1"}}),
        );
        let moved = item(
            json!({"pk": {"S": "CONF#CA1"}, "sk": {"S": "CONF"}, "state": {"S": "waiting"}, "queue": {"S": "waiting"}, "queue_key": {"S": "2"}}),
        );
        let changed = item(
            json!({"pk": {"S": "CONF#CA1"}, "sk": {"S": "CONF"}, "state": {"S": "told"}, "queue": {"S": "waiting"}, "queue_key": {"S": "1"}}),
        );
        assert_eq!(schema.index_writes(None, Some(&outside)), 0.0, "in no index");
        assert_eq!(schema.index_writes(None, Some(&waiting)), 1.0, "enters one");
        assert_eq!(schema.index_writes(Some(&waiting), Some(&outside)), 1.0, "leaves it");
        assert_eq!(schema.index_writes(Some(&waiting), Some(&moved)), 2.0, "its key changes: out and in");
        assert_eq!(schema.index_writes(Some(&waiting), Some(&changed)), 1.0, "a projected attribute changes");
        assert_eq!(schema.index_writes(Some(&waiting), Some(&waiting)), 0.0, "nothing changes");
        assert_eq!(schema.index_writes(Some(&waiting), None), 1.0, "deleted");
    }

    #[test]
    fn a_keys_only_index_changes_only_with_its_keys() {
        let schema = calls_schema();
        let one = item(json!({"pk": {"S": "T1"}, "sk": {"S": "T"}, "phone": {"S": "+1555"}, "name": {"S": "Ada"}}));
        let renamed = item(json!({"pk": {"S": "T1"}, "sk": {"S": "T"}, "phone": {"S": "+1555"}, "name": {"S": "Bea"}}));
        assert_eq!(schema.index_writes(Some(&one), Some(&renamed)), 0.0);
        assert_eq!(schema.index_writes(None, Some(&one)), 1.0);
    }
}
