//! Protection status of one managed computer, decided from its KSC host attributes against
//! thresholds per level (warning, critical). Pure: the caller passes the time.
//!
//! Mangrove decides the status itself instead of trusting `KLHST_WKS_STATUS_ID`, so the
//! province's thresholds (which its security level sets) apply whatever KSC's own host-status
//! policy says. The reasons follow KSC's extended status bits (protocol notes §6.2).

use serde::{Deserialize, Serialize};

use super::Host;

/// OK, warning or critical, ordered by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warning,
    Critical,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Ok, Level::Warning, Level::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

/// Why a computer is not OK (KSC extended-status bit in brackets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Anti-virus bases older than the level allows [bit 7].
    AvBasesTooOld,
    /// Real-time protection not running [bits 1, 2].
    RtpOff,
    /// Network Agent has not connected for longer than the level allows [bit 8].
    AgentInactive,
    /// More viruses detected than the level allows [bit 3].
    TooManyViruses,
    /// Last full scan older than the level allows [bit 6].
    FullScanTooOld,
    /// No anti-virus product installed [bit 5].
    AvNotInstalled,
}

impl Reason {
    pub const ALL: [Reason; 6] = [
        Reason::AvBasesTooOld,
        Reason::RtpOff,
        Reason::AgentInactive,
        Reason::TooManyViruses,
        Reason::FullScanTooOld,
        Reason::AvNotInstalled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::AvBasesTooOld => "av_bases_too_old",
            Reason::RtpOff => "rtp_off",
            Reason::AgentInactive => "agent_inactive",
            Reason::TooManyViruses => "too_many_viruses",
            Reason::FullScanTooOld => "full_scan_too_old",
            Reason::AvNotInstalled => "av_not_installed",
        }
    }

    /// What the console would say, for human tables.
    pub fn label(self) -> &'static str {
        match self {
            Reason::AvBasesTooOld => "AV bases too old",
            Reason::RtpOff => "real-time protection off",
            Reason::AgentInactive => "agent inactive",
            Reason::TooManyViruses => "too many viruses",
            Reason::FullScanTooOld => "full scan too old",
            Reason::AvNotInstalled => "AV not installed",
        }
    }

    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// The limits of one level: a computer past any of them is at least at this level. A limit
/// left out does not apply at this level.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LevelLimits {
    /// AV bases older than this many days.
    pub av_bases_days: Option<u32>,
    /// Last full scan older than this many days (never scanned counts as past it).
    pub full_scan_days: Option<u32>,
    /// Network Agent last connected more than this many days ago.
    pub agent_inactive_days: Option<u32>,
    /// This many viruses detected, or more.
    pub viruses: Option<u64>,
    /// Real-time protection not running puts the computer at this level.
    pub rtp_off: bool,
    /// No anti-virus product installed puts the computer at this level.
    pub av_not_installed: bool,
}

/// Limits per level; a computer is at the highest level whose limits it passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    pub warning: LevelLimits,
    pub critical: LevelLimits,
}

impl Default for Thresholds {
    /// Bases 3 / 7 days, full scan 14 / 30 days, agent 7 / 14 days, viruses 20 / 100;
    /// real-time protection off and no anti-virus are critical.
    fn default() -> Self {
        Thresholds {
            warning: LevelLimits {
                av_bases_days: Some(3),
                full_scan_days: Some(14),
                agent_inactive_days: Some(7),
                viruses: Some(20),
                rtp_off: false,
                av_not_installed: false,
            },
            critical: LevelLimits {
                av_bases_days: Some(7),
                full_scan_days: Some(30),
                agent_inactive_days: Some(14),
                viruses: Some(100),
                rtp_off: true,
                av_not_installed: true,
            },
        }
    }
}

/// Host-state bit: real-time protection product installed (`CS_PRODUCTINSTALLED`).
pub const CS_PRODUCTINSTALLED: i64 = 0x010;

const DAY: i64 = 86_400;

/// A computer's status and each reason with the level it reached.
pub fn classify(h: &Host, t: &Thresholds, now: i64) -> (Level, Vec<(Reason, Level)>) {
    let mut reasons: Vec<(Reason, Level)> = Vec::new();
    let mut check = |reason: Reason, past: &dyn Fn(&LevelLimits) -> bool| {
        let level = if past(&t.critical) {
            Level::Critical
        } else if past(&t.warning) {
            Level::Warning
        } else {
            return;
        };
        reasons.push((reason, level));
    };
    let older = |at: Option<i64>, days: Option<u32>| match days {
        Some(d) => at.is_none_or(|at| now - at > i64::from(d) * DAY),
        None => false,
    };
    let installed = h.status.is_none_or(|s| s & CS_PRODUCTINSTALLED != 0);
    if installed {
        if h.rtp_state.is_some_and(|s| !(4..=8).contains(&s)) {
            check(Reason::RtpOff, &|l| l.rtp_off);
        }
        if h.bases_time.is_some() {
            check(Reason::AvBasesTooOld, &|l| older(h.bases_time, l.av_bases_days));
        }
        check(Reason::FullScanTooOld, &|l| older(h.last_full_scan, l.full_scan_days));
    } else {
        check(Reason::AvNotInstalled, &|l| l.av_not_installed);
    }
    let agent = h.last_agent_connect.or(h.last_visible);
    if agent.is_some() {
        check(Reason::AgentInactive, &|l| older(agent, l.agent_inactive_days));
    }
    if let Some(n) = h.virus_count {
        check(Reason::TooManyViruses, &|l| l.viruses.is_some_and(|v| n >= 0 && n as u64 >= v));
    }
    let level = reasons.iter().map(|(_, l)| *l).max().unwrap_or(Level::Ok);
    (level, reasons)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    /// Name, edit of a healthy host, expected level and reasons.
    type Case = (&'static str, Box<dyn Fn(&mut Host)>, Level, Vec<Reason>);

    fn healthy() -> Host {
        Host {
            id: "h".into(),
            name: "PC-1".into(),
            status: Some(0x1F),
            rtp_state: Some(4),
            bases_time: Some(NOW - 3600),
            last_full_scan: Some(NOW - 2 * DAY),
            last_agent_connect: Some(NOW - 600),
            virus_count: Some(0),
            ..Host::default()
        }
    }

    #[test]
    fn levels_follow_the_thresholds_table() {
        let t = Thresholds::default();
        let cases: Vec<Case> = vec![
            ("healthy", Box::new(|_| {}), Level::Ok, vec![]),
            (
                "bases 4 days",
                Box::new(|h| h.bases_time = Some(NOW - 4 * DAY)),
                Level::Warning,
                vec![Reason::AvBasesTooOld],
            ),
            (
                "bases 8 days",
                Box::new(|h| h.bases_time = Some(NOW - 8 * DAY)),
                Level::Critical,
                vec![Reason::AvBasesTooOld],
            ),
            ("rtp stopped", Box::new(|h| h.rtp_state = Some(1)), Level::Critical, vec![Reason::RtpOff]),
            ("rtp running custom", Box::new(|h| h.rtp_state = Some(8)), Level::Ok, vec![]),
            ("no product", Box::new(|h| h.status = Some(0x0F)), Level::Critical, vec![Reason::AvNotInstalled]),
            ("never scanned", Box::new(|h| h.last_full_scan = None), Level::Critical, vec![Reason::FullScanTooOld]),
            (
                "scan 20 days",
                Box::new(|h| h.last_full_scan = Some(NOW - 20 * DAY)),
                Level::Warning,
                vec![Reason::FullScanTooOld],
            ),
            (
                "agent 10 days",
                Box::new(|h| h.last_agent_connect = Some(NOW - 10 * DAY)),
                Level::Warning,
                vec![Reason::AgentInactive],
            ),
            ("viruses 20", Box::new(|h| h.virus_count = Some(20)), Level::Warning, vec![Reason::TooManyViruses]),
            ("viruses 100", Box::new(|h| h.virus_count = Some(100)), Level::Critical, vec![Reason::TooManyViruses]),
            (
                "two reasons, worst wins",
                Box::new(|h| {
                    h.virus_count = Some(30);
                    h.rtp_state = Some(9);
                }),
                Level::Critical,
                vec![Reason::RtpOff, Reason::TooManyViruses],
            ),
        ];
        for (name, edit, want, reasons) in cases {
            let mut h = healthy();
            edit(&mut h);
            let (level, got) = classify(&h, &t, NOW);
            assert_eq!(level, want, "{name}");
            assert_eq!(got.iter().map(|(r, _)| *r).collect::<Vec<_>>(), reasons, "{name}");
        }
    }

    #[test]
    fn thresholds_parse_from_toml_with_defaults_for_what_is_left_out() {
        let t: Thresholds = toml::from_str("[warning]\nav_bases_days = 1\n").expect("parse");
        assert_eq!(t.warning.av_bases_days, Some(1));
        assert_eq!(t.warning.full_scan_days, None);
        assert_eq!(t.critical, Thresholds::default().critical);
        assert!(toml::from_str::<Thresholds>("[warning]\nbases = 1\n").is_err());
    }
}
