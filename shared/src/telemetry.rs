//! Logs and metrics.
//!
//! Logs are JSON with the Lambda request id when the function runs with `LoggingConfig: JSON`
//! (the runtime reads `AWS_LAMBDA_LOG_FORMAT`), plain text locally (`init`).
//!
//! Metrics are CloudWatch Embedded Metric Format (EMF): one JSON line on stdout per event, which
//! CloudWatch Logs turns into metrics in the namespace `METRICS_NAMESPACE` (template.yaml:
//! `Warmline/<stack>`). No API call is made on a request's path, and emitting never fails a
//! request: a line that cannot be written is dropped. Lambda passes a line that is JSON already
//! through unchanged, so the JSON log format keeps it readable for CloudWatch.
//!
//! | metric                              | unit         | dimensions  | when                                       |
//! |-------------------------------------|--------------|-------------|--------------------------------------------|
//! | `CallsOffered`                      | Count        | none        | a caller is put in line (once per call)    |
//! | `CallsAnswered`, `QueueWait`        | Count, s     | none        | the first agent answers; waited since arrival |
//! | `CallsAbandoned`, `AbandonedWait`   | Count, s     | none        | a caller hangs up in line or while rung for |
//! | `Voicemails`                        | Count        | none        | a message became a ticket                  |
//! | `Transfers`                         | Count        | none        | an agent dialed a colleague in             |
//! | `TalkTime`                          | s            | none        | an agent leaves a call, or it ends         |
//! | `WebhookLatency`                    | Milliseconds | `Route`, none | Twilio's request is answered             |
//! | `Errors`                            | Count        | `Kind`      | a request is answered with an error        |
//!
//! Call events carry the `CallSid` as a property (searchable in Logs Insights, never a
//! dimension: one per call would be a metric per call).

use std::sync::OnceLock;
use std::time::Instant;

#[cfg(any(test, feature = "testkit"))]
use serde_json::Value;

use crate::json;

/// Where metrics go when `METRICS_NAMESPACE` is unset (local runs).
pub const DEFAULT_NAMESPACE: &str = "Warmline";

static NAMESPACE: OnceLock<String> = OnceLock::new();

/// Logging, and the metrics' namespace, once per cold start.
pub fn init() {
    init_with_writer(std::io::stdout);
    namespace();
}

/// The subscriber `lambda_http::tracing::init_default_subscriber` installs (the level from
/// `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`, else INFO; no time or target; JSON when
/// `AWS_LAMBDA_LOG_FORMAT` is `JSON`), writing to `writer`. Its JSON lines are written by
/// `LambdaJson` and `LambdaJsonFields`, the same lines without the cost of re-reading every
/// span's fields.
pub fn init_with_writer<W>(writer: W)
where
    W: for<'writer> subscriber::fmt::MakeWriter<'writer> + Send + Sync + 'static,
{
    use std::str::FromStr as _;
    use subscriber::filter::{EnvFilter, LevelFilter};

    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG"));
    let level = LevelFilter::from_str(level.as_deref().unwrap_or("INFO")).unwrap_or(LevelFilter::INFO);
    let filter = EnvFilter::builder().with_default_directive(level.into()).from_env_lossy();
    let builder = subscriber::fmt().with_target(false).without_time().with_env_filter(filter).with_writer(writer);
    // A second initialisation (tests, benchmarks) keeps the first subscriber.
    if std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json")) {
        let _ = builder.fmt_fields(LambdaJsonFields).event_format(LambdaJson).try_init();
    } else {
        let _ = builder.try_init();
    }
}

use lambda_http::tracing::subscriber;

/// tracing-subscriber's JSON lines (`{"level", "fields", "span", "spans"}`, as its `json()`
/// writes them with the options above), written directly. Its own formatter parses every span's
/// fields back from their JSON text, twice per line, to write them out again: with the runtime's
/// span and a webhook's, that was most of what a log line cost. The text is spliced in instead.
struct LambdaJson;

impl<S, N> subscriber::fmt::FormatEvent<S, N> for LambdaJson
where
    S: lambda_http::tracing::Subscriber + for<'a> subscriber::registry::LookupSpan<'a>,
    N: for<'writer> subscriber::fmt::FormatFields<'writer> + 'static,
{
    fn format_event(
        &self,
        ctx: &subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: subscriber::fmt::format::Writer<'_>,
        event: &lambda_http::tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut line = Vec::with_capacity(256);
        line.extend_from_slice(br#"{"level":"#);
        json::string(&mut line, event.metadata().level().as_str());
        line.extend_from_slice(br#","fields":{"#);
        event.record(&mut JsonFieldsVisitor::new(&mut line));
        line.push(b'}');
        let current = event.parent().and_then(|id| ctx.span(id)).or_else(|| ctx.lookup_current());
        if let Some(span) = &current {
            line.extend_from_slice(br#","span":"#);
            write_span::<S, N>(&mut line, span);
            line.extend_from_slice(br#","spans":["#);
            if let Some(leaf) = ctx.lookup_current() {
                for (at, span) in leaf.scope().from_root().enumerate() {
                    if at > 0 {
                        line.push(b',');
                    }
                    write_span::<S, N>(&mut line, &span);
                }
            }
            line.push(b']');
        }
        line.extend_from_slice(b"}\n");
        writer.write_str(std::str::from_utf8(&line).map_err(|_| std::fmt::Error)?)
    }
}

/// A span as `{<its fields>, "name": ...}`: its fields are kept as the text of a JSON object
/// (`JsonFields`), whose members go in as they are.
fn write_span<S, N>(line: &mut Vec<u8>, span: &subscriber::registry::SpanRef<'_, S>)
where
    S: for<'a> subscriber::registry::LookupSpan<'a>,
    N: for<'writer> subscriber::fmt::FormatFields<'writer> + 'static,
{
    let extensions = span.extensions();
    let fields = extensions.get::<subscriber::fmt::FormattedFields<N>>().map_or("", |fields| fields.fields.as_str());
    line.push(b'{');
    match fields.strip_prefix('{').and_then(|fields| fields.strip_suffix('}')) {
        Some(members) => {
            line.extend_from_slice(members.as_bytes());
            if !members.is_empty() {
                line.push(b',');
            }
        }
        // Never written by JsonFields; tracing-subscriber reports it so.
        None => {
            line.extend_from_slice(br#""field_error":"#);
            json::string(line, "the span's fields are not a JSON object");
            line.push(b',');
        }
    }
    line.extend_from_slice(br#""name":"#);
    json::string(line, span.metadata().name());
    line.push(b'}');
}

/// An event's fields as tracing-serde writes them: strings and numbers as they are, anything
/// else (the message among them) as its `Debug` text.
struct JsonFieldsVisitor<'a> {
    line: &'a mut Vec<u8>,
    previous: Option<&'static str>,
    /// Whether every name so far came after the one before it, as in a `BTreeMap`.
    in_order: bool,
}

impl<'a> JsonFieldsVisitor<'a> {
    fn new(line: &'a mut Vec<u8>) -> Self {
        Self { line, previous: None, in_order: true }
    }

    fn key(&mut self, name: &'static str) {
        if let Some(previous) = self.previous.replace(name) {
            self.in_order &= previous < name;
            self.line.push(b',');
        }
        json::string(self.line, name);
        self.line.push(b':');
    }
}

impl lambda_http::tracing::field::Visit for JsonFieldsVisitor<'_> {
    fn record_bool(&mut self, field: &lambda_http::tracing::field::Field, value: bool) {
        self.key(field.name());
        json::value(self.line, &value);
    }

    fn record_debug(&mut self, field: &lambda_http::tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.key(field.name());
        json::value(self.line, &format_args!("{value:?}"));
    }

    fn record_u64(&mut self, field: &lambda_http::tracing::field::Field, value: u64) {
        self.key(field.name());
        json::value(self.line, &value);
    }

    fn record_i64(&mut self, field: &lambda_http::tracing::field::Field, value: i64) {
        self.key(field.name());
        json::value(self.line, &value);
    }

    fn record_f64(&mut self, field: &lambda_http::tracing::field::Field, value: f64) {
        self.key(field.name());
        json::value(self.line, &value);
    }

    fn record_str(&mut self, field: &lambda_http::tracing::field::Field, value: &str) {
        self.key(field.name());
        json::string(self.line, value);
    }
}

/// A span's fields as `JsonFields` keeps them (a JSON object, names in order), written directly:
/// `JsonFields` builds a map of `serde_json::Value`s for every span, which cost a webhook's span
/// more than the rest of its log line. Fields recorded later, and a span whose fields are not
/// declared in name order, go through `JsonFields` itself.
struct LambdaJsonFields;

impl<'writer> subscriber::fmt::FormatFields<'writer> for LambdaJsonFields {
    fn format_fields<R: subscriber::field::RecordFields>(
        &self,
        mut writer: subscriber::fmt::format::Writer<'writer>,
        fields: R,
    ) -> std::fmt::Result {
        let mut object = Vec::with_capacity(64);
        object.push(b'{');
        let mut visitor = JsonFieldsVisitor::new(&mut object);
        fields.record(&mut visitor);
        if !visitor.in_order {
            return subscriber::fmt::format::JsonFields::new().format_fields(writer, fields);
        }
        object.push(b'}');
        writer.write_str(std::str::from_utf8(&object).map_err(|_| std::fmt::Error)?)
    }

    fn add_fields(
        &self,
        current: &'writer mut subscriber::fmt::FormattedFields<Self>,
        fields: &lambda_http::tracing::span::Record<'_>,
    ) -> std::fmt::Result {
        let mut merged = subscriber::fmt::FormattedFields::<subscriber::fmt::format::JsonFields>::new(std::mem::take(
            &mut current.fields,
        ));
        let result = subscriber::fmt::format::JsonFields::new().add_fields(&mut merged, fields);
        current.fields = merged.fields;
        result
    }
}

fn namespace() -> &'static str {
    NAMESPACE.get_or_init(|| {
        // Read here, not in `Config`: metrics are written by code that holds no configuration
        // (the pipeline, the error module), and a function that fails its configuration still
        // reports its errors.
        std::env::var("METRICS_NAMESPACE")
            .ok()
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned())
    })
}

/// What happened to a support call, as the dashboard counts it. Durations are milliseconds, as
/// the call flow's clock reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEvent {
    /// Put in line.
    Offered,
    /// An agent answered from the line, this long after the caller arrived.
    Answered { waited_ms: i64 },
    /// The caller hung up in line (or while an agent was rung for them), after this long.
    Abandoned { waited_ms: i64 },
    /// A message became a ticket.
    Voicemail,
    /// An agent dialed a colleague into the call.
    Transfer,
    /// An agent was in the call this long.
    Talked { talked_ms: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Count,
    Seconds,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Seconds => "Seconds",
            Self::Milliseconds => "Milliseconds",
        }
    }
}

/// One EMF document: metrics sharing dimensions, with their dimension values and properties.
struct Document<'a> {
    /// Each inner list is one dimension set; an empty one publishes the metrics without
    /// dimensions too (the aggregate the alarms watch).
    dimension_sets: &'a [&'a [&'a str]],
    values: &'a [(&'a str, &'a str)],
    metrics: &'a [(&'a str, Unit, f64)],
}

impl Document<'_> {
    /// The document as one line of JSON, written out directly: built as a `serde_json::Value`
    /// first, its tree of maps cost a webhook more than checking Twilio's signature.
    fn to_line(&self, namespace: &str, timestamp_ms: i64) -> String {
        let mut out = Vec::with_capacity(320);
        out.extend_from_slice(br#"{"_aws":{"Timestamp":"#);
        json::value(&mut out, &timestamp_ms);
        out.extend_from_slice(br#","CloudWatchMetrics":[{"Namespace":"#);
        json::string(&mut out, namespace);
        out.extend_from_slice(br#","Dimensions":"#);
        json::value(&mut out, self.dimension_sets);
        out.extend_from_slice(br#","Metrics":["#);
        for (at, (name, unit, _)) in self.metrics.iter().enumerate() {
            if at > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"Name":"#);
            json::string(&mut out, name);
            out.extend_from_slice(br#","Unit":"#);
            json::string(&mut out, unit.as_str());
            out.push(b'}');
        }
        out.extend_from_slice(b"]}]}");
        for (name, value) in self.values {
            out.push(b',');
            json::string(&mut out, name);
            out.push(b':');
            json::string(&mut out, value);
        }
        for (name, _, value) in self.metrics {
            out.push(b',');
            json::string(&mut out, name);
            out.push(b':');
            json::value(&mut out, value);
        }
        out.push(b'}');
        String::from_utf8(out).unwrap_or_default()
    }
}

/// A clock that stepped back counts as no time at all.
fn seconds(millis: i64) -> f64 {
    millis.max(0) as f64 / 1000.0
}

/// Counts what happened to the call `call_sid`.
pub fn call(event: CallEvent, call_sid: &str) {
    let metrics: &[(&str, Unit, f64)] = match event {
        CallEvent::Offered => &[("CallsOffered", Unit::Count, 1.0)],
        CallEvent::Answered { waited_ms } => {
            &[("CallsAnswered", Unit::Count, 1.0), ("QueueWait", Unit::Seconds, seconds(waited_ms))]
        }
        CallEvent::Abandoned { waited_ms } => {
            &[("CallsAbandoned", Unit::Count, 1.0), ("AbandonedWait", Unit::Seconds, seconds(waited_ms))]
        }
        CallEvent::Voicemail => &[("Voicemails", Unit::Count, 1.0)],
        CallEvent::Transfer => &[("Transfers", Unit::Count, 1.0)],
        CallEvent::Talked { talked_ms } => &[("TalkTime", Unit::Seconds, seconds(talked_ms))],
    };
    emit(&Document { dimension_sets: &[&[]], values: &[("CallSid", call_sid)], metrics });
}

/// How long Twilio waited for the answer to a `method` request to the route whose template is
/// `path` (`unknown` when it named none), by route (`POST /conference/wait`) and in all.
pub fn webhook_answered(method: &str, path: Option<&str>, started: Instant) {
    let path = path.unwrap_or("unknown");
    let mut route = String::with_capacity(method.len() + 1 + path.len());
    route.push_str(method);
    route.push(' ');
    route.push_str(path);
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    emit(&Document {
        dimension_sets: &[&["Route"], &[]],
        values: &[("Route", route.as_str())],
        metrics: &[("WebhookLatency", Unit::Milliseconds, millis)],
    });
}

/// A request answered with an error of this kind (`AppError`'s variant: `Store`, `Forbidden`…).
pub fn error(kind: &str) {
    emit(&Document {
        dimension_sets: &[&["Kind"]],
        values: &[("Kind", kind)],
        metrics: &[("Errors", Unit::Count, 1.0)],
    });
}

/// The name of an enum variant from its `Debug` text (`Store(…)` → `Store`): the error kind,
/// without a list to keep in step with the variants.
pub fn variant_name(debug: &str) -> &str {
    let end = debug.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(debug.len());
    &debug[..end]
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

fn emit(document: &Document<'_>) {
    sink::write(document.to_line(namespace(), now_millis()));
}

/// Deployed: stdout, one whole line per write. With the test kit: nowhere, unless a test
/// captures the lines on its own thread.
#[cfg(not(any(test, feature = "testkit")))]
mod sink {
    use std::io::Write;

    pub fn write(mut line: String) {
        line.push('\n');
        // One write of the whole line keeps concurrent lines apart; a failure is dropped.
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }
}

#[cfg(any(test, feature = "testkit"))]
mod sink {
    use std::cell::RefCell;

    thread_local! {
        pub static CAPTURED: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
    }

    pub fn write(line: String) {
        CAPTURED.with(|captured| {
            if let Some(lines) = captured.borrow_mut().as_mut() {
                lines.push(line);
            }
        });
    }
}

/// Collects the metric lines emitted on this thread (a `#[tokio::test]` runs its tasks on one)
/// while it lives.
#[cfg(any(test, feature = "testkit"))]
pub struct CapturedMetrics(());

#[cfg(any(test, feature = "testkit"))]
impl CapturedMetrics {
    pub fn start() -> Self {
        sink::CAPTURED.with(|captured| *captured.borrow_mut() = Some(Vec::new()));
        Self(())
    }

    /// Every EMF document so far, parsed.
    pub fn documents(&self) -> Vec<Value> {
        sink::CAPTURED.with(|captured| {
            captured.borrow().iter().flatten().filter_map(|line| serde_json::from_str(line).ok()).collect()
        })
    }

    /// The values of metric `name` so far, in order.
    pub fn values(&self, name: &str) -> Vec<f64> {
        self.documents().iter().filter_map(|document| document.get(name).and_then(Value::as_f64)).collect()
    }

    /// The documents that carry metric `name`.
    pub fn with(&self, name: &str) -> Vec<Value> {
        self.documents().into_iter().filter(|document| document.get(name).is_some()).collect()
    }
}

#[cfg(any(test, feature = "testkit"))]
impl Drop for CapturedMetrics {
    fn drop(&mut self) {
        sink::CAPTURED.with(|captured| *captured.borrow_mut() = None);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_document_is_embedded_metric_format() {
        let document = Document {
            dimension_sets: &[&["Route"], &[]],
            values: &[("Route", "POST /conference/wait")],
            metrics: &[("WebhookLatency", Unit::Milliseconds, 12.5)],
        };
        assert_eq!(
            serde_json::from_str::<Value>(&document.to_line("Warmline/prod", 1_700_000_000_123)).unwrap(),
            json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_123_i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "Warmline/prod",
                        "Dimensions": [["Route"], []],
                        "Metrics": [{"Name": "WebhookLatency", "Unit": "Milliseconds"}],
                    }],
                },
                "Route": "POST /conference/wait",
                "WebhookLatency": 12.5,
            })
        );
    }

    /// The specification's rules: every dimension key and every metric is a member of the root
    /// with a value of the right type, and a document has at most 100 metrics and 30 keys a set.
    fn assert_valid_emf(document: &Value) {
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        assert!(document["_aws"]["Timestamp"].as_i64().is_some_and(|t| t > 1_600_000_000_000), "{document}");
        assert!(directive["Namespace"].as_str().is_some_and(|n| !n.is_empty()));
        for set in directive["Dimensions"].as_array().unwrap() {
            let keys = set.as_array().unwrap();
            assert!(keys.len() <= 30);
            for key in keys {
                assert!(document[key.as_str().unwrap()].is_string(), "dimension {key} in {document}");
            }
        }
        let metrics = directive["Metrics"].as_array().unwrap();
        assert!(!metrics.is_empty() && metrics.len() <= 100);
        for metric in metrics {
            let name = metric["Name"].as_str().unwrap();
            assert!(["Count", "Seconds", "Milliseconds"].contains(&metric["Unit"].as_str().unwrap()));
            assert!(document[name].is_number(), "{name} in {document}");
        }
    }

    #[test]
    fn every_event_writes_a_valid_document_with_its_call() {
        let captured = CapturedMetrics::start();
        let minute = 60_000;
        for event in [
            CallEvent::Offered,
            CallEvent::Answered { waited_ms: minute },
            CallEvent::Abandoned { waited_ms: minute },
            CallEvent::Voicemail,
            CallEvent::Transfer,
            CallEvent::Talked { talked_ms: minute },
        ] {
            call(event, "CA0123");
        }
        error("Store");
        let documents = captured.documents();
        assert_eq!(documents.len(), 7);
        documents.iter().for_each(assert_valid_emf);
        assert!(documents[..6].iter().all(|d| d["CallSid"] == "CA0123"));
        assert_eq!(documents[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"], DEFAULT_NAMESPACE);
        assert_eq!(captured.values("QueueWait"), [60.0]);
        assert_eq!(captured.values("AbandonedWait"), [60.0]);
        assert_eq!(captured.values("TalkTime"), [60.0]);
        assert_eq!(documents[6]["Kind"], "Store");
        assert_eq!(documents[6]["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Kind"]]));
    }

    #[test]
    fn nothing_is_kept_without_a_capture() {
        call(CallEvent::Offered, "CA1");
        let captured = CapturedMetrics::start();
        assert_eq!(captured.documents(), Vec::<Value>::new());
        drop(captured);
        call(CallEvent::Offered, "CA2");
        assert_eq!(CapturedMetrics::start().documents(), Vec::<Value>::new());
    }

    /// Lines written by a subscriber, for comparing two.
    #[derive(Clone, Default)]
    struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> subscriber::fmt::MakeWriter<'a> for Lines {
        type Writer = Lines;

        fn make_writer(&'a self) -> Lines {
            self.clone()
        }
    }

    /// Events in spans as a function logs them: the runtime's span, a webhook's inside it, fields
    /// of every kind, text that needs escaping.
    fn log_a_request() {
        use lambda_http::tracing::{error, info, info_span, warn};
        info!("before any span");
        let runtime = info_span!(
            "Lambda runtime invoke",
            requestId = "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
            xrayTraceId = "Root=1-5759e988"
        );
        let _runtime = runtime.enter();
        let webhook = info_span!("webhook", call_sid = "CA0123456789abcdef0123456789abcdef");
        let _webhook = webhook.enter();
        info!("a caller arrived and waits in line");
        let err = std::io::Error::other("table \"calls\" is <gone>\n");
        error!(error = %err, customer = "CA01", attempt = 2_u64, late = true, ratio = 0.5, delta = -3_i64, "could not \"put\" them in line");
        warn!(details = ?("tuple", 1), "odd");
        let empty = info_span!("empty");
        let _empty = empty.enter();
        info!(quoted = "caf\u{e9} \u{1} \\", "in an empty span");
        drop(_empty);
        let recorded = info_span!("recorded", first = 1_u64, later = lambda_http::tracing::field::Empty);
        recorded.record("later", "set afterwards");
        info!(parent: &recorded, "with an explicit parent");
        let unordered = info_span!("unordered", zeta = 1_u64, alpha = "first by name");
        info!(parent: &unordered, "in a span whose fields are not declared in name order");
        let raw = info_span!("raw", r#loop = "as a string", r#type = ?"debugged");
        info!(parent: &raw, "in a span with raw identifiers for field names");
    }

    #[test]
    fn json_lines_are_the_ones_tracing_subscriber_writes() {
        let theirs = Lines::default();
        let ours = Lines::default();
        let with_target_and_time_off = || subscriber::fmt().with_target(false).without_time();
        let reference = with_target_and_time_off().json().with_writer(theirs.clone()).finish();
        lambda_http::tracing::dispatcher::with_default(&lambda_http::tracing::Dispatch::new(reference), log_a_request);
        let lean = with_target_and_time_off()
            .fmt_fields(LambdaJsonFields)
            .event_format(LambdaJson)
            .with_writer(ours.clone())
            .finish();
        lambda_http::tracing::dispatcher::with_default(&lambda_http::tracing::Dispatch::new(lean), log_a_request);
        let (theirs, ours) = (theirs.0.lock().unwrap().clone(), ours.0.lock().unwrap().clone());
        let (theirs, ours) = (String::from_utf8(theirs).unwrap(), String::from_utf8(ours).unwrap());
        assert_eq!(ours.lines().count(), 8, "{ours}");
        for (ours, theirs) in ours.lines().zip(theirs.lines()) {
            assert_eq!(ours, theirs);
        }
        assert_eq!(ours, theirs);
    }

    #[test]
    fn kinds_are_variant_names() {
        assert_eq!(variant_name("Store(Unavailable(..))"), "Store");
        assert_eq!(variant_name("BadRequest { message: \"x\" }"), "BadRequest");
        assert_eq!(variant_name("Deadline"), "Deadline");
    }
}
