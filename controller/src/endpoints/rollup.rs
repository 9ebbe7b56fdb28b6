//! The fleet roll-up: every managed computer's status and reasons (decided by
//! [`plugins::ksc::status::classify`] against the configured thresholds), counted for the
//! whole fleet and per administration group (agency → district → commune). Pure.

use std::collections::{BTreeMap, HashMap};

use plugins::ksc::status::{Level, Reason, Thresholds, classify};
use plugins::ksc::{Fleet, Group};
use serde::{Deserialize, Serialize};

/// Group name for computers outside every administration group (the root itself, or a
/// group KSC did not list), so the groups still add up to the total.
pub const NO_GROUP: &str = "(no group)";

/// Counts by status (`ok`, `warning`, `critical`, always all three).
pub type ByStatus = BTreeMap<String, u64>;
/// Counts by reason (every known reason, zero included).
pub type ByReason = BTreeMap<String, u64>;

fn zero_status() -> ByStatus {
    Level::ALL.iter().map(|l| (l.as_str().to_string(), 0)).collect()
}

fn zero_reason() -> ByReason {
    Reason::ALL.iter().map(|r| (r.as_str().to_string(), 0)).collect()
}

/// One group's counts, with its subgroups'.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRoll {
    pub name: String,
    pub total: u64,
    pub by_status: ByStatus,
    pub by_reason: ByReason,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupRoll>,
}

/// One computer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub name: String,
    /// KSC's host id.
    pub id: String,
    /// Its top-level administration group (the agency).
    pub agency: String,
    /// Its own group.
    pub group: String,
    /// Every group from the agency down, joined with ` / `.
    pub path: String,
    pub status: String,
    pub reasons: Vec<String>,
    pub av_version: Option<String>,
    /// RFC 3339 times; null where KSC has none.
    pub av_bases: Option<String>,
    pub last_full_scan: Option<String>,
    pub agent_last_seen: Option<String>,
    pub viruses: Option<i64>,
}

/// The whole roll-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    pub total: u64,
    pub by_status: ByStatus,
    pub by_reason: ByReason,
    /// Top-level groups (agencies); their totals add up to `total`.
    pub groups: Vec<GroupRoll>,
    pub rows: Vec<Row>,
    /// Chunk calls the read made, and the page size.
    pub chunks: usize,
    pub page_size: usize,
}

fn tree(g: &Group) -> GroupRoll {
    GroupRoll {
        name: g.name.clone(),
        total: 0,
        by_status: zero_status(),
        by_reason: zero_reason(),
        groups: g.groups.iter().map(tree).collect(),
    }
}

/// Index paths from the top of `roots` to each group id.
fn index(groups: &[Group], prefix: &[usize], out: &mut HashMap<i64, Vec<usize>>) {
    for (i, g) in groups.iter().enumerate() {
        let mut p = prefix.to_vec();
        p.push(i);
        index(&g.groups, &p, out);
        out.insert(g.id, p);
    }
}

fn rfc3339(unix: Option<i64>) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(unix?).ok()?;
    t.format(&time::format_description::well_known::Rfc3339).ok()
}

fn count(g: &mut GroupRoll, level: Level, reasons: &[(Reason, Level)]) {
    g.total += 1;
    *g.by_status.entry(level.as_str().to_string()).or_default() += 1;
    for (r, _) in reasons {
        *g.by_reason.entry(r.as_str().to_string()).or_default() += 1;
    }
}

/// Rolls `fleet` up at `now` (Unix seconds).
pub fn rollup(fleet: &Fleet, t: &Thresholds, now: i64, page_size: usize) -> Rollup {
    let mut groups: Vec<GroupRoll> = fleet.root.groups.iter().map(tree).collect();
    let mut paths = HashMap::new();
    index(&fleet.root.groups, &[], &mut paths);
    let mut all = GroupRoll {
        name: String::new(),
        total: 0,
        by_status: zero_status(),
        by_reason: zero_reason(),
        groups: Vec::new(),
    };
    let mut rows = Vec::with_capacity(fleet.hosts.len());
    for h in &fleet.hosts {
        let (level, reasons) = classify(h, t, now);
        count(&mut all, level, &reasons);
        let path = h.group_id.and_then(|g| paths.get(&g)).cloned();
        let mut names = Vec::new();
        match path {
            Some(p) => {
                let mut level_groups = &mut groups;
                for i in p {
                    let g = &mut level_groups[i];
                    count(g, level, &reasons);
                    names.push(g.name.clone());
                    level_groups = &mut g.groups;
                }
            }
            None => {
                if !groups.iter().any(|g| g.name == NO_GROUP) {
                    groups.push(GroupRoll {
                        name: NO_GROUP.into(),
                        total: 0,
                        by_status: zero_status(),
                        by_reason: zero_reason(),
                        groups: Vec::new(),
                    });
                }
                if let Some(g) = groups.iter_mut().find(|g| g.name == NO_GROUP) {
                    count(g, level, &reasons);
                }
                names.push(NO_GROUP.to_string());
            }
        }
        rows.push(Row {
            name: h.name.clone(),
            id: h.id.clone(),
            agency: names.first().cloned().unwrap_or_default(),
            group: names.last().cloned().unwrap_or_default(),
            path: names.join(" / "),
            status: level.as_str().to_string(),
            reasons: reasons.iter().map(|(r, _)| r.as_str().to_string()).collect(),
            av_version: h.av_version.clone(),
            av_bases: rfc3339(h.bases_time),
            last_full_scan: rfc3339(h.last_full_scan),
            agent_last_seen: rfc3339(h.last_agent_connect.or(h.last_visible)),
            viruses: h.virus_count,
        });
    }
    Rollup {
        total: all.total,
        by_status: all.by_status,
        by_reason: all.by_reason,
        groups,
        rows,
        chunks: fleet.chunks,
        page_size,
    }
}

#[cfg(test)]
mod tests {
    use plugins::ksc::Host;

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn host(id: &str, group: Option<i64>, rtp: i64, viruses: i64) -> Host {
        Host {
            id: id.into(),
            name: format!("PC-{id}"),
            group_id: group,
            status: Some(0x1F),
            rtp_state: Some(rtp),
            bases_time: Some(NOW - 3600),
            last_full_scan: Some(NOW - 86_400),
            last_agent_connect: Some(NOW - 60),
            virus_count: Some(viruses),
            ..Host::default()
        }
    }

    #[test]
    fn groups_add_up_to_the_total_at_every_level_and_ungrouped_computers_are_counted() {
        let g = |id, name: &str, groups| Group { id, name: name.into(), groups };
        let fleet = Fleet {
            root: g(
                0,
                "Managed devices",
                vec![
                    g(10, "UBND 8 huyện", vec![g(11, "Huyện U Minh", vec![g(12, "Xã Khánh An", vec![])])]),
                    g(20, "Sở Y tế", vec![]),
                ],
            ),
            hosts: vec![
                host("a", Some(12), 7, 0),
                host("b", Some(11), 1, 0),
                host("c", Some(20), 7, 25),
                host("d", Some(20), 7, 0),
                host("e", Some(0), 7, 0),
            ],
            found: 5,
            chunks: 1,
        };
        let r = rollup(&fleet, &Thresholds::default(), NOW, 100);
        assert_eq!(r.total, 5);
        assert_eq!((r.by_status["ok"], r.by_status["warning"], r.by_status["critical"]), (3, 1, 1));
        assert_eq!(
            (r.by_reason["rtp_off"], r.by_reason["too_many_viruses"], r.by_reason["av_bases_too_old"]),
            (1, 1, 0)
        );
        let names: Vec<_> = r.groups.iter().map(|g| (g.name.as_str(), g.total)).collect();
        assert_eq!(names, vec![("UBND 8 huyện", 2), ("Sở Y tế", 2), (NO_GROUP, 1)]);
        assert_eq!(r.groups.iter().map(|g| g.total).sum::<u64>(), r.total);
        let district = &r.groups[0].groups[0];
        assert_eq!((district.total, district.groups[0].total), (2, 1));
        let a = r.rows.iter().find(|x| x.id == "a").expect("row a");
        assert_eq!(a.path, "UBND 8 huyện / Huyện U Minh / Xã Khánh An");
        assert_eq!((a.agency.as_str(), a.group.as_str(), a.status.as_str()), ("UBND 8 huyện", "Xã Khánh An", "ok"));
        let b = r.rows.iter().find(|x| x.id == "b").expect("row b");
        assert_eq!((b.status.as_str(), b.reasons.clone()), ("critical", vec!["rtp_off".to_string()]));
    }
}
