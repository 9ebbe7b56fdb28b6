//! The cloud a fresh simulator starts with, derived from the inventory's `dr` site.
//!
//! - One hypervisor per inventory host at site `dr` with role `hypervisor` (vCPUs and memory
//!   from the inventory; 1,800 GiB of local disk each, an assumption: two 960 GB SSDs).
//! - Three Cinder pools `dr-ceph@rbd#pool-N` sharing the site's `storage_tb` (decimal TB, shown
//!   in GiB as Cinder does).
//! - The usual `m1.*` flavors (ids 1–5 as in devstack) plus one `dr.<vcpus>c<ram>g` flavor per
//!   VM size at the DC, so every DC workload has a flavor to fail over to.
//! - Public images cirros, ubuntu-22.04, rhel-8, windows-2019 (metadata only: no bytes).
//! - Networks `dr-prod` (where failed-over systems run), `dr-drill` (isolated: no router, no
//!   external access, for failover drills that must not disturb production) and `dr-public`
//!   (external, for floating IPs).
//! - Three DR-resident servers that exist whether or not anything failed over: a bastion, a
//!   DNS resolver and a backup proxy, with a data volume on the proxy and one snapshot of it.
//!   No application VMs: at a DR site those appear only when a failover or drill brings them
//!   up, so a driver test starts from the state a real standby site is in.
//!
//! Everything is derived from names and a fixed time, so `seed` is deterministic.

use std::collections::BTreeMap;

use inventory::{HostRole, Inventory};

use super::state::*;

/// When the seeded resources were created: 2026-01-05T08:00:00Z.
const SEED_TIME: i64 = 1_767_600_000;
const SITE: &str = "dr";
const POOLS: u32 = 3;
const LOCAL_GB: u64 = 1800;

/// The seed state for the inventory's DR site.
pub fn seed(inv: &Inventory) -> State {
    let project_id = stable_uuid("project/admin").replace('-', "");
    let user_id = stable_uuid("user/admin").replace('-', "");
    let hypervisors = inv
        .hosts
        .iter()
        .filter(|h| h.site == SITE && h.role == HostRole::Hypervisor)
        .enumerate()
        .map(|(i, h)| {
            let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
            Hypervisor {
                id: n,
                uuid: stable_uuid(&format!("hypervisor/{}", h.name)),
                service_id: n + 2,
                service_uuid: stable_uuid(&format!("service/nova-compute/{}", h.name)),
                hostname: h.name.clone(),
                host_ip: "127.0.0.1".into(),
                vcpus: u64::from(h.cpus),
                memory_mb: h.memory_gb * 1024,
                local_gb: LOCAL_GB,
                state: "up".into(),
                status: "enabled".into(),
                hypervisor_type: "QEMU".into(),
                hypervisor_version: 8_002_000,
            }
        })
        .collect();
    let storage_tb = inv.site(SITE).map_or(0.0, |s| s.storage_tb);
    let per_pool_gib = storage_tb * 1e12 / f64::from(1u32 << 30) / f64::from(POOLS);
    let pools = (1..=POOLS)
        .map(|n| Pool {
            name: format!("dr-ceph@rbd#pool-{n}"),
            total_capacity_gb: (per_pool_gib * 100.0).round() / 100.0,
        })
        .collect();
    let mut st = State {
        version: STATE_VERSION,
        project_id,
        user_id,
        admin_role_id: stable_uuid("role/admin").replace('-', ""),
        member_role_id: stable_uuid("role/member").replace('-', ""),
        hypervisors,
        flavors: flavors(inv),
        images: Vec::new(),
        networks: Vec::new(),
        subnets: Vec::new(),
        ports: Vec::new(),
        floating_ips: Vec::new(),
        servers: Vec::new(),
        pools,
        volumes: Vec::new(),
        snapshots: Vec::new(),
        backups: Vec::new(),
    };
    st.images = images(&st.project_id);
    networks(&mut st);
    servers(&mut st);
    st
}

fn flavor(id: &str, name: &str, vcpus: u64, ram: u64, disk: u64, description: Option<String>) -> Flavor {
    Flavor {
        id: id.into(),
        name: name.into(),
        vcpus,
        ram,
        disk,
        ephemeral: 0,
        swap: 0,
        is_public: true,
        description,
        extra_specs: BTreeMap::new(),
    }
}

fn flavors(inv: &Inventory) -> Vec<Flavor> {
    let mut out = vec![
        flavor("1", "m1.tiny", 1, 512, 1, None),
        flavor("2", "m1.small", 1, 2048, 20, None),
        flavor("3", "m1.medium", 2, 4096, 40, None),
        flavor("4", "m1.large", 4, 8192, 80, None),
        flavor("5", "m1.xlarge", 8, 16384, 160, None),
    ];
    let mut sizes: Vec<(u64, u64)> =
        inv.workloads.iter().filter(|w| w.site == "dc").map(|w| (u64::from(w.vcpus), w.memory_gb)).collect();
    sizes.sort_unstable();
    sizes.dedup();
    for (i, (vcpus, gb)) in sizes.into_iter().enumerate() {
        // Root disk only: the systems' data lives on replicated Cinder volumes.
        out.push(flavor(
            &(101 + i).to_string(),
            &format!("dr.{vcpus}c{gb}g"),
            vcpus,
            gb * 1024,
            100,
            Some(format!("matches DC VMs with {vcpus} vCPUs and {gb} GiB")),
        ));
    }
    out
}

fn image(project: &str, name: &str, size: u64, disk_format: &str, min_disk: u64, props: &[(&str, &str)]) -> Image {
    let checksum = hex::encode(<md5::Md5 as md5::Digest>::digest(format!("seed image {name}").as_bytes()));
    Image {
        id: stable_uuid(&format!("image/{name}")),
        name: Some(name.into()),
        status: "active".into(),
        visibility: "public".into(),
        protected: false,
        container_format: Some("bare".into()),
        disk_format: Some(disk_format.into()),
        size: Some(size),
        virtual_size: None,
        checksum: Some(checksum),
        os_hash_algo: None,
        os_hash_value: None,
        min_disk,
        min_ram: 0,
        owner: project.into(),
        tags: Vec::new(),
        stored: false,
        created: SEED_TIME,
        updated: SEED_TIME,
        properties: props.iter().map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v))).collect(),
    }
}

fn images(project: &str) -> Vec<Image> {
    vec![
        image(project, "cirros", 21_430_272, "qcow2", 0, &[("os_distro", "cirros")]),
        image(project, "ubuntu-22.04", 675_479_552, "qcow2", 10, &[("os_distro", "ubuntu"), ("os_version", "22.04")]),
        image(project, "rhel-8", 1_073_610_752, "qcow2", 10, &[("os_distro", "rhel"), ("os_version", "8.9")]),
        image(
            project,
            "windows-2019",
            10_452_205_568,
            "qcow2",
            40,
            &[("os_distro", "windows"), ("os_type", "windows")],
        ),
    ]
}

struct NetSpec {
    name: &'static str,
    cidr: &'static str,
    gateway: Option<&'static str>,
    start: &'static str,
    end: &'static str,
    external: bool,
    network_type: &'static str,
    segment: Option<u32>,
    description: &'static str,
}

fn networks(st: &mut State) {
    let specs = [
        NetSpec {
            name: "dr-prod",
            cidr: "10.120.0.0/22",
            gateway: Some("10.120.0.1"),
            start: "10.120.0.10",
            end: "10.120.3.250",
            external: false,
            network_type: "vxlan",
            segment: Some(1201),
            description: "production network of the DR site; failed-over systems run here",
        },
        NetSpec {
            name: "dr-drill",
            cidr: "10.199.0.0/24",
            gateway: None,
            start: "10.199.0.10",
            end: "10.199.0.250",
            external: false,
            network_type: "vxlan",
            segment: Some(1999),
            description: "isolated network for failover drills: no router, no gateway",
        },
        NetSpec {
            name: "dr-public",
            cidr: "203.0.113.0/24",
            gateway: Some("203.0.113.1"),
            start: "203.0.113.10",
            end: "203.0.113.250",
            external: true,
            network_type: "flat",
            segment: None,
            description: "external network for floating IPs (documentation range, never routed)",
        },
    ];
    for s in specs {
        let id = stable_uuid(&format!("network/{}", s.name));
        st.subnets.push(Subnet {
            id: stable_uuid(&format!("subnet/{}", s.name)),
            name: format!("{}-v4", s.name),
            network_id: id.clone(),
            cidr: s.cidr.into(),
            gateway_ip: s.gateway.map(Into::into),
            pool_start: s.start.into(),
            pool_end: s.end.into(),
            enable_dhcp: !s.external,
            dns_nameservers: Vec::new(),
            created: SEED_TIME,
        });
        st.networks.push(Network {
            id,
            name: s.name.into(),
            description: s.description.into(),
            shared: false,
            external: s.external,
            mtu: if s.network_type == "vxlan" { 1450 } else { 1500 },
            network_type: s.network_type.into(),
            segmentation_id: s.segment,
            created: SEED_TIME,
        });
    }
}

fn servers(st: &mut State) {
    let specs = [
        ("dr-bastion-01", "2", "ubuntu-22.04", "bastion"),
        ("dr-dns-01", "2", "ubuntu-22.04", "dns"),
        ("dr-backup-proxy-01", "4", "rhel-8", "backup-proxy"),
    ];
    let Some(net) = st.networks.iter().find(|n| n.name == "dr-prod").cloned() else { return };
    let Some(subnet) = st.subnets.iter().find(|s| s.network_id == net.id).cloned() else { return };
    for (name, flavor_id, image_name, role) in specs {
        let (Some(f), Some(img)) = (
            st.flavors.iter().find(|f| f.id == flavor_id).cloned(),
            st.images.iter().find(|i| i.name.as_deref() == Some(image_name)).cloned(),
        ) else {
            continue;
        };
        let flavor = f.copy();
        let Some(host) = st.place(&flavor, true) else { continue };
        let id = stable_uuid(&format!("server/{name}"));
        let Some(ip) = st.free_ip(&subnet, &[]) else { continue };
        let mac_bytes = stable_uuid(&format!("mac/{name}")).replace('-', "");
        st.ports.push(Port {
            id: stable_uuid(&format!("port/{name}")),
            name: String::new(),
            network_id: net.id.clone(),
            mac_address: format!("fa:16:3e:{}:{}:{}", &mac_bytes[0..2], &mac_bytes[2..4], &mac_bytes[4..6]),
            fixed_ips: vec![FixedIp { subnet_id: subnet.id.clone(), ip_address: ip }],
            device_id: id.clone(),
            device_owner: "compute:nova".into(),
            created: SEED_TIME,
        });
        let metadata =
            BTreeMap::from([("role".to_owned(), role.to_owned()), ("managed-by".to_owned(), "dr-site".to_owned())]);
        st.servers.push(Server {
            id,
            name: name.into(),
            flavor,
            image_id: Some(img.id.clone()),
            host: Some(host),
            status: "ACTIVE".into(),
            vm_state: "active".into(),
            power_state: 1,
            task_state: None,
            metadata,
            key_name: None,
            description: None,
            availability_zone: "nova".into(),
            created: SEED_TIME,
            updated: SEED_TIME,
            launched_at: Some(SEED_TIME),
            fault: None,
            pending: None,
            realized: None,
        });
    }
    let Some(proxy) = st.servers.iter().find(|s| s.name == "dr-backup-proxy-01").map(|s| s.id.clone()) else {
        return;
    };
    let Some(pool) = st.place_volume(2000) else { return };
    let vol_id = stable_uuid("volume/dr-backup-proxy-01-data");
    st.volumes.push(Volume {
        id: vol_id.clone(),
        name: Some("dr-backup-proxy-01-data".into()),
        description: Some("staging area of the backup proxy".into()),
        size: 2000,
        status: "in-use".into(),
        volume_type: "__DEFAULT__".into(),
        bootable: false,
        pool,
        attachments: vec![Attachment {
            id: stable_uuid("attachment/dr-backup-proxy-01-data"),
            server_id: proxy,
            device: "/dev/vdb".into(),
            attached_at: SEED_TIME,
        }],
        metadata: BTreeMap::new(),
        snapshot_id: None,
        image_id: None,
        created: SEED_TIME,
        updated: SEED_TIME,
        pending: None,
    });
    st.snapshots.push(Snapshot {
        id: stable_uuid("snapshot/dr-backup-proxy-01-data-weekly"),
        name: Some("dr-backup-proxy-01-data-weekly".into()),
        description: Some("weekly snapshot".into()),
        volume_id: vol_id,
        size: 2000,
        status: "available".into(),
        metadata: BTreeMap::new(),
        created: SEED_TIME,
        updated: SEED_TIME,
        pending: None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camau() -> Inventory {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../inventory/examples/camau.yaml");
        inventory::load_file(&p).expect("camau.yaml loads")
    }

    #[test]
    fn seed_is_deterministic_and_follows_the_inventory() {
        let inv = camau();
        let st = seed(&inv);
        assert_eq!(st, seed(&inv));
        let names: Vec<&str> = st.hypervisors.iter().map(|h| h.hostname.as_str()).collect();
        assert_eq!(
            names,
            ["dr-compute-01", "dr-compute-02", "dr-compute-03", "dr-compute-04", "dr-compute-05", "dr-compute-06"]
        );
        assert!(st.hypervisors.iter().all(|h| h.vcpus == 48 && h.memory_mb == 512 * 1024));
        let total: f64 = st.pools.iter().map(|p| p.total_capacity_gb).sum();
        assert!((total - 117e12 / f64::from(1u32 << 30)).abs() < 0.1, "{total}");
        // Every DC VM size has a flavor to fail over to.
        for w in inv.workloads.iter().filter(|w| w.site == "dc") {
            assert!(
                st.flavors.iter().any(|f| f.vcpus == u64::from(w.vcpus) && f.ram == w.memory_gb * 1024),
                "no flavor for {}",
                w.name
            );
        }
        // The seeded servers are spread over distinct hosts and fit them.
        let hosts: Vec<_> = st.servers.iter().filter_map(|s| s.host.clone()).collect();
        assert_eq!(hosts.len(), 3);
        assert!(hosts.windows(2).all(|w| w[0] != w[1]), "{hosts:?}");
    }
}
