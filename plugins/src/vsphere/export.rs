//! Exporting a VM's disks: `ExportVm` hands out an `HttpNfcLease`; once the lease is `ready`
//! its `info.deviceUrl` lists one URL per disk, which is downloaded over HTTPS with the
//! session cookie while `HttpNfcLeaseProgress` keeps the lease alive; `HttpNfcLeaseComplete`
//! ends it, or `HttpNfcLeaseAbort` when anything failed.
//!
//! vCenter exports only a powered-off VM (a running one faults `InvalidPowerState`).
//! [`VsphereDriver::export_vm`] therefore exports a running VM through a clone: the clone
//! (crash-consistent, made while the VM runs) is exported and then deleted, so production is
//! never stopped for an image.
//!
//! Idempotence: an export writes only into the directory it is given and removes what it
//! wrote when it fails; a clone it made is deleted on every path. A retry starts afresh.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::VsphereDriver;
use super::actions::vm_ref;
use super::soap::{Moref, el};
use super::xml::Node;
use crate::error::PlatformError;
use crate::hypervisor::{self, CreateSpec, InstanceSource, OpState, PowerState};

/// How often the lease hears of the download's progress; leases time out after minutes.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// How long a clone of a running VM, and its deletion, may take.
const CLONE_TIMEOUT: Duration = Duration::from_secs(1800);
const CHUNK: usize = 1 << 20;

/// One disk an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedDisk {
    /// The lease's device key (`/vm-63/VirtualLsiLogicController0:0`, as the server names it).
    pub key: String,
    /// Where it was written.
    pub path: PathBuf,
    pub bytes: u64,
}

/// What [`VsphereDriver::export_vm`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmExport {
    /// The VM asked for.
    pub vm: String,
    /// When the exported state was taken: the export's start for a stopped VM, the clone's
    /// start for a running one. A DR image made from it is this old.
    pub taken_at: OffsetDateTime,
    /// True when a running VM was exported through a temporary clone.
    pub through_clone: bool,
    pub disks: Vec<ExportedDisk>,
}

impl VsphereDriver {
    /// Downloads every disk of `vm` (a moid) into `dir`, as `disk-<n>.vmdk`.
    ///
    /// A stopped VM is exported directly; a running (or suspended) one through a temporary
    /// clone named `<clone_name>`, deleted afterwards. `ready_within` bounds the wait for the
    /// lease to become ready.
    ///
    /// Errors: `NotFound` for an unknown VM; `Refused` when vCenter refuses the export or the
    /// lease ends in `error`; transport errors of the download. Nothing is left in `dir` then.
    pub fn export_vm(
        &self,
        vm: &str,
        clone_name: &str,
        dir: &Path,
        ready_within: Duration,
    ) -> Result<VmExport, PlatformError> {
        let mut trips = 0;
        let taken_at = OffsetDateTime::now_utc();
        if self.read_power(vm, &mut trips)? == PowerState::Off {
            let disks = self.export_stopped(vm, dir, ready_within, &mut trips)?;
            return Ok(VmExport { vm: vm.to_string(), taken_at, through_clone: false, disks });
        }
        let spec = CreateSpec {
            name: clone_name.to_string(),
            source: InstanceSource::Image(vm.to_string()),
            vcpus: 0,
            memory_bytes: 0,
            disk_bytes: 0,
            network: None,
            tags: Default::default(),
            user_data: None,
        };
        let op = hypervisor::wait(self, self.clone_vm(&spec)?, CLONE_TIMEOUT, |_| {})?;
        let clone = match op.state {
            OpState::Succeeded { result: Some(moid) } => moid,
            OpState::Failed { message } => {
                return Err(self.refused("CloneVM_Task", format!("cannot clone running {vm} for export: {message}")));
            }
            other => {
                return Err(self.refused("CloneVM_Task", format!("the clone of {vm} ended without a VM ({other:?})")));
            }
        };
        tracing::info!(endpoint = %self.transport.endpoint, vm, clone = %clone, "exporting a running VM through a clone");
        let exported = self.export_stopped(&clone, dir, ready_within, &mut trips);
        let removed = self.destroy_vm(&clone).and_then(|op| hypervisor::wait(self, op, CLONE_TIMEOUT, |_| {}));
        match removed {
            Ok(op) if !matches!(op.state, OpState::Failed { .. }) => {}
            Ok(op) => tracing::warn!(clone = %clone, state = ?op.state, "the export clone was not deleted"),
            Err(e) => tracing::warn!(clone = %clone, error = %e, "the export clone was not deleted"),
        }
        Ok(VmExport { vm: vm.to_string(), taken_at, through_clone: true, disks: exported? })
    }

    fn refused(&self, call: &str, message: String) -> PlatformError {
        PlatformError::Refused { endpoint: self.transport.endpoint.clone(), call: call.to_string(), message }
    }

    /// The lease dance for a powered-off VM.
    fn export_stopped(
        &self,
        vm: &str,
        dir: &Path,
        ready_within: Duration,
        trips: &mut u32,
    ) -> Result<Vec<ExportedDisk>, PlatformError> {
        let answer = self.invoke("ExportVm", &vm_ref(vm).xml("_this"), trips)?;
        let lease = answer
            .child("returnval")
            .and_then(Moref::from_node)
            .ok_or_else(|| self.malformed("ExportVm", "no HttpNfcLease moref in the answer"))?;
        let mut written = Vec::new();
        let result = self
            .wait_for_lease(&lease, ready_within, trips)
            .and_then(|info| self.download_disks(&lease, &info, dir, &mut written, trips));
        match result {
            Ok(disks) => {
                self.invoke("HttpNfcLeaseComplete", &lease.xml("_this"), trips)?;
                tracing::info!(endpoint = %self.transport.endpoint, vm, disks = disks.len(), "VM exported");
                Ok(disks)
            }
            Err(e) => {
                if let Err(abort) = self.invoke("HttpNfcLeaseAbort", &lease.xml("_this"), trips) {
                    tracing::warn!(lease = %lease.value, error = %abort, "HttpNfcLeaseAbort failed");
                }
                for path in written {
                    let _ = std::fs::remove_file(path);
                }
                Err(e)
            }
        }
    }

    /// Reads the lease's `state` until `ready` (then its `info`), the way tasks are polled.
    fn wait_for_lease(&self, lease: &Moref, within: Duration, trips: &mut u32) -> Result<Node, PlatformError> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(100);
        loop {
            let o = self.read_object(lease, &["state", "error", "info"], trips)?;
            match o.text("state") {
                Some("ready") => {
                    return o.props.get("info").cloned().ok_or_else(|| {
                        self.malformed("RetrievePropertiesEx", format!("lease {} is ready without info", lease.value))
                    });
                }
                Some("error") => {
                    let why = o
                        .props
                        .get("error")
                        .and_then(|e| e.text_at(&["localizedMessage"]).map(str::to_string))
                        .unwrap_or_else(|| "no reason given".into());
                    return Err(self.refused("ExportVm", format!("the export lease failed: {why}")));
                }
                Some("initializing") | None => {}
                Some(other) => {
                    return Err(self.refused("ExportVm", format!("the export lease is `{other}`, not ready")));
                }
            }
            if started.elapsed() >= within {
                return Err(PlatformError::OperationTimeout {
                    endpoint: self.transport.endpoint.clone(),
                    operation: format!("export lease {}", lease.value),
                    secs: within.as_secs(),
                });
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    fn download_disks(
        &self,
        lease: &Moref,
        info: &Node,
        dir: &Path,
        written: &mut Vec<PathBuf>,
        trips: &mut u32,
    ) -> Result<Vec<ExportedDisk>, PlatformError> {
        let urls = device_urls(info);
        if urls.is_empty() {
            return Err(self.refused("ExportVm", "the export lease lists no disk".into()));
        }
        let total = total_bytes(info, &urls);
        let mut done = 0u64;
        let mut last_progress = Instant::now();
        let mut disks = Vec::new();
        for (n, device) in urls.iter().enumerate() {
            let url = locate(&device.url, self.transport.origin());
            let call = format!("GET {}", device.key);
            let mut resp = self.transport.get_stream(&url, &call)?;
            let status = resp.status().as_u16();
            if status != 200 {
                return Err(self.refused(&call, format!("HTTP {status} for {url}")));
            }
            let path = dir.join(format!("disk-{n}.vmdk"));
            let mut file = File::create(&path)
                .map_err(|e| PlatformError::Config(format!("cannot create {}: {e}", path.display())))?;
            written.push(path.clone());
            let mut body = resp.body_mut().as_reader();
            let mut buf = vec![0u8; CHUNK];
            let mut bytes = 0u64;
            loop {
                let got = body.read(&mut buf).map_err(|e| PlatformError::Unreachable {
                    endpoint: self.transport.endpoint.clone(),
                    detail: format!("{call}: the download broke off after {bytes} bytes: {e}"),
                })?;
                if got == 0 {
                    break;
                }
                file.write_all(&buf[..got])
                    .map_err(|e| PlatformError::Config(format!("cannot write {}: {e}", path.display())))?;
                bytes += got as u64;
                done += got as u64;
                if last_progress.elapsed() >= PROGRESS_EVERY {
                    self.progress(lease, percent(done, total), trips)?;
                    last_progress = Instant::now();
                }
            }
            file.sync_all().map_err(|e| PlatformError::Config(format!("cannot write {}: {e}", path.display())))?;
            // At least once per disk, so even a fast export tells the lease how far it got.
            self.progress(lease, percent(done, total), trips)?;
            disks.push(ExportedDisk { key: device.key.clone(), path, bytes });
        }
        Ok(disks)
    }

    fn progress(&self, lease: &Moref, percent: u8, trips: &mut u32) -> Result<(), PlatformError> {
        let params = format!("{}{}", lease.xml("_this"), el("percent", &percent.to_string()));
        self.invoke("HttpNfcLeaseProgress", &params, trips).map(|_| ())
    }
}

/// One disk URL of a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DeviceUrl {
    key: String,
    url: String,
    file_size: Option<u64>,
}

/// The lease's disk URLs (entries that are not disks, e.g. an NVRAM file, are skipped).
fn device_urls(info: &Node) -> Vec<DeviceUrl> {
    info.children_named("deviceUrl")
        .filter(|d| d.text_at(&["disk"]) != Some("false"))
        .filter_map(|d| {
            Some(DeviceUrl {
                key: d.text_at(&["key"]).unwrap_or_default().to_string(),
                url: d.text_at(&["url"])?.to_string(),
                file_size: d.num_at(&["fileSize"]).filter(|s| *s > 0),
            })
        })
        .collect()
}

/// What 100% is: the files' sizes when the server gives them all, else the disks' capacity.
fn total_bytes(info: &Node, urls: &[DeviceUrl]) -> u64 {
    let sizes: Option<u64> = urls.iter().map(|u| u.file_size).sum();
    sizes.unwrap_or_else(|| info.num_at::<u64>(&["totalDiskCapacityInKB"]).unwrap_or(0) * 1024)
}

/// Progress for HttpNfcLeaseProgress: 0–99 while bytes are still coming (100 is Complete's).
fn percent(done: u64, total: u64) -> u8 {
    if total == 0 {
        return 0;
    }
    (done.saturating_mul(100) / total).min(99) as u8
}

/// A lease URL with `*` for its host (ESXi and vCenter write them so) points at the server the
/// client talks to: the host is replaced by the SDK endpoint's `scheme://host:port`.
fn locate(url: &str, origin: &str) -> String {
    let Some((_, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority == "*" || authority.starts_with("*:") { format!("{origin}{path}") } else { url.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vsphere::xml::parse;

    #[test]
    fn a_star_host_becomes_the_sdk_endpoints_origin() {
        let origin = "https://127.0.0.1:8989";
        assert_eq!(locate("https://*/nfc/52ab/disk-0.vmdk", origin), "https://127.0.0.1:8989/nfc/52ab/disk-0.vmdk");
        assert_eq!(locate("https://*:443/nfc/x/disk-0.vmdk", origin), "https://127.0.0.1:8989/nfc/x/disk-0.vmdk");
        assert_eq!(locate("https://esxi-01:443/nfc/x/d.vmdk", origin), "https://esxi-01:443/nfc/x/d.vmdk");
        assert_eq!(locate("garbage", origin), "garbage");
    }

    #[test]
    fn lease_info_yields_the_disks_and_what_100_percent_is() {
        let info = parse(
            "<val><deviceUrl><key>/vm-1/disk-0</key><url>https://*/a</url><disk>true</disk><fileSize>300</fileSize></deviceUrl>\
             <deviceUrl><key>/vm-1/nvram</key><url>https://*/n</url><disk>false</disk></deviceUrl>\
             <deviceUrl><key>/vm-1/disk-1</key><url>https://*/b</url><disk>true</disk><fileSize>100</fileSize></deviceUrl>\
             <totalDiskCapacityInKB>1024</totalDiskCapacityInKB></val>",
        )
        .expect("xml");
        let urls = device_urls(&info);
        assert_eq!(urls.iter().map(|u| u.key.as_str()).collect::<Vec<_>>(), ["/vm-1/disk-0", "/vm-1/disk-1"]);
        assert_eq!(total_bytes(&info, &urls), 400);
        // A disk without a size: the capacity is the measure.
        let no_sizes = parse("<val><deviceUrl><key>k</key><url>u</url></deviceUrl><totalDiskCapacityInKB>2</totalDiskCapacityInKB></val>")
            .expect("xml");
        assert_eq!(total_bytes(&no_sizes, &device_urls(&no_sizes)), 2048);
        assert_eq!(percent(50, 400), 12);
        assert_eq!(percent(400, 400), 99);
        assert_eq!(percent(5, 0), 0);
    }
}
