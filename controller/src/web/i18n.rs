//! The console's words in Vietnamese (first) and English: Project Fluent catalogues in
//! `controller/i18n/{vi,en}/console.ftl`, compiled into the binary. A key missing in either
//! language fails the unit test below, not a page in front of a user.

use std::sync::LazyLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};

/// A language the console speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Vi,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Vi, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }

    /// `vi` or `en`; anything else is None (the caller falls back to Vietnamese).
    pub fn parse(s: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.code() == s)
    }

    pub fn other(self) -> Lang {
        match self {
            Lang::Vi => Lang::En,
            Lang::En => Lang::Vi,
        }
    }

    fn source(self) -> &'static str {
        match self {
            Lang::Vi => include_str!("../../i18n/vi/console.ftl"),
            Lang::En => include_str!("../../i18n/en/console.ftl"),
        }
    }
}

fn bundle(lang: Lang) -> FluentBundle<FluentResource> {
    let id = lang.code().parse().unwrap_or_default();
    let mut b = FluentBundle::new_concurrent(vec![id]);
    // Isolation marks (U+2068/U+2069) around arguments are for mixed-direction text; in
    // Vietnamese and English HTML they would only be invisible noise.
    b.set_use_isolating(false);
    match FluentResource::try_new(lang.source().to_string()) {
        Ok(res) => {
            if let Err(errs) = b.add_resource(res) {
                tracing::error!(lang = lang.code(), ?errs, "duplicate keys in the console catalogue");
            }
        }
        Err((res, errs)) => {
            tracing::error!(lang = lang.code(), ?errs, "syntax errors in the console catalogue");
            let _ = b.add_resource(res);
        }
    }
    b
}

static VI: LazyLock<FluentBundle<FluentResource>> = LazyLock::new(|| bundle(Lang::Vi));
static EN: LazyLock<FluentBundle<FluentResource>> = LazyLock::new(|| bundle(Lang::En));

fn bundle_of(lang: Lang) -> &'static FluentBundle<FluentResource> {
    match lang {
        Lang::Vi => &VI,
        Lang::En => &EN,
    }
}

/// The message `key` in `lang` with `args`; the key itself when it is missing (never empty,
/// never a panic — the test below keeps that from happening).
pub fn tr_args(lang: Lang, key: &str, args: &[(&str, &str)]) -> String {
    let b = bundle_of(lang);
    let Some(pattern) = b.get_message(key).and_then(|m| m.value()) else {
        tracing::warn!(lang = lang.code(), key, "missing console message");
        return key.to_string();
    };
    let mut fa = FluentArgs::new();
    for (k, v) in args {
        fa.set(*k, (*v).to_string());
    }
    let mut errs = Vec::new();
    b.format_pattern(pattern, if args.is_empty() { None } else { Some(&fa) }, &mut errs).into_owned()
}

pub fn tr(lang: Lang, key: &str) -> String {
    tr_args(lang, key, &[])
}

/// The message keys a catalogue defines.
#[cfg(test)]
fn keys(source: &str) -> std::collections::BTreeSet<String> {
    let res = FluentResource::try_new(source.to_string()).expect("catalogue parses");
    res.entries()
        .filter_map(|e| match e {
            fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_string()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_key_is_in_both_languages() {
        let vi = keys(Lang::Vi.source());
        let en = keys(Lang::En.source());
        let only_vi: Vec<_> = vi.difference(&en).collect();
        let only_en: Vec<_> = en.difference(&vi).collect();
        assert!(only_vi.is_empty() && only_en.is_empty(), "missing in en: {only_vi:?}; missing in vi: {only_en:?}");
        // And every key the pages use exists (a typo in the code would otherwise show a key).
        for k in super::super::pages::KEYS {
            assert!(vi.contains(*k), "key {k} used by the pages is not in the catalogues");
        }
    }

    #[test]
    fn messages_format_with_arguments_in_each_language() {
        assert_eq!(tr(Lang::Vi, "login-title"), "Đăng nhập");
        assert_eq!(tr(Lang::En, "login-title"), "Sign in");
        assert_eq!(
            tr_args(Lang::En, "signed-in-as", &[("user", "op"), ("role", "operator")]),
            "Signed in as op (role operator)"
        );
        assert_eq!(tr(Lang::En, "no-such-key"), "no-such-key");
        assert_eq!(Lang::parse("en"), Some(Lang::En));
        assert_eq!(Lang::parse("fr"), None);
    }
}
