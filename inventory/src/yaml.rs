//! From YAML text to the model, keeping every node's position.
//!
//! The text is read once by saphyr into a tree of [`MarkedYaml`] nodes, each with its span.
//! A small serde [`Deserializer`] walks that tree, so the model's derived `Deserialize` impls
//! (the same ones that read the controller's JSON) do the typing, and every error they raise
//! is pinned to the node being read and to its path (`hosts[3].cpus`). The same tree yields
//! an index from paths to positions for the semantic checks in `validate`.
//!
//! Guarantees: no panic on any input; recursion depth is bounded before saphyr sees the text
//! (see [`prescan`]) and the whole read runs on a thread with a large stack (see `lib.rs`),
//! because saphyr builds, clones and drops its tree recursively.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use serde::Deserialize;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess, VariantAccess, Visitor,
};

use crate::error::Diagnostic;
use crate::model::{BackupRepository, EndpointGroup, Host, Inventory, Site, System, VideoEndpoint, Workload};

/// Largest inventory text accepted, in bytes. A province's inventory is a few hundred KiB.
pub(crate) const MAX_INPUT_BYTES: usize = 8 << 20;

/// Largest column at which a block collection may start (see [`prescan`]).
pub(crate) const MAX_BLOCK_COLUMN: usize = 120;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub const START: Pos = Pos { line: 1, column: 1 };

    fn of(node: &MarkedYaml<'_>) -> Pos {
        Pos::from_marker(node.span.start)
    }

    fn from_marker(m: saphyr::Marker) -> Pos {
        Pos { line: m.line().max(1), column: m.col().saturating_add(1) }
    }

    pub fn diag(self, path: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic { line: self.line, column: self.column, path: path.into(), message: message.into() }
    }
}

/// Bounds the nesting depth of block collections before the YAML parser runs.
///
/// A block collection starts either at a line's indentation or right after the indicators
/// `- `, `? `, `: ` (and node properties `&anchor`, `!tag`) that open a line. Along a chain
/// of nested block collections the start column never decreases and stays equal for at most
/// two steps (a mapping whose value is an unindented list), so the block depth is at most
/// `2 × (largest such column + 1)`. Flow collections are bounded by saphyr itself (255).
///
/// # Errors
/// A diagnostic at the first line whose structure starts beyond [`MAX_BLOCK_COLUMN`].
pub(crate) fn prescan(text: &str) -> Result<(), Diagnostic> {
    for (i, line) in text.split(['\n', '\r']).enumerate() {
        let mut col = 0usize;
        let mut rest = line;
        loop {
            let blanks = rest.len() - rest.trim_start_matches([' ', '\t']).len();
            col += rest[..blanks].chars().count();
            rest = &rest[blanks..];
            let mut chars = rest.chars();
            let Some(first) = chars.next() else { break };
            let after = chars.as_str();
            let indicator = matches!(first, '-' | '?' | ':') && (after.is_empty() || after.starts_with([' ', '\t']));
            let property = matches!(first, '&' | '!');
            if indicator {
                col += 1;
                rest = after;
            } else if property {
                let len = rest.find([' ', '\t']).unwrap_or(rest.len());
                col += rest[..len].chars().count();
                rest = &rest[len..];
            } else {
                break;
            }
        }
        if col > MAX_BLOCK_COLUMN {
            return Err(Pos { line: i.saturating_add(1), column: col.saturating_add(1) }.diag(
                "",
                format!(
                    "nesting too deep: structure starts at column {}, the limit is {}",
                    col + 1,
                    MAX_BLOCK_COLUMN + 1
                ),
            ));
        }
    }
    Ok(())
}

/// Parses the text into its single YAML document.
///
/// # Errors
/// A diagnostic for a YAML syntax error (including duplicate mapping keys), for an empty
/// text, and for a second document.
pub(crate) fn load(text: &str) -> Result<MarkedYaml<'_>, Diagnostic> {
    let docs = MarkedYaml::load_from_str(text)
        .map_err(|e| Pos::from_marker(*e.marker()).diag("", format!("invalid YAML: {}", e.info())))?;
    let mut docs = docs.into_iter();
    let Some(root) = docs.next() else {
        return Err(Pos::START.diag("", "the file is empty: expected an inventory mapping"));
    };
    if let Some(second) = docs.next() {
        return Err(Pos::of(&second).diag("", "a second YAML document: an inventory file holds exactly one"));
    }
    Ok(root)
}

/// The source text, to recover the exact spelling of plain scalars read as strings.
pub(crate) struct Source<'t> {
    text: &'t str,
    /// Byte offset of every character (saphyr's markers count characters), built on demand.
    offsets: OnceCell<Vec<usize>>,
}

impl<'t> Source<'t> {
    pub fn new(text: &'t str) -> Source<'t> {
        Source { text, offsets: OnceCell::new() }
    }

    /// The text of a single-line plain scalar as written, e.g. `7.10` rather than `7.1`.
    fn plain(&self, node: &MarkedYaml<'_>) -> Option<&'t str> {
        let offsets = self
            .offsets
            .get_or_init(|| self.text.char_indices().map(|(i, _)| i).chain(std::iter::once(self.text.len())).collect());
        let start = *offsets.get(node.span.start.index())?;
        let end = *offsets.get(node.span.end.index())?;
        let s = self.text.get(start..end)?.trim();
        let plain = !s.is_empty() && !s.contains(['\n', '\r']) && !s.starts_with(['"', '\'', '!', '&', '*', '|', '>']);
        plain.then_some(s)
    }
}

/// The text of a scalar node, as a string field would read it.
fn scalar_text<'n>(node: &'n MarkedYaml<'_>, src: &Source<'n>) -> Option<Cow<'n, str>> {
    match &node.data {
        YamlData::Value(Scalar::String(s)) => Some(Cow::Borrowed(s.as_ref())),
        YamlData::Representation(s, _, _) => Some(Cow::Borrowed(s.as_ref())),
        YamlData::Value(Scalar::Null) => None,
        YamlData::Value(v) => Some(match src.plain(node) {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(match v {
                Scalar::Boolean(b) => b.to_string(),
                Scalar::Integer(i) => i.to_string(),
                Scalar::FloatingPoint(f) => f.to_string(),
                Scalar::Null | Scalar::String(_) => String::new(),
            }),
        }),
        _ => None,
    }
}

/// How a node looks, for "expected X, found Y" messages.
fn describe(node: &MarkedYaml<'_>) -> String {
    fn short(s: &str) -> String {
        let mut out: String = s.chars().take(40).collect();
        if out.len() < s.len() {
            out.push('…');
        }
        out
    }
    match &node.data {
        YamlData::Value(Scalar::Null) => "null".to_owned(),
        YamlData::Value(Scalar::Boolean(b)) => format!("a boolean `{b}`"),
        YamlData::Value(Scalar::Integer(i)) => format!("an integer `{i}`"),
        YamlData::Value(Scalar::FloatingPoint(f)) => format!("a number `{f}`"),
        YamlData::Value(Scalar::String(s)) | YamlData::Representation(s, _, _) => {
            format!("a string `{}`", short(s))
        }
        YamlData::Sequence(_) => "a list".to_owned(),
        YamlData::Mapping(_) => "a mapping".to_owned(),
        YamlData::Tagged(tag, _) => format!("a value tagged `{tag}`"),
        YamlData::Alias(_) => "an unresolved alias".to_owned(),
        YamlData::BadValue => "a value that does not match its tag".to_owned(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// An error met while reading a node; it gets its position from the innermost node that
/// knows one.
#[derive(Debug)]
pub(crate) struct DeError {
    message: String,
    at: Option<(Pos, String)>,
    /// For a missing field, its name: the path then names the field, not its mapping.
    missing: Option<&'static str>,
}

impl DeError {
    fn new(message: String) -> DeError {
        DeError { message, at: None, missing: None }
    }

    fn locate(mut self, pos: Pos, path: &str) -> DeError {
        if self.at.is_none() {
            let path = match self.missing.take() {
                Some(field) => join(path, field),
                None => path.to_owned(),
            };
            self.at = Some((pos, path));
        }
        self
    }

    fn into_diagnostic(self) -> Diagnostic {
        let (pos, path) = self.at.unwrap_or((Pos::START, String::new()));
        pos.diag(path, self.message)
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::new(msg.to_string())
    }

    fn missing_field(field: &'static str) -> Self {
        DeError { message: format!("missing required field `{field}`"), at: None, missing: Some(field) }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DeError::new(format!("unknown field `{field}`; expected one of: {}", expected.join(", ")))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        DeError::new(format!("unknown value `{variant}`; expected one of: {}", expected.join(", ")))
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::new(format!("expected {exp}, found {unexp}"))
    }
}

/// Reads one node through serde. Errors carry no position yet; the caller that knows the
/// node (a sequence, a mapping, or [`read`]) pins them.
struct NodeDe<'a, 'i> {
    node: &'a MarkedYaml<'i>,
    path: String,
    src: &'a Source<'a>,
}

impl<'a, 'i> NodeDe<'a, 'i> {
    fn expected(&self, what: &str) -> DeError {
        DeError::new(format!("expected {what}, found {}", describe(self.node)))
    }

    fn integer(&self) -> Result<i64, DeError> {
        match &self.node.data {
            YamlData::Value(Scalar::Integer(i)) => Ok(*i),
            _ => Err(self.expected("an integer")),
        }
    }

    fn text(&self) -> Result<Cow<'a, str>, DeError> {
        scalar_text(self.node, self.src).ok_or_else(|| self.expected("a string"))
    }
}

/// Deserializes the value at `node`, pinning any error to the node (or a node inside it).
pub(crate) fn read<T: for<'de> Deserialize<'de>>(
    node: &MarkedYaml<'_>,
    path: &str,
    src: &Source<'_>,
) -> Result<T, Diagnostic> {
    T::deserialize(NodeDe { node, path: path.to_owned(), src })
        .map_err(|e| e.locate(Pos::of(node), path).into_diagnostic())
}

macro_rules! integer_methods {
    ($($method:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            visitor.visit_i64(self.integer()?)
        }
    )*};
}

impl<'de> Deserializer<'de> for NodeDe<'_, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.data {
            YamlData::Value(Scalar::Null) => visitor.visit_unit(),
            YamlData::Value(Scalar::Boolean(b)) => visitor.visit_bool(*b),
            YamlData::Value(Scalar::Integer(i)) => visitor.visit_i64(*i),
            YamlData::Value(Scalar::FloatingPoint(f)) => visitor.visit_f64(f.into_inner()),
            YamlData::Value(Scalar::String(s)) | YamlData::Representation(s, _, _) => visitor.visit_str(s),
            YamlData::Sequence(_) => self.deserialize_seq(visitor),
            YamlData::Mapping(_) => self.deserialize_map(visitor),
            YamlData::Tagged(..) | YamlData::Alias(_) | YamlData::BadValue => Err(self.expected("a plain value")),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.data {
            YamlData::Value(Scalar::Boolean(b)) => visitor.visit_bool(*b),
            _ => Err(self.expected("`true` or `false`")),
        }
    }

    integer_methods!(
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128
    );

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.data {
            YamlData::Value(Scalar::FloatingPoint(f)) => visitor.visit_f64(f.into_inner()),
            // Precision loss past 2^53 is irrelevant for the quantities in an inventory.
            #[allow(clippy::cast_precision_loss)]
            YamlData::Value(Scalar::Integer(i)) => visitor.visit_f64(*i as f64),
            _ => Err(self.expected("a number")),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let text = self.text()?;
        visitor.visit_str(&text)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, DeError> {
        Err(self.expected("bytes (not supported in inventory files)"))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.data {
            YamlData::Value(Scalar::Null) => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.data {
            YamlData::Value(Scalar::Null) => visitor.visit_unit(),
            _ => Err(self.expected("null")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.data {
            YamlData::Sequence(items) => {
                visitor.visit_seq(SeqDe { items: items.iter().enumerate(), path: &self.path, src: self.src })
            }
            // An empty key (`hosts:` with every entry commented out) reads as an empty list.
            YamlData::Value(Scalar::Null) => {
                visitor.visit_seq(SeqDe { items: [].iter().enumerate(), path: &self.path, src: self.src })
            }
            _ => Err(self.expected("a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.data {
            YamlData::Mapping(map) => visitor.visit_map(MapDe {
                entries: map.iter().collect::<Vec<_>>().into_iter(),
                value: None,
                path: &self.path,
                src: self.src,
            }),
            YamlData::Value(Scalar::Null) => visitor.visit_map(MapDe {
                entries: Vec::new().into_iter(),
                value: None,
                path: &self.path,
                src: self.src,
            }),
            _ => Err(self.expected("a mapping")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.data {
            YamlData::Mapping(_) => self.deserialize_map(visitor),
            _ => Err(self.expected(&format!("a mapping with fields {}", fields.join(", ")))),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.data {
            YamlData::Value(Scalar::Null) | YamlData::Sequence(_) | YamlData::Mapping(_) => {
                Err(self.expected(&format!("one of: {}", variants.join(", "))))
            }
            _ => {
                let name = self.text()?.into_owned();
                visitor.visit_enum(UnitVariant { name })
            }
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

struct SeqDe<'a, 'i: 'a> {
    items: std::iter::Enumerate<std::slice::Iter<'a, MarkedYaml<'i>>>,
    path: &'a str,
    src: &'a Source<'a>,
}

impl<'de> SeqAccess<'de> for SeqDe<'_, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        let Some((i, node)) = self.items.next() else {
            return Ok(None);
        };
        let path = index(self.path, i);
        seed.deserialize(NodeDe { node, path: path.clone(), src: self.src })
            .map(Some)
            .map_err(|e| e.locate(Pos::of(node), &path))
    }
}

struct MapDe<'a, 'i> {
    entries: std::vec::IntoIter<(&'a MarkedYaml<'i>, &'a MarkedYaml<'i>)>,
    value: Option<(&'a MarkedYaml<'i>, String)>,
    path: &'a str,
    src: &'a Source<'a>,
}

impl<'de> MapAccess<'de> for MapDe<'_, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let name = scalar_text(key, self.src).unwrap_or(Cow::Borrowed("?"));
        let path = join(self.path, &name);
        let k = seed
            .deserialize(NodeDe { node: key, path: path.clone(), src: self.src })
            .map_err(|e| e.locate(Pos::of(key), &path))?;
        self.value = Some((value, path));
        Ok(Some(k))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((node, path)) = self.value.take() else {
            return Err(DeError::new("a mapping value was read before its key".to_owned()));
        };
        seed.deserialize(NodeDe { node, path: path.clone(), src: self.src }).map_err(|e| e.locate(Pos::of(node), &path))
    }
}

/// A plain-value enum variant such as `hypervisor` or `native`.
struct UnitVariant {
    name: String,
}

impl<'de> EnumAccess<'de> for UnitVariant {
    type Error = DeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), DeError> {
        let de: de::value::StrDeserializer<'_, DeError> = self.name.as_str().into_deserializer();
        let v = seed.deserialize(de)?;
        Ok((v, self))
    }
}

impl UnitVariant {
    fn not_unit(&self) -> DeError {
        DeError::new(format!("`{}` takes no value here; write it as a plain word", self.name))
    }
}

impl<'de> VariantAccess<'de> for UnitVariant {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value, DeError> {
        Err(self.not_unit())
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _v: V) -> Result<V::Value, DeError> {
        Err(self.not_unit())
    }

    fn struct_variant<V: Visitor<'de>>(self, _fields: &'static [&'static str], _v: V) -> Result<V::Value, DeError> {
        Err(self.not_unit())
    }
}

/// The top-level fields of an inventory file, in the order the example writes them.
const TOP_FIELDS: &[&str] = &[
    "province",
    "sites",
    "hosts",
    "systems",
    "workloads",
    "video_endpoints",
    "endpoint_groups",
    "backup_repositories",
];

/// Reads the document into an [`Inventory`], collecting one error per broken list entry so a
/// file with several typos is reported in one pass. Returns `None` if anything failed.
pub(crate) fn decode(root: &MarkedYaml<'_>, src: &Source<'_>, diags: &mut Vec<Diagnostic>) -> Option<Inventory> {
    let YamlData::Mapping(map) = &root.data else {
        diags.push(
            Pos::of(root).diag(
                "",
                format!("expected a mapping with fields {}, found {}", TOP_FIELDS.join(", "), describe(root)),
            ),
        );
        return None;
    };
    let before = diags.len();
    let mut province: Option<String> = None;
    let mut sites: Option<Vec<Site>> = None;
    let mut hosts: Vec<Host> = Vec::new();
    let mut systems: Vec<System> = Vec::new();
    let mut workloads: Vec<Workload> = Vec::new();
    let mut video_endpoints: Vec<VideoEndpoint> = Vec::new();
    let mut endpoint_groups: Vec<EndpointGroup> = Vec::new();
    let mut backup_repositories: Vec<BackupRepository> = Vec::new();
    let mut seen_province = false;
    let mut seen_sites = false;
    for (key, value) in map.iter() {
        let Some(name) = scalar_text(key, src) else {
            diags.push(Pos::of(key).diag("", format!("expected a field name, found {}", describe(key))));
            continue;
        };
        match name.as_ref() {
            "province" => {
                seen_province = true;
                match read::<String>(value, "province", src) {
                    Ok(p) => province = Some(p),
                    Err(d) => diags.push(d),
                }
            }
            "sites" => {
                seen_sites = true;
                sites = Some(read_list(value, "sites", src, diags));
            }
            "hosts" => hosts = read_list(value, "hosts", src, diags),
            "systems" => systems = read_list(value, "systems", src, diags),
            "workloads" => workloads = read_list(value, "workloads", src, diags),
            "video_endpoints" => {
                video_endpoints = read_list(value, "video_endpoints", src, diags);
            }
            "endpoint_groups" => {
                endpoint_groups = read_list(value, "endpoint_groups", src, diags);
            }
            "backup_repositories" => {
                backup_repositories = read_list(value, "backup_repositories", src, diags);
            }
            other => diags.push(
                Pos::of(key)
                    .diag(other, format!("unknown field `{other}`; expected one of: {}", TOP_FIELDS.join(", "))),
            ),
        }
    }
    for (seen, field) in [(seen_province, "province"), (seen_sites, "sites")] {
        if !seen {
            diags.push(Pos::of(root).diag(field, format!("missing required field `{field}`")));
        }
    }
    if diags.len() > before {
        return None;
    }
    Some(Inventory {
        province: province?,
        sites: sites?,
        hosts,
        systems,
        workloads,
        video_endpoints,
        endpoint_groups,
        backup_repositories,
    })
}

/// Reads a list entry by entry; a broken entry is reported and left out.
fn read_list<T: for<'de> Deserialize<'de>>(
    node: &MarkedYaml<'_>,
    path: &str,
    src: &Source<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<T> {
    let items = match &node.data {
        YamlData::Sequence(items) => items,
        YamlData::Value(Scalar::Null) => return Vec::new(),
        _ => {
            diags.push(Pos::of(node).diag(path, format!("expected a list, found {}", describe(node))));
            return Vec::new();
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match read::<T>(item, &index(path, i), src) {
            Ok(v) => out.push(v),
            Err(d) => diags.push(d),
        }
    }
    out
}

/// Where each node of the document starts, by path (`hosts[3].name`).
pub(crate) struct PosIndex {
    positions: HashMap<String, Pos>,
}

impl PosIndex {
    /// Indexes every node of the document (without recursion: the tree may be deep).
    pub fn build(root: &MarkedYaml<'_>, src: &Source<'_>) -> PosIndex {
        let mut positions = HashMap::new();
        let mut stack: Vec<(&MarkedYaml<'_>, String)> = vec![(root, String::new())];
        while let Some((node, path)) = stack.pop() {
            match &node.data {
                YamlData::Sequence(items) => {
                    for (i, item) in items.iter().enumerate() {
                        stack.push((item, index(&path, i)));
                    }
                }
                YamlData::Mapping(map) => {
                    for (k, v) in map.iter() {
                        if let Some(name) = scalar_text(k, src) {
                            stack.push((v, join(&path, &name)));
                        }
                    }
                }
                YamlData::Tagged(_, inner) => stack.push((inner, path.clone())),
                _ => {}
            }
            positions.entry(path).or_insert_with(|| Pos::of(node));
        }
        PosIndex { positions }
    }

    /// The position of `path`, or of its nearest indexed parent (a field left out of the
    /// file is reported where its mapping starts).
    pub fn pos(&self, path: &str) -> Pos {
        let mut p = path;
        loop {
            if let Some(pos) = self.positions.get(p) {
                return *pos;
            }
            match p.rfind(['.', '[']) {
                Some(cut) => p = &p[..cut],
                None => return self.positions.get("").copied().unwrap_or(Pos::START),
            }
        }
    }

    /// The diagnostic for `path`, at its position.
    pub fn diag(&self, path: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        let path = path.into();
        self.pos(&path).diag(path, message)
    }
}
