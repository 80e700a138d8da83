//! The pages' HTML templates and assets (`web/`), embedded in the binary (a Lambda package is
//! only `bootstrap`), and the one renderer that fills them.
//!
//! Assets are served under content-hashed names (`styles.<hash>.css`, see `shared/build.rs`)
//! that the HTML refers to, so they can be cached for a year while a deploy still reaches every
//! browser at once: the HTML itself is `no-cache`.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};

use crate::response;
use crate::routes::Route;

/// An embedded file: the name the templates use, the content-hashed name it is served under.
#[derive(Debug)]
pub struct Asset {
    pub name: &'static str,
    pub versioned: &'static str,
    pub body: &'static [u8],
}

mod embedded {
    use super::Asset;
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

pub use embedded::ASSETS;

pub const INDEX_HTML: &str = include_str!("../../web/index.html");
pub const DASHBOARD_HTML: &str = include_str!("../../web/dashboard.html");
pub const LOGIN_HTML: &str = include_str!("../../web/login.html");

/// Only the current content-hashed names exist: anything else, including `..` or an encoded
/// slash, is simply not in the table.
pub fn find_versioned(file: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.versioned == file)
}

/// An asset, cached for a year under its content-hashed name.
pub fn asset(asset: &'static Asset) -> Response<Body> {
    response::immutable(content_type_of(asset.name), asset.body)
}

fn content_type_of(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, extension)| extension) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("html") => response::HTML_CONTENT_TYPE,
        _ => "application/octet-stream",
    }
}

/// `template` rendered with `values` (see `render`), as an uncached HTML page.
pub fn page(status: StatusCode, template: &str, values: &[(&str, &str)]) -> Response<Body> {
    response::html(status, render(template, values))
}

/// Fills `{{static:NAME}}` with the asset's versioned URL and `{{key}}` with the HTML-escaped
/// value of `key` in `values`. An unknown placeholder is left as it is (a test checks none
/// remain).
fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut html = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        html.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            rest = &rest[start..];
            break;
        };
        let key = &after[..end];
        if let Some((_, value)) = values.iter().find(|(name, _)| *name == key) {
            html.push_str(&escape_html(value));
        } else if let Some(asset) = key.strip_prefix("static:").and_then(|name| ASSETS.iter().find(|a| a.name == name))
        {
            html.push_str(&Route::Asset { file: asset.versioned.to_owned() }.path());
        } else {
            html.push_str(&rest[start..start + 2 + end + 2]);
        }
        rest = &after[end + 2..];
    }
    html.push_str(rest);
    html
}

/// Values are agents' names and ids, and a path from the query string: text, never markup.
fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text_for_html() {
        assert_eq!(escape_html(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert_eq!(escape_html("agent_1"), "agent_1");
    }

    #[test]
    fn leaves_unknown_placeholders_and_keeps_the_rest() {
        assert_eq!(
            render("x {{nope}} {{name}} {{static:missing.js}} {{", &[("name", "<a1>")]),
            "x {{nope}} &lt;a1&gt; {{static:missing.js}} {{"
        );
    }
}
