//! `limit`/`marker` pagination shared by every list: the page, and the query of the next page
//! when more items remain (Nova/Cinder/Neutron put it in `*_links`, Glance in `next`).

use serde_json::{Value, json};

use super::Service;
use super::http::ApiError;

/// A request's query, in order, repeated keys kept.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query(pub Vec<(String, String)>);

impl Query {
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The query for the page after `marker`: the same filters, same limit, new marker.
    pub(crate) fn with_marker(&self, marker: &str) -> String {
        let mut out: Vec<String> =
            self.0.iter().filter(|(k, _)| k != "marker").map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect();
        out.push(format!("marker={}", enc(marker)));
        out.join("&")
    }
}

/// Percent-encodes a query component (unreserved characters pass).
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Why a page cannot be cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PageError {
    BadLimit(String),
    MarkerNotFound(String),
}

impl PageError {
    pub(crate) fn message(&self) -> String {
        match self {
            PageError::BadLimit(v) => format!("Invalid input for query parameters limit. Value: {v}."),
            PageError::MarkerNotFound(m) => format!("marker [{m}] not found"),
        }
    }
}

/// Cuts the page of `items` after `marker` (an id) of at most `limit` (or `default_limit`)
/// items; returns the page and the id to use as the next marker when more remain.
pub(crate) fn page<T>(
    items: Vec<T>,
    id: impl Fn(&T) -> &str,
    q: &Query,
    default_limit: usize,
) -> Result<(Vec<T>, Option<String>), PageError> {
    let limit = match q.get("limit") {
        None => default_limit,
        Some(v) => v.parse::<usize>().map_err(|_| PageError::BadLimit(v.to_owned()))?,
    };
    let start = match q.get("marker") {
        None => 0,
        Some(m) => items.iter().position(|t| id(t) == m).map(|i| i + 1).ok_or(PageError::MarkerNotFound(m.into()))?,
    };
    let rest = items.len().saturating_sub(start);
    let take = rest.min(limit);
    let page: Vec<T> = items.into_iter().skip(start).take(take).collect();
    let next = if rest > take { page.last().map(|t| id(t).to_owned()) } else { None };
    Ok((page, next))
}

/// One API collection's list response: `{ key: [...] }` plus `{key}_links` with the next page's
/// URL when more remain (the Nova, Cinder and Neutron shape).
pub(crate) struct Collection<'a> {
    /// The body key, e.g. `volumes`.
    pub(crate) key: &'a str,
    /// The list's URL without query, for the `next` link.
    pub(crate) href: String,
    pub(crate) service: Service,
    /// Page size when the query names no `limit`.
    pub(crate) default_limit: usize,
}

impl Collection<'_> {
    /// Cuts the page of `items` that `q` asks for and shows each with `view`.
    pub(crate) fn body<T>(
        &self,
        q: &Query,
        items: Vec<T>,
        id: impl Fn(&T) -> &str,
        view: impl FnMut(T) -> Value,
    ) -> Result<Value, ApiError> {
        let (items, next) = page(items, id, q, self.default_limit).map_err(|e| ApiError::page(self.service, &e))?;
        let list: Vec<Value> = items.into_iter().map(view).collect();
        let mut body = json!({ self.key: list });
        if let Some(m) = next {
            body[format!("{}_links", self.key)] =
                json!([{ "rel": "next", "href": format!("{}?{}", self.href, q.with_marker(&m)) }]);
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Query {
        Query(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    #[test]
    fn pages_follow_the_marker_and_stop_when_nothing_remains() {
        let items = vec!["a", "b", "c"];
        let (p, next) = page(items.clone(), |s| s, &q(&[("limit", "2")]), 1000).expect("page");
        assert_eq!((p, next.as_deref()), (vec!["a", "b"], Some("b")));
        let (p, next) = page(items.clone(), |s| s, &q(&[("limit", "2"), ("marker", "b")]), 1000).expect("page");
        assert_eq!((p, next), (vec!["c"], None));
        let (p, next) = page(items.clone(), |s| s, &q(&[("limit", "3")]), 1000).expect("page");
        assert_eq!((p.len(), next), (3, None));
        assert_eq!(page(items, |s| s, &q(&[("marker", "zz")]), 1000), Err(PageError::MarkerNotFound("zz".into())));
    }

    #[test]
    fn next_query_keeps_filters_and_replaces_the_marker() {
        let query = q(&[("deleted", "False"), ("marker", "x"), ("name", "a b")]);
        assert_eq!(query.with_marker("y"), "deleted=False&name=a%20b&marker=y");
    }
}
