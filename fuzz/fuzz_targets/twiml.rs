//! The TwiML builder, whatever the text: the document is well-formed XML 1.0, holds exactly the
//! elements and attributes that were asked for, in order, and every text and attribute value
//! reads back as given, less the characters XML cannot hold.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use shared::twiml::{Conference, Dial, DialNoun, Method, Verb, VoiceResponse};

// Mirrors of the builder's types: `shared` does not depend on `arbitrary`, and should not for this.
#[derive(Debug, Arbitrary)]
enum FuzzVerb {
    Say(String),
    Play { url: String, loop_count: Option<u32> },
    Pause { length_seconds: Option<u32> },
    Dial { caller_id: Option<String>, timeout_seconds: Option<u32>, noun: FuzzNoun },
    Redirect { url: String, method: Option<bool> },
    Hangup,
}

#[derive(Debug, Arbitrary)]
enum FuzzNoun {
    Number(String),
    Client(String),
    Conference {
        name: String,
        start_conference_on_enter: Option<bool>,
        end_conference_on_exit: Option<bool>,
        wait_url: Option<String>,
        wait_method: Option<bool>,
        status_callback: Option<String>,
        status_callback_event: Option<String>,
        status_callback_method: Option<bool>,
    },
}

/// What the parsed document must hold for one element.
struct Expected {
    tag: &'static str,
    attributes: Vec<(&'static str, String)>,
    text: Option<String>,
    child: Option<Box<Expected>>,
}

fn method(get: bool) -> Method {
    if get { Method::Get } else { Method::Post }
}

fn method_name(get: bool) -> String {
    (if get { "GET" } else { "POST" }).to_owned()
}

/// XML 1.0's `Char` production: what may appear in a document at all, escaped or not.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

fn legal(text: &str) -> String {
    text.chars().filter(|&c| is_xml_char(c)).collect()
}

fn attributes(pairs: Vec<(&'static str, Option<String>)>) -> Vec<(&'static str, String)> {
    pairs.into_iter().filter_map(|(name, value)| value.map(|v| (name, legal(&v)))).collect()
}

fn leaf(tag: &'static str, attrs: Vec<(&'static str, Option<String>)>, text: Option<&str>) -> Expected {
    Expected { tag, attributes: attributes(attrs), text: text.map(legal), child: None }
}

fn build(verb: FuzzVerb) -> (Verb, Expected) {
    match verb {
        FuzzVerb::Say(text) => {
            let expected = leaf("Say", vec![], Some(&text));
            (Verb::Say(text), expected)
        }
        FuzzVerb::Play { url, loop_count } => {
            let expected = leaf("Play", vec![("loop", loop_count.map(|n| n.to_string()))], Some(&url));
            (Verb::Play { url, loop_count }, expected)
        }
        FuzzVerb::Pause { length_seconds } => {
            let expected = leaf("Pause", vec![("length", length_seconds.map(|n| n.to_string()))], None);
            (Verb::Pause { length_seconds }, expected)
        }
        FuzzVerb::Redirect { url, method: get } => {
            let expected = leaf("Redirect", vec![("method", get.map(method_name))], Some(&url));
            (Verb::Redirect { url, method: get.map(method) }, expected)
        }
        FuzzVerb::Hangup => (Verb::Hangup, leaf("Hangup", vec![], None)),
        FuzzVerb::Dial { caller_id, timeout_seconds, noun } => {
            let (noun, child) = match noun {
                FuzzNoun::Number(number) => {
                    let child = leaf("Number", vec![], Some(&number));
                    (DialNoun::Number(number), child)
                }
                FuzzNoun::Client(identity) => {
                    let child = leaf("Client", vec![], Some(&identity));
                    (DialNoun::Client(identity), child)
                }
                FuzzNoun::Conference {
                    name,
                    start_conference_on_enter,
                    end_conference_on_exit,
                    wait_url,
                    wait_method,
                    status_callback,
                    status_callback_event,
                    status_callback_method,
                } => {
                    let child = leaf(
                        "Conference",
                        vec![
                            ("startConferenceOnEnter", start_conference_on_enter.map(|b| b.to_string())),
                            ("endConferenceOnExit", end_conference_on_exit.map(|b| b.to_string())),
                            ("waitUrl", wait_url.clone()),
                            ("waitMethod", wait_method.map(method_name)),
                            ("statusCallback", status_callback.clone()),
                            ("statusCallbackEvent", status_callback_event.clone()),
                            ("statusCallbackMethod", status_callback_method.map(method_name)),
                        ],
                        Some(&name),
                    );
                    let conference = Conference {
                        name,
                        start_conference_on_enter,
                        end_conference_on_exit,
                        wait_url,
                        wait_method: wait_method.map(method),
                        status_callback,
                        status_callback_event,
                        status_callback_method: status_callback_method.map(method),
                    };
                    (DialNoun::Conference(conference), child)
                }
            };
            let mut expected = leaf(
                "Dial",
                vec![("callerId", caller_id.clone()), ("timeout", timeout_seconds.map(|n| n.to_string()))],
                None,
            );
            expected.child = Some(Box::new(child));
            (Verb::Dial(Dial { action: None, caller_id, timeout_seconds, noun }), expected)
        }
    }
}

fn element_children<'a, 'input>(node: roxmltree::Node<'a, 'input>) -> Vec<roxmltree::Node<'a, 'input>> {
    node.children().filter(roxmltree::Node::is_element).collect()
}

/// Compares one element with what was asked for; returns how many elements it and its
/// descendants hold.
fn check(node: roxmltree::Node, expected: &Expected, xml: &str) -> usize {
    assert_eq!(node.tag_name().name(), expected.tag, "{xml:?}");
    assert_eq!(node.tag_name().namespace(), None, "{xml:?}");
    let found: Vec<(&str, &str)> = node.attributes().map(|a| (a.name(), a.value())).collect();
    let wanted: Vec<(&str, &str)> = expected.attributes.iter().map(|(n, v)| (*n, v.as_str())).collect();
    assert_eq!(found, wanted, "attributes of <{}> in {xml:?}", expected.tag);

    let children = element_children(node);
    match &expected.child {
        None => {
            assert!(children.is_empty(), "<{}> has children in {xml:?}", expected.tag);
            // Text nodes only: no comment, processing instruction or CDATA section got through.
            assert!(node.children().all(|c| c.is_text()), "<{}> in {xml:?}", expected.tag);
            let text: String = node.children().filter_map(|c| c.text()).collect();
            assert_eq!(text, expected.text.clone().unwrap_or_default(), "text of <{}> in {xml:?}", expected.tag);
            1
        }
        Some(child) => {
            assert_eq!(children.len(), 1, "children of <{}> in {xml:?}", expected.tag);
            assert_eq!(node.children().count(), 1, "<{}> holds text in {xml:?}", expected.tag);
            1 + check(children[0], child, xml)
        }
    }
}

fuzz_target!(|verbs: Vec<FuzzVerb>| {
    let (verbs, expected): (Vec<Verb>, Vec<Expected>) = verbs.into_iter().map(build).unzip();
    let document = verbs.into_iter().fold(VoiceResponse::new(), VoiceResponse::verb);
    let xml = document.to_xml();

    assert!(xml.chars().all(is_xml_char), "a character XML 1.0 forbids in {xml:?}");
    let parsed = roxmltree::Document::parse(&xml).unwrap_or_else(|err| panic!("not well-formed ({err}): {xml:?}"));
    let root = parsed.root_element();
    assert_eq!(root.tag_name().name(), "Response", "{xml:?}");
    assert_eq!(root.attributes().len(), 0, "{xml:?}");
    assert!(root.children().all(|c| c.is_element()), "text between verbs in {xml:?}");
    assert_eq!(parsed.root().children().count(), 1, "something besides <Response> in {xml:?}");

    let children = element_children(root);
    assert_eq!(children.len(), expected.len(), "verbs in {xml:?}");
    let elements: usize = children.iter().zip(&expected).map(|(node, wanted)| check(*node, wanted, &xml)).sum();
    assert_eq!(parsed.descendants().filter(roxmltree::Node::is_element).count(), 1 + elements, "{xml:?}");
});
