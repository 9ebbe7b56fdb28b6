//! The console's pages as pure functions of what they show: no store, no request. HTML is
//! built with `maud`, which escapes every value it inserts; no page carries a script or an
//! inline style (the Content-Security-Policy forbids both).

use maud::{DOCTYPE, Markup, html};

use super::format;
use super::i18n::{Lang, tr, tr_args};

/// Every message key the pages use, checked against the catalogues by a unit test.
pub const KEYS: &[&str] = &[
    "app-name",
    "lang-switch",
    "login-title",
    "login-user",
    "login-password",
    "login-submit",
    "login-failed",
    "login-locked",
    "csrf-refused",
    "signed-in-as",
    "sign-out",
    "nav-overview",
    "overview-title",
    "overview-generated",
    "overview-no-inventory",
    "sites-heading",
    "col-site",
    "col-platform",
    "col-storage",
    "hosts-heading",
    "col-total",
    "state-connected",
    "state-degraded",
    "state-down",
    "state-never-enrolled",
    "systems-heading",
    "col-system",
    "col-owner",
    "col-level",
    "col-rpo",
    "col-rto",
    "drill-heading",
    "drill-none",
    "col-plan",
    "col-mode",
    "col-result",
    "col-finished",
    "not-found",
];

/// Who is signed in, as the page header shows them, and the form token their POSTs carry.
pub struct Viewer<'a> {
    pub user: &'a str,
    pub role: &'a str,
    pub csrf: &'a str,
}

fn page(lang: Lang, title: &str, path: &str, viewer: Option<&Viewer<'_>>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — " (tr(lang, "app-name")) }
                link rel="stylesheet" href="/static/console.css";
            }
            body {
                header {
                    strong { (tr(lang, "app-name")) }
                    @if let Some(v) = viewer {
                        nav { a href="/" { (tr(lang, "nav-overview")) } }
                        span.who { (tr_args(lang, "signed-in-as", &[("user", v.user), ("role", v.role)])) }
                        form method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(v.csrf);
                            button type="submit" { (tr(lang, "sign-out")) }
                        }
                    }
                    a.lang href={ (path) "?lang=" (lang.other().code()) } hreflang=(lang.other().code()) {
                        (tr(lang, "lang-switch"))
                    }
                }
                main { (body) }
            }
        }
    }
}

/// What the sign-in page says above its form.
pub enum LoginNotice {
    None,
    Failed,
    Locked { minutes: i64 },
    Csrf,
}

pub fn login(lang: Lang, csrf: &str, user: &str, notice: &LoginNotice) -> String {
    let message = match notice {
        LoginNotice::None => None,
        LoginNotice::Failed => Some(tr(lang, "login-failed")),
        LoginNotice::Locked { minutes } => Some(tr_args(lang, "login-locked", &[("minutes", &minutes.to_string())])),
        LoginNotice::Csrf => Some(tr(lang, "csrf-refused")),
    };
    let body = html! {
        h1 { (tr(lang, "login-title")) }
        @if let Some(m) = message { p.error role="alert" { (m) } }
        form method="post" action="/login" {
            input type="hidden" name="csrf" value=(csrf);
            label { (tr(lang, "login-user")) input name="user" value=(user) autocomplete="username" required; }
            label { (tr(lang, "login-password")) input type="password" name="password" autocomplete="current-password" required; }
            button type="submit" { (tr(lang, "login-submit")) }
        }
    };
    page(lang, &tr(lang, "login-title"), "/login", None, body).into_string()
}

pub fn refused(lang: Lang, viewer: Option<&Viewer<'_>>, key: &str) -> String {
    let body = html! { p.error role="alert" { (tr(lang, key)) } };
    page(lang, &tr(lang, key), "/", viewer, body).into_string()
}

/// A site as the overview lists it.
pub struct SiteRow {
    pub name: String,
    pub title: Option<String>,
    pub platform: String,
    pub storage_tb: f64,
}

/// A site's hosts counted by state, in [`crate::hosts::HostState::ALL`]'s order.
pub struct HostCounts {
    pub site: String,
    pub counts: [i64; 4],
}

pub struct SystemRow {
    pub name: String,
    pub title_vi: String,
    pub title_en: Option<String>,
    pub owner: String,
    pub level: u8,
    pub rpo: String,
    pub rto: String,
}

pub struct DrillRow {
    pub plan: String,
    pub mode: String,
    pub state: String,
    pub finished_at: Option<i64>,
}

/// What the overview shows.
pub struct Overview {
    pub has_inventory: bool,
    pub sites: Vec<SiteRow>,
    pub hosts: Vec<HostCounts>,
    pub systems: Vec<SystemRow>,
    pub last_drill: Option<DrillRow>,
    pub now: i64,
}

const STATE_KEYS: [&str; 4] = ["state-connected", "state-degraded", "state-down", "state-never-enrolled"];

pub fn overview(lang: Lang, viewer: &Viewer<'_>, o: &Overview) -> String {
    let body = html! {
        h1 { (tr(lang, "overview-title")) }
        p.muted { (tr_args(lang, "overview-generated", &[("time", &format::date_time(lang, o.now))])) }
        @if !o.has_inventory { p { (tr(lang, "overview-no-inventory")) } }
        @if !o.sites.is_empty() {
            section {
                h2 { (tr(lang, "sites-heading")) }
                table {
                    thead { tr { th { (tr(lang, "col-site")) } th { (tr(lang, "col-platform")) } th.num { (tr(lang, "col-storage")) } } }
                    tbody {
                        @for s in &o.sites {
                            tr {
                                td { (s.name) @if let Some(t) = &s.title { " — " (t) } }
                                td { (s.platform) }
                                td.num { (format::number(lang, s.storage_tb, 1)) }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { (tr(lang, "hosts-heading")) }
            table {
                thead {
                    tr {
                        th { (tr(lang, "col-site")) }
                        @for k in STATE_KEYS { th.num { (tr(lang, k)) } }
                        th.num { (tr(lang, "col-total")) }
                    }
                }
                tbody {
                    @for h in &o.hosts {
                        tr {
                            td { (h.site) }
                            @for n in h.counts { td.num { (format::count(lang, n)) } }
                            td.num { (format::count(lang, h.counts.iter().sum())) }
                        }
                    }
                }
            }
        }
        @if !o.systems.is_empty() {
            section {
                h2 { (tr(lang, "systems-heading")) }
                table {
                    thead {
                        tr {
                            th { (tr(lang, "col-system")) } th { (tr(lang, "col-owner")) } th.num { (tr(lang, "col-level")) }
                            th { (tr(lang, "col-rpo")) } th { (tr(lang, "col-rto")) }
                        }
                    }
                    tbody {
                        @for s in &o.systems {
                            tr {
                                td {
                                    @match (lang, &s.title_en) {
                                        (Lang::En, Some(t)) => (t),
                                        _ => (s.title_vi),
                                    }
                                    " (" code { (s.name) } ")"
                                }
                                td { (s.owner) }
                                td.num { (s.level) }
                                td { (s.rpo) }
                                td { (s.rto) }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { (tr(lang, "drill-heading")) }
            @match &o.last_drill {
                None => p { (tr(lang, "drill-none")) },
                Some(d) => table {
                    thead { tr { th { (tr(lang, "col-plan")) } th { (tr(lang, "col-mode")) } th { (tr(lang, "col-result")) } th { (tr(lang, "col-finished")) } } }
                    tbody {
                        tr {
                            td { (d.plan) }
                            td { (d.mode) }
                            td { (d.state) }
                            td { @if let Some(t) = d.finished_at { (format::date_time(lang, t)) } @else { "-" } }
                        }
                    }
                },
            }
        }
    };
    page(lang, &tr(lang, "overview-title"), "/", Some(viewer), body).into_string()
}

/// The console's one stylesheet (served from `/static/console.css`; inline styles are
/// forbidden by the Content-Security-Policy).
pub const CSS: &str = "\
body{font-family:system-ui,sans-serif;margin:0;color:#1a1a1a}\
header{display:flex;gap:1rem;align-items:center;padding:.5rem 1rem;background:#0b4f3c;color:#fff}\
header a,header button{color:#fff}header form{margin:0}header .lang{margin-left:auto}\
main{padding:1rem;max-width:70rem}table{border-collapse:collapse;margin:.5rem 0}\
th,td{border-bottom:1px solid #ccc;padding:.25rem .6rem;text-align:left}.num{text-align:right}\
.error{color:#a00;font-weight:bold}.muted{color:#555}label{display:block;margin:.5rem 0}\
label input{display:block}@media print{header{display:none}}";

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Overview {
        Overview {
            has_inventory: true,
            sites: vec![SiteRow {
                name: "dc".into(),
                title: Some("Trung tâm dữ liệu".into()),
                platform: "vsphere".into(),
                storage_tb: 1234.5,
            }],
            hosts: vec![HostCounts { site: "dc".into(), counts: [1000, 2, 3, 4] }],
            systems: vec![SystemRow {
                name: "dvc-portal".into(),
                title_vi: "Cổng <Dịch vụ công>".into(),
                title_en: None,
                owner: "VP UBND".into(),
                level: 3,
                rpo: "4h".into(),
                rto: "8h".into(),
            }],
            last_drill: None,
            now: 1_795_687_200_000,
        }
    }

    #[test]
    fn the_overview_speaks_each_language_with_its_numbers_and_escapes_values() {
        let v = Viewer { user: "op", role: "operator", csrf: "tok\"en" };
        let vi = overview(Lang::Vi, &v, &sample());
        assert!(vi.contains("<html lang=\"vi\">"), "{vi}");
        assert!(vi.contains("Máy chủ theo trạng thái") && vi.contains("1.234,5") && vi.contains("1.009"), "{vi}");
        assert!(vi.contains("26/11/2026 17:00") && vi.contains("Chưa có lần diễn tập nào."), "{vi}");
        assert!(vi.contains("href=\"/?lang=en\""), "{vi}");
        let en = overview(Lang::En, &v, &sample());
        assert!(en.contains("Hosts by state") && en.contains("1,234.5") && en.contains("1,009"), "{en}");
        // Values are escaped: markup in a title or a token stays text.
        assert!(vi.contains("Cổng &lt;Dịch vụ công&gt;") && vi.contains("value=\"tok&quot;en\""), "{vi}");
        assert!(!vi.contains("<script") && !vi.contains("style="), "{vi}");
    }
}
