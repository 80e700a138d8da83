//! How a function meets Lambda: the API Gateway HTTP API event (payload format 2.0) in, the
//! `lambda_http::Request` every handler takes, the response document out, on `lambda_runtime`.
//!
//! It stands in for `lambda_http::run` because of what that adapter costs a warm request: it
//! reads every event as an untagged enum of all the event kinds it knows (serde buffers the whole
//! event and tries each in turn), keeps every field of the v2 event, re-parses the URL it builds,
//! and converts the body through boxed futures. Here the event is read straight into the fields
//! Warmline reads, and the request and the response document come out as `lambda_http` makes
//! them for a v2 event (`lambda_http` is the oracle in the tests below), except:
//! - no `pathParameters`, `queryStringParameters` or `stageVariables` extensions: `routes`
//!   captures path parameters from the template API Gateway matched, and `http` parses the raw
//!   query string;
//! - no `lambda_runtime::Context` extension (nothing reads it; the request id reaches the logs
//!   through the runtime's span);
//! - a body that says it is base64 but is not fails the invocation, where `lambda_http` panics
//!   (which aborts the instance in a release build);
//! - a text response is UTF-8 whatever charset it names (every Warmline response is UTF-8).
//!
//! `cargo lambda watch` (`make dev`, the e2e and browser tests) sends payload 2.0 events too, form
//! bodies base64-encoded as API Gateway sends them.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayV2httpRequestContext, ApiGatewayV2httpRequestContextHttpDescription,
};
use lambda_http::http::header::{CONTENT_ENCODING, CONTENT_TYPE, COOKIE, HOST, SET_COOKIE};
use lambda_http::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Context, Error, LambdaEvent, Request, RequestExt, Response};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::json;

/// Serves `handler` to Lambda until the instance is shut down.
pub async fn run<F, Fut>(handler: F) -> Result<(), Error>
where
    F: Fn(Request) -> Fut,
    Fut: Future<Output = Result<Response<Body>, Error>>,
{
    let handler = &handler;
    lambda_http::lambda_runtime::run(lambda_http::service_fn(move |event: LambdaEvent<Payload>| serve(handler, event)))
        .await
}

/// The event as `lambda_runtime` hands it over: its JSON text, read as an [`Event`] by [`serve`].
/// The runtime reads every payload through `serde_path_to_error`, which copies each key it passes
/// to name the place of an error; to it a raw value is a single key, and `serve`'s own read skips
/// that bookkeeping (about 8 k instructions a request, `make bench`).
pub type Payload = Box<RawValue>;

/// One invocation: the event as the request, the handler's response as the document Lambda
/// returns to API Gateway.
pub async fn serve<F, Fut>(handler: F, event: LambdaEvent<Payload>) -> Result<Document, Error>
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Result<Response<Body>, Error>>,
{
    let payload: Event = serde_json::from_str(event.payload.get())?;
    let request = payload.into_request(&event.context)?;
    Ok(Document::from(handler(request).await?))
}

/// What Warmline reads of an API Gateway HTTP API event; the rest of it is skipped unread.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    #[serde(default, alias = "path")]
    raw_path: Option<String>,
    #[serde(default)]
    raw_query_string: Option<String>,
    #[serde(default)]
    cookies: Option<Vec<String>>,
    #[serde(default, deserialize_with = "headers")]
    headers: HeaderMap,
    request_context: EventContext,
    #[serde(default)]
    body: Option<String>,
    #[serde(default, deserialize_with = "nullish_bool")]
    is_base64_encoded: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventContext {
    #[serde(default)]
    domain_name: Option<String>,
    #[serde(default)]
    stage: Option<String>,
    http: EventHttp,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventHttp {
    #[serde(default = "get", deserialize_with = "method")]
    method: Method,
    #[serde(default)]
    source_ip: Option<String>,
}

fn get() -> Method {
    Method::GET
}

impl Event {
    /// The request as `lambda_http` builds it from a v2 event (its `into_api_gateway_v2_request`).
    pub fn into_request(self, context: &Context) -> Result<Request, Error> {
        let raw_path = self.raw_path.unwrap_or_default();
        let mut headers = self.headers;
        let host =
            headers.get(HOST).and_then(|host| host.to_str().ok()).or(self.request_context.domain_name.as_deref());
        let path = with_stage(self.request_context.stage.as_deref(), &raw_path);
        let uri = request_uri(&headers, host, &path, self.raw_query_string.as_deref().unwrap_or_default())?;
        if let Some(cookies) = self.cookies
            && let Ok(cookie) = HeaderValue::from_str(&cookies.join("; "))
        {
            headers.insert(COOKIE, cookie);
        }
        if let Some(trace_id) = context.xray_trace_id.as_deref()
            && let Ok(trace_id) = HeaderValue::from_str(trace_id)
        {
            headers.insert(HeaderName::from_static("x-amzn-trace-id"), trace_id);
        }
        let body = match self.body {
            None => Body::Empty,
            Some(body) if self.is_base64_encoded => {
                Body::Binary(STANDARD.decode(body).map_err(|_| "isBase64Encoded, but the body is not base64")?)
            }
            Some(body) => Body::Text(body),
        };
        let mut request = Request::new(body);
        *request.method_mut() = self.request_context.http.method;
        *request.headers_mut() = headers;
        // `routes::raw_path` falls back to the URI's path, which is the raw path unless a stage
        // was put before it or the path had to be escaped.
        if uri.path() != raw_path {
            request = request.with_raw_http_path(raw_path);
        }
        *request.uri_mut() = uri;
        let mut http = ApiGatewayV2httpRequestContextHttpDescription::default();
        http.method = request.method().clone();
        http.source_ip = self.request_context.http.source_ip;
        let mut request_context = ApiGatewayV2httpRequestContext::default();
        request_context.domain_name = self.request_context.domain_name;
        request_context.stage = self.request_context.stage;
        request_context.http = http;
        request.extensions_mut().insert(RequestContext::ApiGatewayV2(request_context));
        Ok(request)
    }
}

/// The stage in front of the path unless it is `$default` (ours: template.yaml) or
/// `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH` is set, as `lambda_http` does.
fn with_stage<'a>(stage: Option<&str>, raw_path: &'a str) -> Cow<'a, str> {
    match stage {
        None | Some("$default") => Cow::Borrowed(raw_path),
        Some(_) if std::env::var_os("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH").is_some() => Cow::Borrowed(raw_path),
        Some(stage) if raw_path.starts_with(&format!("/{stage}/")) => Cow::Borrowed(raw_path),
        Some(stage) => Cow::Owned(format!("/{stage}{raw_path}")),
    }
}

/// `https://<host><path>?<query>` (the scheme from `X-Forwarded-Proto` when given), or the path
/// alone with no host. A path that is not a valid URI path as it came is percent-encoded first,
/// as the URL parser `lambda_http` uses does.
fn request_uri(headers: &HeaderMap, host: Option<&str>, path: &str, query: &str) -> Result<Uri, Error> {
    let mut uri = String::with_capacity(16 + host.map_or(0, str::len) + path.len() + query.len());
    if let Some(host) = host {
        let scheme = headers.get("x-forwarded-proto").and_then(|s| s.to_str().ok()).unwrap_or("https");
        uri.push_str(scheme);
        uri.push_str("://");
        uri.push_str(host);
    }
    let path_at = uri.len();
    uri.push_str(path);
    if !query.is_empty() {
        uri.push('?');
        uri.push_str(query);
    }
    match Uri::try_from(uri.as_str()) {
        Ok(parsed) => Ok(parsed),
        Err(_) => {
            uri.truncate(path_at);
            escape_path(&mut uri, path);
            if !query.is_empty() {
                uri.push('?');
                escape_path(&mut uri, query);
            }
            Ok(Uri::try_from(uri)?)
        }
    }
}

fn escape_path(into: &mut String, path: &str) {
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%?".contains(&byte) {
            into.push(char::from(byte));
        } else {
            into.push_str(&format!("%{byte:02X}"));
        }
    }
}

/// The response document of payload format 2.0, as `lambda_http` writes it: each header's first
/// value (Set-Cookie's all go in `cookies`), the body as text or base64 by its content type.
/// It is written out here, in one buffer of the right size; serde_json escaping a TwiML body
/// (a quote in every attribute) cost a webhook more than a tenth of its instructions.
#[derive(Debug)]
pub struct Document {
    json: Vec<u8>,
}

impl From<Response<Body>> for Document {
    fn from(response: Response<Body>) -> Self {
        let (parts, body) = response.into_parts();
        let headers = parts.headers;
        let body = if is_text(&headers) { text(body) } else { binary(body) };
        let headers_len: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 8).sum();
        let mut json = Vec::with_capacity(128 + headers_len + body.len() + body.len() / 3);
        json.extend_from_slice(br#"{"statusCode":"#);
        json.extend_from_slice(parts.status.as_str().as_bytes());
        json.extend_from_slice(br#","headers":{"#);
        let mut first = true;
        for name in headers.keys().filter(|name| *name != SET_COOKIE) {
            let value = headers.get(name).map(HeaderValue::as_bytes).unwrap_or_default();
            if !std::mem::take(&mut first) {
                json.push(b',');
            }
            json::string(&mut json, name.as_str());
            json.push(b':');
            json::string(&mut json, &String::from_utf8_lossy(value));
        }
        json.extend_from_slice(br#"},"multiValueHeaders":{},"body":"#);
        match &body {
            Body::Binary(bytes) => {
                json.push(b'"');
                json.extend_from_slice(STANDARD.encode(bytes).as_bytes());
                json.extend_from_slice(br#"","isBase64Encoded":true"#);
            }
            Body::Text(text) => {
                json::string(&mut json, text);
                json.extend_from_slice(br#","isBase64Encoded":false"#);
            }
            // `text` and `binary` leave no other kind.
            _ => json.extend_from_slice(br#""","isBase64Encoded":false"#),
        }
        json.extend_from_slice(br#","cookies":["#);
        for (at, cookie) in headers.get_all(SET_COOKIE).iter().enumerate() {
            if at > 0 {
                json.push(b',');
            }
            json::string(&mut json, cookie.to_str().unwrap_or_default());
        }
        json.extend_from_slice(b"]}");
        Self { json }
    }
}

/// The name under which serde_json's serializer takes a struct's one field as JSON text to copy
/// as it is (how `RawValue` serializes itself). A `RawValue` made from the document would scan it
/// once more to check it, and the escaped quotes of a TwiML body made that scan 5 k instructions
/// a webhook (`make bench`). The document is JSON by construction; were serde_json to rename the
/// token, the oracle tests against `lambda_http` would fail (the field would appear by name).
const RAW_VALUE: &str = "$serde_json::private::RawValue";

impl Serialize for Document {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let json = std::str::from_utf8(&self.json).map_err(serde::ser::Error::custom)?;
        let mut raw = serializer.serialize_struct(RAW_VALUE, 1)?;
        raw.serialize_field(RAW_VALUE, json)?;
        raw.end()
    }
}

const TEXT_PREFIXES: [&str; 5] =
    ["text", "application/json", "application/javascript", "application/xml", "application/yaml"];
const TEXT_SUFFIXES: [&str; 3] = ["+xml", "+yaml", "+json"];

/// Whether `lambda_http` sends a body with these headers as text (else base64).
fn is_text(headers: &HeaderMap) -> bool {
    if headers.contains_key(CONTENT_ENCODING) {
        return false;
    }
    let Some(content_type) = headers.get(CONTENT_TYPE) else { return true };
    let content_type = content_type.to_str().unwrap_or_default();
    let mime = content_type.trim().split(';').next().unwrap_or_default();
    TEXT_PREFIXES.iter().any(|prefix| content_type.starts_with(prefix))
        || TEXT_SUFFIXES.iter().any(|suffix| mime.ends_with(suffix))
        || headers.get("x-lambda-http-content-encoding").is_some_and(|value| value == "text")
}

/// As decoding the bytes as UTF-8 does: invalid sequences replaced, a byte order mark dropped.
fn text(body: Body) -> Body {
    let text = match body {
        Body::Text(text) => text,
        Body::Binary(bytes) => match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
        },
        other => String::from_utf8_lossy(other.as_ref()).into_owned(),
    };
    match text.strip_prefix('\u{feff}') {
        Some(rest) => Body::Text(rest.to_owned()),
        None => Body::Text(text),
    }
}

fn binary(body: Body) -> Body {
    match body {
        Body::Text(text) => Body::Binary(text.into_bytes()),
        binary @ Body::Binary(_) => binary,
        other => Body::Binary(other.as_ref().to_vec()),
    }
}

/// Headers as API Gateway sends them, a string per name (an array also taken), read without
/// an owned copy of each name and value on the way.
fn headers<'de, D: Deserializer<'de>>(deserializer: D) -> Result<HeaderMap, D::Error> {
    deserializer.deserialize_option(HeadersVisitor)
}

struct HeadersVisitor;

impl<'de> Visitor<'de> for HeadersVisitor {
    type Value = HeaderMap;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of header names and values")
    }

    fn visit_none<E: de::Error>(self) -> Result<HeaderMap, E> {
        Ok(HeaderMap::new())
    }

    fn visit_unit<E: de::Error>(self) -> Result<HeaderMap, E> {
        Ok(HeaderMap::new())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<HeaderMap, D::Error> {
        deserializer.deserialize_map(self)
    }

    fn visit_map<M: MapAccess<'de>>(self, mut access: M) -> Result<HeaderMap, M::Error> {
        let mut headers = HeaderMap::with_capacity(access.size_hint().unwrap_or(16));
        while let Some(name) = access.next_key_seed(NameSeed)? {
            access.next_value_seed(ValuesSeed { headers: &mut headers, name })?;
        }
        Ok(headers)
    }
}

struct NameSeed;

impl<'de> DeserializeSeed<'de> for NameSeed {
    type Value = HeaderName;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<HeaderName, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for NameSeed {
    type Value = HeaderName;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a header name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<HeaderName, E> {
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| E::invalid_value(de::Unexpected::Str(name), &self))
    }
}

/// One header's value, or values, added to the map: the last of a name given twice wins, as in
/// `lambda_http`.
struct ValuesSeed<'a> {
    headers: &'a mut HeaderMap,
    name: HeaderName,
}

impl<'de> DeserializeSeed<'de> for ValuesSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

fn header_value<E: de::Error>(value: &str) -> Result<HeaderValue, E> {
    HeaderValue::from_str(value).map_err(|_| E::invalid_value(de::Unexpected::Str(value), &"a header value"))
}

impl<'de> Visitor<'de> for ValuesSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a header value or an array of them")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<(), E> {
        self.headers.insert(self.name, header_value(value)?);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut values: A) -> Result<(), A::Error> {
        while let Some(value) = values.next_element::<Cow<'_, str>>()? {
            self.headers.append(&self.name, header_value(&value)?);
        }
        Ok(())
    }
}

fn method<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Method, D::Error> {
    struct MethodVisitor;
    impl Visitor<'_> for MethodVisitor {
        type Value = Method;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an HTTP method")
        }

        fn visit_str<E: de::Error>(self, method: &str) -> Result<Method, E> {
            Method::from_bytes(method.as_bytes()).map_err(|_| E::invalid_value(de::Unexpected::Str(method), &self))
        }
    }
    deserializer.deserialize_str(MethodVisitor)
}

fn nullish_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests;
