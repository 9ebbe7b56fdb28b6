//! A small XML reader for vim25 SOAP answers: quick-xml's namespace-aware pull parser builds a
//! tree of [`Node`]s that the driver then walks by local name.
//!
//! vim25 answers are namespaced (`urn:vim25` default namespace, SOAP envelope prefix) and
//! polymorphic values carry `xsi:type` under whatever prefix the server chose (vcsim writes
//! `XMLSchema-instance:type`), so the type attribute is resolved by namespace URI, never by
//! prefix. Element names are kept as local names: the driver never needs to tell two
//! namespaces' elements of the same name apart inside a SOAP body.
//!
//! The reader never panics on what a server sends: bad syntax, mismatched or missing end
//! tags, undefined entities, and nesting deeper than [`MAX_DEPTH`] are errors with a
//! description.

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::reader::NsReader;

const XSI_NS: &[u8] = b"http://www.w3.org/2001/XMLSchema-instance";

/// Deeper nesting than any vim25 answer has; the limit keeps the recursive walkers that
/// flatten trees (snapshot trees) far from the stack's end.
pub const MAX_DEPTH: usize = 200;

/// One element: its local name, the two attributes vim25 gives meaning to, its text and its
/// children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    /// `xsi:type` without its prefix (`string` for `xsd:string`, `VirtualDisk`).
    pub xsi_type: Option<String>,
    /// The plain `type` attribute: a managed object reference's type (`HostSystem`).
    pub mo_type: Option<String>,
    /// The element's own text, entities resolved, untrimmed.
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    /// The first child called `name`.
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child called `name`, in document order.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The descendant reached by following child names, e.g. `["summary", "capacity"]`.
    pub fn path(&self, names: &[&str]) -> Option<&Node> {
        names.iter().try_fold(self, |node, name| node.child(name))
    }

    /// Trimmed text of the descendant at `names`, when present and not empty.
    pub fn text_at(&self, names: &[&str]) -> Option<&str> {
        self.path(names).map(|n| n.text.trim()).filter(|t| !t.is_empty())
    }

    /// The descendant at `names` parsed as a number, when present and valid.
    pub fn num_at<T: std::str::FromStr>(&self, names: &[&str]) -> Option<T> {
        self.text_at(names).and_then(|t| t.parse().ok())
    }

    /// Trimmed own text.
    pub fn value(&self) -> &str {
        self.text.trim()
    }
}

/// Parses a whole document and returns its root element.
pub fn parse(doc: &str) -> Result<Node, String> {
    let mut reader = NsReader::from_str(doc);
    // Mismatched end tags are an error, not silently accepted.
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    loop {
        let event = match reader.read_resolved_event() {
            Ok((_, event)) => event,
            Err(e) => return Err(format!("{e} (near byte {})", reader.buffer_position())),
        };
        match event {
            Event::Start(start) => {
                if root.is_some() {
                    return Err(format!("a second root element at byte {}", reader.buffer_position()));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(format!("elements nested deeper than {MAX_DEPTH}"));
                }
                stack.push(element(&reader, &start)?);
            }
            Event::Empty(start) => {
                if root.is_some() {
                    return Err(format!("a second root element at byte {}", reader.buffer_position()));
                }
                let node = element(&reader, &start)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::End(_) => {
                let node = stack.pop().ok_or_else(|| "an end tag with no start tag".to_string())?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::Text(text) => {
                let s = text.xml_content().map_err(|e| format!("bad text encoding: {e}"))?;
                push_text(&mut stack, &s)?;
            }
            Event::CData(data) => {
                let s = data.decode().map_err(|e| format!("bad CDATA encoding: {e}"))?;
                push_text(&mut stack, &s)?;
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|e| format!("bad character reference: {e}"))? {
                    Some(ch) => ch.to_string(),
                    None => {
                        let name = r.decode().map_err(|e| format!("bad entity encoding: {e}"))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| format!("undefined entity &{name};"))?
                            .to_string()
                    }
                };
                push_text(&mut stack, &resolved)?;
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!("the document ends inside <{}> (truncated?)", open.name));
    }
    root.ok_or_else(|| "the document is empty".to_string())
}

fn push_text(stack: &mut [Node], text: &str) -> Result<(), String> {
    match stack.last_mut() {
        Some(node) => {
            node.text.push_str(text);
            Ok(())
        }
        // Whitespace between the declaration and the root is fine; anything else is not XML.
        None if text.trim().is_empty() => Ok(()),
        None => Err("text outside the root element".to_string()),
    }
}

fn element(reader: &NsReader<&[u8]>, start: &BytesStart<'_>) -> Result<Node, String> {
    let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
    let mut node = Node { name, ..Node::default() };
    for attr in start.attributes() {
        let attr = attr.map_err(|e| format!("bad attribute in <{}>: {e}", node.name))?;
        let (ns, local) = reader.resolve_attribute(attr.key);
        if local.as_ref() != b"type" {
            continue;
        }
        let value = attr.unescape_value().map_err(|e| format!("bad attribute value in <{}>: {e}", node.name))?;
        match ns {
            ResolveResult::Bound(Namespace(uri)) if uri == XSI_NS => {
                // The value is a QName too; the driver only needs its local part.
                let local = value.rsplit(':').next().unwrap_or_default();
                node.xsi_type = Some(local.to_string());
            }
            ResolveResult::Unbound => node.mo_type = Some(value.into_owned()),
            _ => {}
        }
    }
    Ok(node)
}

/// Escapes text for an element body or a double-quoted attribute.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xsi_type_is_resolved_by_namespace_uri_not_prefix() {
        let doc = r#"<r xmlns="urn:vim25"><val xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="ManagedObjectReference" type="HostSystem">host-21</val>
            <other xmlns:xsi="urn:not-xsi" xsi:type="Fake">x</other></r>"#;
        let root = parse(doc).expect("valid document");
        let val = root.child("val").expect("val");
        assert_eq!(val.xsi_type.as_deref(), Some("ManagedObjectReference"));
        assert_eq!(val.mo_type.as_deref(), Some("HostSystem"));
        assert_eq!(val.value(), "host-21");
        assert_eq!(root.child("other").and_then(|o| o.xsi_type.clone()), None);
    }

    #[test]
    fn entities_and_char_refs_are_resolved() {
        let root = parse("<a>x &amp; y &lt;z&gt; &#233;&#x41;<![CDATA[<raw>]]></a>").expect("valid");
        assert_eq!(root.text, "x & y <z> éA<raw>");
    }

    #[test]
    fn malformed_and_truncated_documents_are_errors_not_panics() {
        let cases = [
            "",
            "   ",
            "<a>",
            "<a><b></a>",
            "<a></b>",
            "</a>",
            "<a>&bogus;</a>",
            "<a>&#0;</a>",
            "<a x=\"1></a>",
            "<a/><b/>",
            "text only",
            "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body><Re",
            "<a><!-- unterminated",
            "<a>\u{0}</a><",
        ];
        for case in cases {
            assert!(parse(case).is_err(), "accepted {case:?}");
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let doc = format!("{}{}", "<a>".repeat(MAX_DEPTH + 1), "</a>".repeat(MAX_DEPTH + 1));
        let err = parse(&doc).expect_err("too deep");
        assert!(err.contains("deeper"), "{err}");
    }

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(escape(r#"a<b>&"c"'"#), "a&lt;b&gt;&amp;&quot;c&quot;&apos;");
    }
}
