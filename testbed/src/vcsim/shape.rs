//! The world the vCenter simulator serves for a province: built from the inventory, with the
//! VMs the inventory names plus plausible others up to the site's declared VM count.
//!
//! Deterministic: the same inventory always gives the same shape (no randomness), so a
//! testbed restarted from its dir serves the same VMs on the same hosts.

use std::collections::{BTreeMap, BTreeSet};

use inventory::{HostRole, Inventory, PlatformKind, Site, System, Workload};
use serde::{Deserialize, Serialize};

use super::VcsimError;

/// The JSON the launcher's `-shape` flag reads (testbed/vcsim/shape.go, `Shape`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shape {
    pub datacenter: String,
    pub cluster: String,
    pub hosts: Vec<ShapeHost>,
    pub datastores: Vec<ShapeDatastore>,
    pub vms: Vec<ShapeVm>,
}

/// An ESXi host of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShapeHost {
    pub name: String,
    /// Physical cores (the launcher keeps it in a 16-bit field, as vSphere does).
    pub cpus: u16,
    #[serde(rename = "memoryMB")]
    pub memory_mb: u64,
}

/// A datastore mounted on every host of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShapeDatastore {
    pub name: String,
    #[serde(rename = "capacityBytes")]
    pub capacity_bytes: u64,
    #[serde(rename = "freeBytes")]
    pub free_bytes: u64,
}

/// A virtual machine, where it runs and what it looks like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShapeVm {
    pub name: String,
    pub host: String,
    pub datastore: String,
    #[serde(rename = "numCPU")]
    pub num_cpu: u32,
    #[serde(rename = "memoryMB")]
    pub memory_mb: u64,
    #[serde(rename = "diskGB")]
    pub disk_gb: u64,
    #[serde(rename = "guestId")]
    pub guest_id: String,
    #[serde(rename = "guestFullName")]
    pub guest_full_name: String,
    #[serde(rename = "poweredOn")]
    pub powered_on: bool,
    /// vSphere custom attributes (custom fields), e.g. `system = qlvbdh`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

impl Shape {
    /// The sum of the datastores' capacities, in bytes.
    pub fn capacity_bytes(&self) -> u64 {
        self.datastores.iter().map(|d| d.capacity_bytes).sum()
    }
}

/// One decimal terabyte, as storage is sold and as the province's plan counts it.
const TB: f64 = 1e12;
/// A datastore per this many TB (rounded up): 135 TB gives six.
const TB_PER_DATASTORE: f64 = 25.0;
/// Free space per datastore, in percent, cycled: about 40 % free overall.
const FREE_PERCENT: [u64; 6] = [38, 44, 35, 41, 47, 39];
/// Every this many generated VMs, one is powered off (retired or spare machines).
const POWERED_OFF_EVERY: usize = 23;

/// The world of the province's vSphere site (the first site whose platform is vSphere):
/// datacenter `<province>-<site>` (`camau-dc`), cluster `<site>-cluster-01`, the site's
/// hypervisor hosts, datastores totalling its `storage_tb`, and exactly its declared `vms`
/// count of VMs (at least the workloads the inventory names there).
///
/// # Errors
/// [`VcsimError::Shape`] if the inventory has no vSphere site or that site has no
/// hypervisor host.
pub fn province_shape(inv: &Inventory) -> Result<Shape, VcsimError> {
    let site = inv
        .sites
        .iter()
        .find(|s| s.platform.kind == PlatformKind::Vsphere)
        .ok_or_else(|| VcsimError::Shape("the inventory has no site whose platform kind is vsphere".to_owned()))?;
    let hosts: Vec<ShapeHost> = inv
        .hosts
        .iter()
        .filter(|h| h.site == site.name && h.role == HostRole::Hypervisor)
        .map(|h| ShapeHost {
            name: h.name.clone(),
            cpus: u16::try_from(h.cpus).unwrap_or(u16::MAX).min(i16::MAX as u16),
            memory_mb: h.memory_gb.saturating_mul(1024),
        })
        .collect();
    if hosts.is_empty() {
        return Err(VcsimError::Shape(format!("site {} has no host with role hypervisor", site.name)));
    }
    let datastores = datastores(site);
    let vms = vms(inv, site, &hosts, &datastores);
    Ok(Shape {
        datacenter: format!("{}-{}", slug(&inv.province), site.name),
        cluster: format!("{}-cluster-01", site.name),
        hosts,
        datastores,
        vms,
    })
}

fn datastores(site: &Site) -> Vec<ShapeDatastore> {
    // A site without declared storage still needs somewhere to put VMs: one 1 TB datastore.
    let total_tb = if site.storage_tb > 0.0 { site.storage_tb } else { 1.0 };
    let total = (total_tb * TB).round() as u64;
    let count = ((total_tb / TB_PER_DATASTORE).ceil() as u64).clamp(1, 64);
    let each = total / count;
    (0..count)
        .map(|i| {
            // The last one takes the remainder so the total is exact.
            let capacity = if i + 1 == count { total - each * (count - 1) } else { each };
            let free_percent = FREE_PERCENT[i as usize % FREE_PERCENT.len()];
            ShapeDatastore {
                name: format!("{}-ds-{:02}", site.name, i + 1),
                capacity_bytes: capacity,
                free_bytes: capacity / 100 * free_percent,
            }
        })
        .collect()
}

/// What a generated VM is for; decides its size and guest OS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Web,
    App,
    WindowsApp,
    Db,
    Mail,
    Directory,
    WindowsInfra,
    Infra,
    Appliance,
}

struct Guest {
    id: &'static str,
    full_name: &'static str,
}

const UBUNTU: Guest = Guest { id: "ubuntu64Guest", full_name: "Ubuntu Linux (64-bit)" };
const RHEL8: Guest = Guest { id: "rhel8_64Guest", full_name: "Red Hat Enterprise Linux 8 (64-bit)" };
const CENTOS7: Guest = Guest { id: "centos7_64Guest", full_name: "CentOS 7 (64-bit)" };
const WIN2019: Guest = Guest { id: "windows2019srv_64Guest", full_name: "Microsoft Windows Server 2019 (64-bit)" };
const WIN2016: Guest = Guest { id: "windows9Server64Guest", full_name: "Microsoft Windows Server 2016 (64-bit)" };
const DEBIAN11: Guest = Guest { id: "debian11_64Guest", full_name: "Debian GNU/Linux 11 (64-bit)" };
const DEBIAN12: Guest = Guest { id: "debian12_64Guest", full_name: "Debian GNU/Linux 12 (64-bit)" };
const PHOTON: Guest = Guest { id: "vmwarePhoton64Guest", full_name: "VMware Photon OS (64-bit)" };

impl Role {
    /// (vCPUs, memory GB, disk GB, guest).
    fn size(self) -> (u32, u64, u64, Guest) {
        match self {
            Role::Web => (4, 8, 100, UBUNTU),
            Role::App => (4, 16, 200, CENTOS7),
            Role::WindowsApp => (4, 16, 200, WIN2016),
            Role::Db => (8, 32, 500, RHEL8),
            Role::Mail => (4, 16, 1000, UBUNTU),
            Role::Directory => (2, 8, 100, WIN2019),
            Role::WindowsInfra => (4, 16, 500, WIN2019),
            Role::Infra => (2, 8, 200, UBUNTU),
            Role::Appliance => (4, 19, 600, PHOTON),
        }
    }
}

/// Infrastructure every provincial DC runs, untagged (no information system owns them).
const INFRA: &[(&str, Role)] = &[
    ("ad-dc-01", Role::Directory),
    ("ad-dc-02", Role::Directory),
    ("dns-01", Role::Infra),
    ("dns-02", Role::Infra),
    ("dhcp-01", Role::WindowsInfra),
    ("ntp-01", Role::Infra),
    ("backup-proxy-01", Role::WindowsInfra),
    ("backup-proxy-02", Role::WindowsInfra),
    ("backup-server-01", Role::WindowsInfra),
    ("monitor-01", Role::Infra),
    ("monitor-02", Role::Infra),
    ("log-collector-01", Role::Infra),
    ("siem-01", Role::Db),
    ("ksc-01", Role::WindowsInfra),
    ("wsus-01", Role::WindowsInfra),
    ("jump-01", Role::WindowsInfra),
    ("bastion-01", Role::Infra),
    ("proxy-01", Role::Infra),
    ("proxy-02", Role::Infra),
    ("lb-01", Role::Infra),
    ("lb-02", Role::Infra),
    ("waf-01", Role::Infra),
    ("waf-02", Role::Infra),
    ("vpn-01", Role::Infra),
    ("sso-01", Role::App),
    ("sso-02", Role::App),
    ("gitlab-01", Role::App),
    ("repo-mirror-01", Role::Infra),
    ("pg-shared-01", Role::Db),
    ("pg-shared-02", Role::Db),
    ("mssql-shared-01", Role::Db),
    ("file-01", Role::WindowsInfra),
    ("print-01", Role::WindowsInfra),
    ("lgsp-01", Role::App),
    ("lgsp-02", Role::App),
];

/// The province's shared platforms (operations centre, integration, data, containers) and
/// sector applications, untagged: none of them is one of the classified systems.
const PLATFORM: &[(&str, Role)] = &[
    ("ioc-01", Role::App),
    ("ioc-02", Role::App),
    ("ioc-dashboard-01", Role::Web),
    ("api-gw-01", Role::Infra),
    ("api-gw-02", Role::Infra),
    ("kafka-01", Role::Infra),
    ("kafka-02", Role::Infra),
    ("kafka-03", Role::Infra),
    ("es-01", Role::Db),
    ("es-02", Role::Db),
    ("es-03", Role::Db),
    ("redis-01", Role::Infra),
    ("redis-02", Role::Infra),
    ("minio-01", Role::Db),
    ("minio-02", Role::Db),
    ("minio-03", Role::Db),
    ("minio-04", Role::Db),
    ("k8s-master-01", Role::Infra),
    ("k8s-master-02", Role::Infra),
    ("k8s-master-03", Role::Infra),
    ("k8s-worker-01", Role::App),
    ("k8s-worker-02", Role::App),
    ("k8s-worker-03", Role::App),
    ("k8s-worker-04", Role::App),
    ("k8s-worker-05", Role::App),
    ("k8s-worker-06", Role::App),
    ("gis-01", Role::App),
    ("gis-02", Role::App),
    ("vilis-01", Role::WindowsApp),
    ("vilis-db-01", Role::Db),
    ("csdl-dancu-01", Role::Db),
    ("kho-dulieu-01", Role::Db),
    ("kho-dulieu-02", Role::Db),
    ("esign-01", Role::App),
    ("payment-gw-01", Role::App),
    ("sms-gateway-01", Role::Infra),
    ("sftp-01", Role::Infra),
    ("elearning-01", Role::Web),
    ("camera-vms-01", Role::WindowsApp),
    ("camera-vms-02", Role::WindowsApp),
    ("chatbot-01", Role::App),
    ("hoidap-01", Role::Web),
    ("survey-01", Role::Web),
    ("ocr-01", Role::App),
    ("jenkins-01", Role::App),
    ("harbor-01", Role::Db),
    ("dev-01", Role::App),
    ("dev-02", Role::App),
    ("staging-01", Role::App),
    ("staging-02", Role::App),
];

/// Provincial departments (sở, ban, ngành), as short ASCII names: each has its web site
/// (`web-<dept>-01`) and its specialised application (`app-<dept>-01`).
const DEPARTMENTS: &[&str] = &[
    "sotttt",
    "sonv",
    "sotc",
    "sokhdt",
    "sogtvt",
    "soyt",
    "sogddt",
    "sotnmt",
    "sonnptnt",
    "soct",
    "soxd",
    "sotp",
    "soldtbxh",
    "sovhttdl",
    "sokhcn",
    "thanhtra",
    "bandantoc",
    "bqlkkt",
];

/// The city and districts: each has its web site and its one-stop service desk system
/// (`mcdt-<district>-01`, một cửa điện tử).
const DISTRICTS: &[&str] =
    &["tpcamau", "thoibinh", "uminh", "tranvanthoi", "cainuoc", "damdoi", "namcan", "phutan", "ngochien"];

/// Companions of each system's named workload: its database and web front ends.
const COMPANIONS: &[(&str, Role)] = &[("db-01", Role::Db), ("web-01", Role::Web), ("web-02", Role::Web)];
/// A mail system's companions: mail exchangers and a mailbox store instead of web servers.
const MAIL_COMPANIONS: &[(&str, Role)] = &[("mx-01", Role::Mail), ("mx-02", Role::Mail), ("store-01", Role::Mail)];

struct Planned {
    name: String,
    role: Option<Role>,
    workload: Option<usize>,
    fields: BTreeMap<String, String>,
}

fn vms(inv: &Inventory, site: &Site, hosts: &[ShapeHost], datastores: &[ShapeDatastore]) -> Vec<ShapeVm> {
    let named: Vec<(usize, &Workload)> =
        inv.workloads.iter().enumerate().filter(|(_, w)| w.site == site.name).collect();
    let want = (site.vms.unwrap_or(0) as usize).max(named.len());
    // Hosts and workloads share one namespace; a generated VM must not take a declared name.
    let mut taken: BTreeSet<String> = inv.hosts.iter().map(|h| h.name.clone()).collect();
    taken.extend(inv.workloads.iter().map(|w| w.name.clone()));

    let mut planned: Vec<Planned> = named
        .iter()
        .map(|(i, w)| Planned { name: w.name.clone(), role: None, workload: Some(*i), fields: workload_fields(inv, w) })
        .collect();

    let mut candidates: Vec<(String, Role, BTreeMap<String, String>)> = Vec::new();
    for system in inv.systems.iter().filter(|s| named.iter().any(|(_, w)| w.system.as_deref() == Some(&s.name))) {
        let companions = if system.name.contains("mail") { MAIL_COMPANIONS } else { COMPANIONS };
        for (suffix, role) in companions {
            candidates.push((format!("{}-{suffix}", system.name), *role, system_fields(system)));
        }
    }
    candidates.push((site.platform.name.clone(), Role::Appliance, BTreeMap::new()));
    candidates.extend(INFRA.iter().map(|(n, r)| ((*n).to_owned(), *r, BTreeMap::new())));
    candidates.extend(PLATFORM.iter().map(|(n, r)| ((*n).to_owned(), *r, BTreeMap::new())));
    candidates.extend(DEPARTMENTS.iter().chain(DISTRICTS).map(|d| (format!("web-{d}-01"), Role::Web, BTreeMap::new())));
    candidates.extend(DEPARTMENTS.iter().enumerate().map(|(i, d)| {
        // Some departments' software is a Windows package bought from a vendor.
        let role = if i % 3 == 2 { Role::WindowsApp } else { Role::App };
        (format!("app-{d}-01"), role, BTreeMap::new())
    }));
    candidates.extend(DISTRICTS.iter().map(|d| (format!("mcdt-{d}-01"), Role::App, BTreeMap::new())));
    let mut generated = candidates.into_iter().filter(|(n, ..)| !n.is_empty()).collect::<Vec<_>>().into_iter();
    let mut spare = 0usize;
    while planned.len() < want {
        let (name, role, fields) = generated.next().unwrap_or_else(|| {
            // Past the catalogue: numbered test VMs, as every DC has.
            spare += 1;
            (format!("test-vm-{spare:03}"), Role::Infra, BTreeMap::new())
        });
        if taken.insert(name.clone()) {
            planned.push(Planned { name, role: Some(role), workload: None, fields });
        }
    }

    let mut generated_index = 0usize;
    planned
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let host = hosts[i % hosts.len()].name.clone();
            let datastore = datastores[i % datastores.len()].name.clone();
            match (p.workload, p.role) {
                (Some(w), _) => {
                    let w = &inv.workloads[w];
                    let guest = guest_for_os(w.os.as_deref());
                    ShapeVm {
                        name: p.name,
                        host,
                        datastore,
                        num_cpu: w.vcpus.max(1),
                        memory_mb: w.memory_gb.max(1).saturating_mul(1024),
                        disk_gb: w.disk_gb,
                        guest_id: guest.id.to_owned(),
                        guest_full_name: guest.full_name.to_owned(),
                        powered_on: true,
                        fields: p.fields,
                    }
                }
                (None, role) => {
                    let (cpus, memory_gb, disk_gb, guest) = role.unwrap_or(Role::Infra).size();
                    generated_index += 1;
                    ShapeVm {
                        name: p.name,
                        host,
                        datastore,
                        num_cpu: cpus,
                        memory_mb: memory_gb * 1024,
                        disk_gb,
                        guest_id: guest.id.to_owned(),
                        guest_full_name: guest.full_name.to_owned(),
                        powered_on: !generated_index.is_multiple_of(POWERED_OFF_EVERY),
                        fields: p.fields,
                    }
                }
            }
        })
        .collect()
}

/// A declared workload's custom attributes: its tags, plus the tag its system selects by
/// when the workload names its system but lacks that tag.
fn workload_fields(inv: &Inventory, w: &Workload) -> BTreeMap<String, String> {
    let mut fields = w.tags.clone();
    if let Some(system) = w.system.as_deref().and_then(|s| inv.systems.iter().find(|x| x.name == s)) {
        for (k, v) in system_fields(system) {
            fields.entry(k).or_insert(v);
        }
    }
    fields
}

/// The tag that places a VM in `system`: the key and value its selector matches, or
/// `system=<name>` when it selects otherwise.
fn system_fields(system: &System) -> BTreeMap<String, String> {
    let (k, v) = system
        .workloads
        .matcher
        .as_ref()
        .and_then(|m| m.key_value())
        .map_or_else(|| ("system".to_owned(), system.name.clone()), |(k, v)| (k.to_owned(), v.to_owned()));
    BTreeMap::from([(k, v)])
}

fn guest_for_os(os: Option<&str>) -> Guest {
    let os = os.unwrap_or("").to_ascii_lowercase();
    if os.contains("windows") {
        if os.contains("2016") { WIN2016 } else { WIN2019 }
    } else if os.contains("red hat") || os.contains("rhel") {
        RHEL8
    } else if os.contains("centos") {
        CENTOS7
    } else if os.contains("debian") {
        if os.contains("11") { DEBIAN11 } else { DEBIAN12 }
    } else if os.contains("photon") {
        PHOTON
    } else {
        UBUNTU
    }
}

/// Lowercase ASCII letters and digits of `name`, Vietnamese letters folded to their base
/// letter: `Cà Mau` → `camau`.
fn slug(name: &str) -> String {
    const FOLD: &[(&str, char)] = &[
        ("àáảãạăằắẳẵặâầấẩẫậ", 'a'),
        ("èéẻẽẹêềếểễệ", 'e'),
        ("ìíỉĩị", 'i'),
        ("òóỏõọôồốổỗộơờớởỡợ", 'o'),
        ("ùúủũụưừứửữự", 'u'),
        ("ỳýỷỹỵ", 'y'),
        ("đ", 'd'),
    ];
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if let Some((_, base)) = FOLD.iter().find(|(set, _)| set.contains(c)) {
            out.push(*base);
        }
    }
    if out.is_empty() { "province".to_owned() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camau() -> Inventory {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../inventory/examples/camau.yaml");
        inventory::load_file(std::path::Path::new(path)).expect("camau.yaml loads")
    }

    #[test]
    fn folds_vietnamese_names() {
        assert_eq!(slug("Cà Mau"), "camau");
        assert_eq!(slug("Đồng Tháp"), "dongthap");
        assert_eq!(slug("!!"), "province");
    }

    #[test]
    fn camau_has_the_declared_dc() {
        let shape = province_shape(&camau()).expect("shape");
        assert_eq!(shape.datacenter, "camau-dc");
        assert_eq!(shape.cluster, "dc-cluster-01");
        let hosts: Vec<&str> = shape.hosts.iter().map(|h| h.name.as_str()).collect();
        let expected: Vec<String> = (1..=9).map(|i| format!("dc-esxi-{i:02}")).collect();
        assert_eq!(hosts, expected);
        assert_eq!(shape.capacity_bytes(), 135_000_000_000_000);
        assert_eq!(shape.datastores.len(), 6);
        let free: u64 = shape.datastores.iter().map(|d| d.free_bytes).sum();
        let ratio = free as f64 / shape.capacity_bytes() as f64;
        assert!((0.3..0.5).contains(&ratio), "free ratio {ratio}");
    }

    #[test]
    fn camau_has_166_distinct_vms_spread_over_the_hosts() {
        let shape = province_shape(&camau()).expect("shape");
        assert_eq!(shape.vms.len(), 166);
        let names: BTreeSet<&str> = shape.vms.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names.len(), 166);
        for host in &shape.hosts {
            let n = shape.vms.iter().filter(|v| v.host == host.name).count();
            assert!((12..=30).contains(&n), "{} runs {n} VMs", host.name);
        }
        let off = shape.vms.iter().filter(|v| !v.powered_on).count();
        assert!((2..=12).contains(&off), "{off} VMs powered off");
        assert!(shape.vms.iter().any(|v| v.guest_id.starts_with("windows")));
        assert!(shape.vms.iter().any(|v| v.guest_id.starts_with("rhel")));
    }

    #[test]
    fn named_workloads_keep_their_size_and_system() {
        let inv = camau();
        let shape = province_shape(&inv).expect("shape");
        for w in &inv.workloads {
            let vm = shape.vms.iter().find(|v| v.name == w.name).expect("named workload is a VM");
            assert_eq!(vm.num_cpu, w.vcpus);
            assert_eq!(vm.memory_mb, w.memory_gb * 1024);
            assert!(vm.powered_on);
            assert_eq!(vm.fields.get("system"), w.system.as_ref());
        }
        for system in &inv.systems {
            let members = shape.vms.iter().filter(|v| v.fields.get("system") == Some(&system.name)).count();
            assert!(members >= 2, "{} has {members} VMs", system.name);
        }
        let untagged = shape.vms.iter().filter(|v| v.fields.is_empty()).count();
        assert!(untagged > 100, "{untagged} untagged");
    }

    #[test]
    fn the_same_inventory_gives_the_same_world() {
        let inv = camau();
        assert_eq!(province_shape(&inv).expect("shape"), province_shape(&inv).expect("shape"));
    }

    #[test]
    fn an_inventory_without_vsphere_is_refused() {
        let mut inv = camau();
        inv.sites.retain(|s| s.platform.kind != PlatformKind::Vsphere);
        let err = province_shape(&inv).expect_err("no vsphere site");
        assert!(err.to_string().contains("vsphere"), "{err}");
    }
}
