//! The simulated fleet: an administration-group tree shaped like the province (the
//! inventory's `endpoint_groups` as top-level groups; the other provincial departments, the
//! city's wards and communes, the eight districts and their communes below them) and one
//! managed computer per counted computer, with a seeded, realistic mix of protection states.
//!
//! Each computer's status is decided here the way KSC's own host-status policy would
//! (`KLSRV_HOST_STATUS`, [`ServerPolicy`]), independently of Mangrove's client, and kept as
//! the simulator's truth ([`Truth`]). Times are kept as ages (seconds before "now") so a
//! computer's status does not drift while the simulator runs: every age is either under a
//! day or a whole number of days plus twelve hours, well away from any day threshold.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Id of the root "Managed devices" group (`HostGroup.GroupIdGroups`).
pub const ROOT_GROUP: i64 = 0;
/// Id of "Unassigned computers" (`HostGroup.GroupIdUnassigned`).
pub const UNASSIGNED_GROUP: i64 = 1;
/// Id of the "Master server" group (`HostGroup.GroupIdSuper`).
pub const SUPER_GROUP: i64 = 2;

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// An administration group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimGroup {
    pub id: i64,
    pub parent: i64,
    pub name: String,
}

/// One managed computer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimHost {
    /// `KLHST_WKS_HOSTNAME` (GUID-like).
    pub id: String,
    /// `KLHST_WKS_DN`.
    pub dn: String,
    pub group: i64,
    pub os: String,
    pub product_installed: bool,
    /// `KLHST_WKS_RTP_STATE` (0–9).
    pub rtp_state: i64,
    pub av_version: String,
    pub bases_age: i64,
    pub full_scan_age: i64,
    pub agent_age: i64,
    pub viruses: i64,
    /// Decided by [`ServerPolicy`]: 0 OK, 1 critical, 2 warning (`KLHST_WKS_STATUS_ID`).
    pub status_id: i64,
    /// Extended-status reasons (names as Mangrove's API spells them).
    pub reasons: Vec<String>,
}

impl SimHost {
    /// `KLHST_WKS_STATUS` bits: visible, in a group, agent installed, agent alive, RTP product.
    pub fn status_bits(&self) -> i64 {
        let mut s = 0x002 | 0x004;
        if self.agent_age < HOUR {
            s |= 0x001;
        }
        if self.agent_age < DAY {
            s |= 0x008;
        }
        if self.product_installed {
            s |= 0x010;
        }
        s
    }
}

/// The simulated KSC server's host-status policy (`KLSRV_HSTSTAT_WARNING` and
/// `KLSRV_HSTSTAT_CRITICAL`): day and count limits per level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyLevel {
    pub av_bases_days: i64,
    pub full_scan_days: i64,
    pub agent_inactive_days: i64,
    pub viruses: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerPolicy {
    pub warning: PolicyLevel,
    pub critical: PolicyLevel,
}

impl Default for ServerPolicy {
    /// What `mangrove testbed up` also writes as the controller's thresholds.
    fn default() -> Self {
        ServerPolicy {
            warning: PolicyLevel { av_bases_days: 3, full_scan_days: 14, agent_inactive_days: 7, viruses: 20 },
            critical: PolicyLevel { av_bases_days: 7, full_scan_days: 30, agent_inactive_days: 14, viruses: 100 },
        }
    }
}

impl ServerPolicy {
    /// Status id (0 OK, 1 critical, 2 warning) and reasons of a computer. Real-time protection
    /// not running and no product installed are critical.
    pub fn decide(&self, h: &SimHost) -> (i64, Vec<String>) {
        let mut worst = 0; // 0 ok, 1 warning, 2 critical
        let mut reasons = Vec::new();
        let mut add = |name: &str, sev: i32| {
            if sev > 0 {
                reasons.push(name.to_string());
                worst = worst.max(sev);
            }
        };
        let sev_age = |age: i64, w: i64, c: i64| {
            if age > c * DAY {
                2
            } else if age > w * DAY {
                1
            } else {
                0
            }
        };
        let (w, c) = (self.warning, self.critical);
        if h.product_installed {
            add("rtp_off", if (4..=8).contains(&h.rtp_state) { 0 } else { 2 });
            add("av_bases_too_old", sev_age(h.bases_age, w.av_bases_days, c.av_bases_days));
            add("full_scan_too_old", sev_age(h.full_scan_age, w.full_scan_days, c.full_scan_days));
        } else {
            add("av_not_installed", 2);
        }
        add("agent_inactive", sev_age(h.agent_age, w.agent_inactive_days, c.agent_inactive_days));
        add(
            "too_many_viruses",
            if h.viruses >= c.viruses {
                2
            } else if h.viruses >= w.viruses {
                1
            } else {
                0
            },
        );
        reasons.sort();
        let id = match worst {
            0 => 0,
            1 => 2,
            _ => 1,
        };
        (id, reasons)
    }
}

/// The simulator's own count of what it serves: what Mangrove's roll-up must equal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truth {
    pub total: u64,
    pub by_status: BTreeMap<String, u64>,
    pub by_reason: BTreeMap<String, u64>,
    /// Top-level groups (the inventory's endpoint groups), with their totals and statuses.
    pub groups: Vec<TruthGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruthGroup {
    pub name: String,
    pub total: u64,
    pub by_status: BTreeMap<String, u64>,
}

/// The whole simulated fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fleet {
    pub groups: Vec<SimGroup>,
    pub hosts: Vec<SimHost>,
}

pub fn status_name(id: i64) -> &'static str {
    match id {
        0 => "ok",
        1 => "critical",
        _ => "warning",
    }
}

impl Fleet {
    /// The top-level group (a child of the root) that `group` is in or under.
    pub fn top_of(&self, mut group: i64) -> Option<i64> {
        for _ in 0..32 {
            let g = self.groups.iter().find(|g| g.id == group)?;
            if g.parent == ROOT_GROUP {
                return Some(g.id);
            }
            group = g.parent;
        }
        None
    }

    pub fn truth(&self) -> Truth {
        let mut by_status: BTreeMap<String, u64> =
            ["ok", "warning", "critical"].iter().map(|s| (s.to_string(), 0)).collect();
        let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
        let mut groups: Vec<TruthGroup> = self
            .groups
            .iter()
            .filter(|g| g.parent == ROOT_GROUP)
            .map(|g| TruthGroup { name: g.name.clone(), total: 0, by_status: by_status.clone() })
            .collect();
        for h in &self.hosts {
            let s = status_name(h.status_id).to_string();
            *by_status.entry(s.clone()).or_default() += 1;
            for r in &h.reasons {
                *by_reason.entry(r.clone()).or_default() += 1;
            }
            let top = self.top_of(h.group).and_then(|t| self.groups.iter().find(|g| g.id == t));
            if let Some(top) = top
                && let Some(tg) = groups.iter_mut().find(|g| g.name == top.name)
            {
                tg.total += 1;
                *tg.by_status.entry(s).or_default() += 1;
            }
        }
        Truth { total: self.hosts.len() as u64, by_status, by_reason, groups }
    }
}

const DISTRICTS: &[(&str, &[&str])] = &[
    ("Huyện Thới Bình", &["Thị trấn Thới Bình", "Xã Biển Bạch", "Xã Tân Lộc", "Xã Trí Phải"]),
    ("Huyện U Minh", &["Thị trấn U Minh", "Xã Khánh An", "Xã Khánh Lâm", "Xã Nguyễn Phích"]),
    ("Huyện Trần Văn Thời", &["Thị trấn Trần Văn Thời", "Thị trấn Sông Đốc", "Xã Khánh Bình", "Xã Trần Hợi"]),
    ("Huyện Cái Nước", &["Thị trấn Cái Nước", "Xã Hưng Mỹ", "Xã Phú Hưng", "Xã Trần Thới"]),
    ("Huyện Đầm Dơi", &["Thị trấn Đầm Dơi", "Xã Tạ An Khương", "Xã Tân Duyệt", "Xã Quách Phẩm"]),
    ("Huyện Năm Căn", &["Thị trấn Năm Căn", "Xã Hàm Rồng", "Xã Đất Mới", "Xã Hàng Vịnh"]),
    ("Huyện Phú Tân", &["Thị trấn Cái Đôi Vàm", "Xã Phú Tân", "Xã Việt Thắng", "Xã Tân Hải"]),
    ("Huyện Ngọc Hiển", &["Thị trấn Rạch Gốc", "Xã Đất Mũi", "Xã Tân Ân", "Xã Viên An"]),
];

const CITY_WARDS: &[&str] = &[
    "Phường 1",
    "Phường 2",
    "Phường 5",
    "Phường 6",
    "Phường 7",
    "Phường 8",
    "Phường 9",
    "Phường Tân Xuyên",
    "Xã An Xuyên",
    "Xã Tắc Vân",
    "Xã Lý Văn Lâm",
];

const DEPARTMENTS: &[&str] = &[
    "Sở Tài chính",
    "Sở Kế hoạch và Đầu tư",
    "Sở Nội vụ",
    "Sở Tư pháp",
    "Sở Y tế",
    "Sở Giáo dục và Đào tạo",
    "Sở Công Thương",
    "Sở Nông nghiệp và Phát triển nông thôn",
    "Sở Tài nguyên và Môi trường",
    "Sở Giao thông vận tải",
    "Sở Xây dựng",
    "Sở Lao động - Thương binh và Xã hội",
    "Sở Văn hóa, Thể thao và Du lịch",
    "Sở Khoa học và Công nghệ",
    "Sở Ngoại vụ",
    "Thanh tra tỉnh",
    "Ban Dân tộc",
];

/// Splits `n` computers over `parts` leaves, the first (the office) taking a double share.
fn split(n: u32, parts: usize) -> Vec<u32> {
    let weights: Vec<u32> = (0..parts).map(|i| if i == 0 { 2 } else { 1 }).collect();
    let sum: u32 = weights.iter().sum();
    let mut out: Vec<u32> = weights.iter().map(|w| n * w / sum).collect();
    let given: u32 = out.iter().sum();
    for i in 0..(n - given) as usize {
        out[i % parts] += 1;
    }
    out
}

/// Builds the fleet from the inventory's endpoint groups, deterministically from `seed`.
pub fn seed(inv: &inventory::Inventory, seed: u64) -> Fleet {
    let mut groups = Vec::new();
    let mut next_id = 10;
    let mut add = |groups: &mut Vec<SimGroup>, parent: i64, name: &str| {
        let id = next_id;
        next_id += 1;
        groups.push(SimGroup { id, parent, name: name.to_string() });
        id
    };
    // Leaves with how many computers each holds and a short code for host names.
    let mut leaves: Vec<(i64, u32, String)> = Vec::new();
    for eg in &inv.endpoint_groups {
        let top = add(&mut groups, ROOT_GROUP, &eg.agency);
        let code = eg.name.to_uppercase().replace('-', "");
        let subtree: Vec<(String, Vec<String>)> = match eg.name.as_str() {
            "so-ban-nganh" => DEPARTMENTS.iter().map(|d| (d.to_string(), vec![])).collect(),
            "ubnd-tp-ca-mau" => std::iter::once(("Văn phòng UBND thành phố".to_string(), vec![]))
                .chain(CITY_WARDS.iter().map(|w| (w.to_string(), vec![])))
                .collect(),
            "ubnd-huyen" => DISTRICTS
                .iter()
                .map(|(d, communes)| {
                    (
                        d.to_string(),
                        std::iter::once(format!("Văn phòng UBND {}", d.to_lowercase()))
                            .chain(communes.iter().map(|c| c.to_string()))
                            .collect(),
                    )
                })
                .collect(),
            _ => Vec::new(),
        };
        if subtree.is_empty() {
            leaves.push((top, eg.computers, code));
            continue;
        }
        for (i, (name, children)) in subtree.iter().enumerate() {
            let share = split(eg.computers, subtree.len())[i];
            let g = add(&mut groups, top, name);
            if children.is_empty() {
                leaves.push((g, share, format!("{code}{i:02}")));
            } else {
                for (j, c) in children.iter().enumerate() {
                    let cg = add(&mut groups, g, c);
                    leaves.push((cg, split(share, children.len())[j], format!("H{i}X{j:02}")));
                }
            }
        }
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let policy = ServerPolicy::default();
    let mut hosts = Vec::new();
    for (group, n, code) in leaves {
        for k in 0..n {
            let mut h = random_host(&mut rng, group, &format!("{code}-PC{:03}", k + 1));
            let (id, reasons) = policy.decide(&h);
            h.status_id = id;
            h.reasons = reasons;
            hosts.push(h);
        }
    }
    Fleet { groups, hosts }
}

fn days(rng: &mut StdRng, lo: i64, hi: i64) -> i64 {
    rng.random_range(lo..=hi) * DAY + DAY / 2
}

fn random_host(rng: &mut StdRng, group: i64, dn: &str) -> SimHost {
    let id = format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        rng.random::<u32>(),
        rng.random::<u16>(),
        rng.random::<u16>(),
        rng.random::<u16>(),
        rng.random::<u64>() & 0xffff_ffff_ffff
    );
    let p = |rng: &mut StdRng| rng.random_range(0.0..100.0);
    let product_installed = p(rng) >= 1.5;
    let rtp_state = match p(rng) {
        x if x < 2.0 => 1,
        x if x < 2.5 => 2,
        x if x < 3.5 => 9,
        x if x < 20.0 => 4,
        _ => 7,
    };
    let mut bases_age = match p(rng) {
        x if x < 85.0 => rng.random_range(1..=20) * HOUR,
        x if x < 91.0 => days(rng, 1, 2),
        x if x < 96.0 => days(rng, 3, 6),
        _ => days(rng, 7, 45),
    };
    let full_scan_age = match p(rng) {
        x if x < 82.0 => days(rng, 0, 13),
        x if x < 94.0 => days(rng, 14, 29),
        _ => days(rng, 30, 120),
    };
    let agent_age = match p(rng) {
        x if x < 92.0 => rng.random_range(1..=600) * 60,
        x if x < 97.0 => days(rng, 7, 13),
        _ => days(rng, 14, 60),
    };
    // Bases cannot be newer than the agent's last contact.
    bases_age = bases_age.max(agent_age);
    let viruses = match p(rng) {
        x if x < 88.0 => 0,
        x if x < 95.0 => rng.random_range(1..=19),
        x if x < 98.5 => rng.random_range(20..=99),
        _ => rng.random_range(100..=400),
    };
    let os = match p(rng) {
        x if x < 55.0 => "Microsoft Windows 10 Pro",
        x if x < 85.0 => "Microsoft Windows 11 Pro",
        x if x < 95.0 => "Microsoft Windows 7 Professional",
        _ => "Ubuntu 22.04 LTS",
    };
    let av_version = if rng.random_range(0..10) < 7 { "12.6.0.438" } else { "11.11.0.452" };
    SimHost {
        id,
        dn: dn.to_string(),
        group,
        os: os.to_string(),
        product_installed,
        rtp_state,
        av_version: av_version.to_string(),
        bases_age,
        full_scan_age,
        agent_age,
        viruses,
        status_id: 0,
        reasons: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camau() -> inventory::Inventory {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../inventory/examples/camau.yaml");
        inventory::load_file(&p).expect("example inventory")
    }

    #[test]
    fn the_province_has_2753_computers_in_its_five_groups_with_a_seeded_mix() {
        let inv = camau();
        let fleet = seed(&inv, 2022);
        let truth = fleet.truth();
        assert_eq!(truth.total, 2753);
        assert_eq!(truth.groups.iter().map(|g| g.total).sum::<u64>(), 2753);
        for eg in &inv.endpoint_groups {
            let g = truth.groups.iter().find(|g| g.name == eg.agency).expect("group per agency");
            assert_eq!(g.total, u64::from(eg.computers), "{}", eg.agency);
        }
        assert_eq!(truth.by_status.values().sum::<u64>(), 2753);
        for s in ["ok", "warning", "critical"] {
            assert!(truth.by_status[s] > 50, "{s}: {:?}", truth.by_status);
        }
        for r in [
            "av_bases_too_old",
            "rtp_off",
            "agent_inactive",
            "too_many_viruses",
            "full_scan_too_old",
            "av_not_installed",
        ] {
            assert!(truth.by_reason.get(r).copied().unwrap_or(0) > 0, "{r}: {:?}", truth.by_reason);
        }
        assert_eq!(seed(&inv, 2022), fleet, "same seed, same fleet");
        assert_ne!(seed(&inv, 7).truth(), truth, "another seed, another mix");
        // Districts and communes sit two levels below the top.
        let district = fleet.groups.iter().find(|g| g.name == "Huyện Năm Căn").expect("district");
        assert!(fleet.groups.iter().any(|g| g.parent == district.id && g.name == "Xã Đất Mới"));
    }
}
