//! Actions on VMs: power, snapshots, clone and destroy, and the polling of the tasks they
//! start. Every action first reads what it needs (one PropertyCollector call), so the
//! idempotence the [`Hypervisor`](crate::hypervisor::Hypervisor) trait promises is decided
//! from the server's current state, not from what the caller believes.

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::PlatformError;
use crate::hypervisor::{self, CreateSpec, InstanceSource, OpState, Operation, PowerAction, PowerState, Snapshot};

use super::VsphereDriver;
use super::inventory::power_state;
use super::soap::{Moref, el};
use super::xml::Node;

/// Prefix of the ids of guest shutdowns, which vSphere runs without a task.
const SHUTDOWN_PREFIX: &str = "shutdown:";
/// How long `delete_instance` waits for the power-off that must precede Destroy.
const POWER_OFF_BEFORE_DESTROY: Duration = Duration::from_secs(300);

pub(super) fn vm_ref(vm: &str) -> Moref {
    Moref::new("VirtualMachine", vm)
}

fn queued(task: &Moref, description: String) -> Operation {
    Operation { id: task.value.clone(), description, state: OpState::Queued }
}

impl VsphereDriver {
    /// Calls a `*_Task` method and returns the queued operation for the task it started.
    fn start_task(
        &self,
        method: &str,
        params: &str,
        description: String,
        trips: &mut u32,
    ) -> Result<Operation, PlatformError> {
        let answer = self.invoke(method, params, trips)?;
        let task = answer
            .child("returnval")
            .and_then(Moref::from_node)
            .ok_or_else(|| self.malformed(method, "no Task moref in the answer"))?;
        tracing::info!(endpoint = %self.transport.endpoint, task = %task.value, "{description}");
        Ok(queued(&task, description))
    }

    pub(super) fn read_power(&self, vm: &str, trips: &mut u32) -> Result<PowerState, PlatformError> {
        let o = self.read_object(&vm_ref(vm), &["runtime.powerState"], trips)?;
        Ok(power_state(o.text("runtime.powerState")))
    }

    pub(super) fn power_vm(&self, vm: &str, action: PowerAction) -> Result<Operation, PlatformError> {
        let mut trips = 0;
        let word = match action {
            PowerAction::On => "on",
            PowerAction::Off => "off",
            PowerAction::Shutdown => "shutdown",
        };
        let description = format!("power {word} {vm}");
        let current = self.read_power(vm, &mut trips)?;
        if current == action.target() {
            return Ok(Operation::done(vm, description, None));
        }
        let this = vm_ref(vm).xml("_this");
        match action {
            PowerAction::On => self.start_task("PowerOnVM_Task", &this, description, &mut trips),
            PowerAction::Off => self.start_task("PowerOffVM_Task", &this, description, &mut trips),
            PowerAction::Shutdown => {
                // ShutdownGuest only asks VMware Tools; the VM is off once its power state says so.
                self.invoke("ShutdownGuest", &this, &mut trips)?;
                Ok(Operation {
                    id: format!("{SHUTDOWN_PREFIX}{vm}"),
                    description,
                    state: OpState::Running { progress: None },
                })
            }
        }
    }

    pub(super) fn create_snapshot(&self, vm: &str, name: &str, description: &str) -> Result<Operation, PlatformError> {
        let params = format!(
            "{}{}{}<memory>false</memory><quiesce>false</quiesce>",
            vm_ref(vm).xml("_this"),
            el("name", name),
            el("description", description)
        );
        self.start_task("CreateSnapshot_Task", &params, format!("snapshot {vm} as {name:?}"), &mut 0)
    }

    /// The VM's snapshot tree, flattened and oldest first.
    pub(super) fn list_snapshots(&self, vm: &str, trips: &mut u32) -> Result<Vec<Snapshot>, PlatformError> {
        let o = self.read_object(&vm_ref(vm), &["snapshot"], trips)?;
        let Some(info) = o.props.get("snapshot") else { return Ok(Vec::new()) };
        let current = info.child("currentSnapshot").and_then(Moref::from_node).map(|m| m.value);
        let mut out = Vec::new();
        for root in info.children_named("rootSnapshotList") {
            flatten(root, current.as_deref(), &mut out);
        }
        // Pre-order is creation order along one branch; across branches, the creation time decides.
        let when = |s: &Snapshot| s.created.as_deref().and_then(|c| OffsetDateTime::parse(c, &Rfc3339).ok());
        out.sort_by_key(|s| when(s));
        Ok(out)
    }

    fn find_snapshot(&self, vm: &str, snapshot: &str, trips: &mut u32) -> Result<Option<Snapshot>, PlatformError> {
        Ok(self.list_snapshots(vm, trips)?.into_iter().find(|s| s.id == snapshot))
    }

    pub(super) fn revert_snapshot(&self, vm: &str, snapshot: &str) -> Result<Operation, PlatformError> {
        let mut trips = 0;
        // Reverting by snapshot moref alone would accept another VM's snapshot; check ownership.
        if self.find_snapshot(vm, snapshot, &mut trips)?.is_none() {
            return Err(PlatformError::NotFound {
                endpoint: self.transport.endpoint.clone(),
                what: format!("snapshot of {vm}"),
                id: snapshot.to_string(),
            });
        }
        let this = Moref::new("VirtualMachineSnapshot", snapshot).xml("_this");
        self.start_task("RevertToSnapshot_Task", &this, format!("revert {vm} to {snapshot}"), &mut trips)
    }

    pub(super) fn delete_snapshot(&self, vm: &str, snapshot: &str) -> Result<Operation, PlatformError> {
        let mut trips = 0;
        let description = format!("delete snapshot {snapshot} of {vm}");
        if self.find_snapshot(vm, snapshot, &mut trips)?.is_none() {
            return Ok(Operation::done(snapshot, description, None));
        }
        let params = format!(
            "{}<removeChildren>false</removeChildren><consolidate>true</consolidate>",
            Moref::new("VirtualMachineSnapshot", snapshot).xml("_this")
        );
        self.start_task("RemoveSnapshot_Task", &params, description, &mut trips)
    }

    /// Clones a template or VM into the source's folder and resource pool, with the spec's
    /// CPU and memory. Disk size, network and tags are not applied by this driver (logged).
    pub(super) fn clone_vm(&self, spec: &CreateSpec) -> Result<Operation, PlatformError> {
        let source = match &spec.source {
            InstanceSource::Image(id) => vm_ref(id),
            InstanceSource::Volume(_) => {
                return Err(PlatformError::Unsupported {
                    kind: "vsphere",
                    what: "booting an instance from an existing volume".into(),
                });
            }
        };
        if spec.name.is_empty() {
            return Err(PlatformError::Config("a new VM needs a name".into()));
        }
        let mut trips = 0;
        let src = self.read_object(&source, &["parent", "resourcePool", "runtime.host"], &mut trips)?;
        let folder =
            src.props.get("parent").and_then(Moref::from_node).filter(|p| p.kind == "Folder").ok_or_else(|| {
                PlatformError::Refused {
                    endpoint: self.transport.endpoint.clone(),
                    call: "CloneVM_Task".into(),
                    message: format!(
                        "{} is not in a VM folder (a vApp member?); clone it from a template instead",
                        source.value
                    ),
                }
            })?;
        let pool = match src.props.get("resourcePool").and_then(Moref::from_node) {
            Some(pool) => pool,
            // A template has no pool: use the root pool of the cluster its host belongs to.
            None => self.pool_of_host(&source, src.props.get("runtime.host"), &mut trips)?,
        };
        if let Some(index) = &self.service.search_index {
            let params = format!("{}{}{}", index.xml("_this"), folder.xml("entity"), el("name", &spec.name));
            let found = self.invoke("FindChild", &params, &mut trips)?;
            if let Some(existing) = found.child("returnval").and_then(Moref::from_node) {
                return Err(PlatformError::Refused {
                    endpoint: self.transport.endpoint.clone(),
                    call: "CloneVM_Task".into(),
                    message: format!(
                        "a VM named {:?} already exists ({}) in folder {}",
                        spec.name, existing.value, folder.value
                    ),
                });
            }
        }
        if spec.disk_bytes > 0 || spec.network.is_some() || !spec.tags.is_empty() {
            tracing::warn!(
                endpoint = %self.transport.endpoint,
                name = %spec.name,
                "the clone keeps the source's disks, network and tags; the spec's disk size, network and tags \
                 are not applied by the vSphere driver"
            );
        }
        let mut config = String::new();
        if spec.vcpus > 0 {
            config.push_str(&format!("<numCPUs>{}</numCPUs>", spec.vcpus));
        }
        let memory_mb = spec.memory_bytes / (1024 * 1024);
        if memory_mb > 0 {
            config.push_str(&format!("<memoryMB>{memory_mb}</memoryMB>"));
        }
        let params = format!(
            "{}{}{}<spec><location>{}</location><template>false</template>\
             <config>{config}</config><powerOn>false</powerOn></spec>",
            source.xml("_this"),
            folder.xml("folder"),
            el("name", &spec.name),
            pool.xml("pool"),
        );
        self.start_task("CloneVM_Task", &params, format!("clone {} as {:?}", source.value, spec.name), &mut trips)
    }

    fn pool_of_host(&self, source: &Moref, host: Option<&Node>, trips: &mut u32) -> Result<Moref, PlatformError> {
        let no_pool = || PlatformError::Refused {
            endpoint: self.transport.endpoint.clone(),
            call: "CloneVM_Task".into(),
            message: format!("cannot find a resource pool for a clone of {}: it has no pool and no host", source.value),
        };
        let host = host.and_then(Moref::from_node).ok_or_else(no_pool)?;
        let compute = self.read_object(&host, &["parent"], trips)?;
        let compute = compute.props.get("parent").and_then(Moref::from_node).ok_or_else(no_pool)?;
        let cr = self.read_object(&compute, &["resourcePool"], trips)?;
        cr.props.get("resourcePool").and_then(Moref::from_node).ok_or_else(no_pool)
    }

    pub(super) fn destroy_vm(&self, vm: &str) -> Result<Operation, PlatformError> {
        let mut trips = 0;
        let description = format!("delete {vm}");
        let state = match self.read_power(vm, &mut trips) {
            Ok(state) => state,
            Err(PlatformError::NotFound { .. }) => return Ok(Operation::done(vm, description, None)),
            Err(e) => return Err(e),
        };
        if state == PowerState::On {
            let off = self.start_task(
                "PowerOffVM_Task",
                &vm_ref(vm).xml("_this"),
                format!("power off {vm} before deleting it"),
                &mut trips,
            )?;
            let off = hypervisor::wait(self, off, POWER_OFF_BEFORE_DESTROY, |_| {})?;
            if let OpState::Failed { message } = off.state {
                return Err(PlatformError::Refused {
                    endpoint: self.transport.endpoint.clone(),
                    call: "PowerOffVM_Task".into(),
                    message: format!("cannot power {vm} off before deleting it: {message}"),
                });
            }
        }
        match self.start_task("Destroy_Task", &vm_ref(vm).xml("_this"), description.clone(), &mut trips) {
            // Deleted by someone else between the read and the call: the wish is fulfilled.
            Err(PlatformError::NotFound { .. }) => Ok(Operation::done(vm, description, None)),
            other => other,
        }
    }

    pub(super) fn poll_operation(&self, op: &Operation) -> Result<Operation, PlatformError> {
        if op.state.is_done() {
            return Ok(op.clone());
        }
        let mut trips = 0;
        if let Some(vm) = op.id.strip_prefix(SHUTDOWN_PREFIX) {
            let state = match self.read_power(vm, &mut trips)? {
                PowerState::Off => OpState::Succeeded { result: None },
                _ => OpState::Running { progress: None },
            };
            return Ok(Operation { state, ..op.clone() });
        }
        let task = self.read_object(&Moref::new("Task", &op.id), &["info"], &mut trips)?;
        let info = task
            .props
            .get("info")
            .ok_or_else(|| self.malformed("RetrievePropertiesEx", format!("task {} has no info", op.id)))?;
        let state = task_state(info)
            .map_err(|detail| self.malformed("RetrievePropertiesEx", format!("task {}: {detail}", op.id)))?;
        Ok(Operation { state, ..op.clone() })
    }
}

/// Reads a `TaskInfo` into an operation state.
fn task_state(info: &Node) -> Result<OpState, String> {
    match info.text_at(&["state"]) {
        Some("queued") => Ok(OpState::Queued),
        Some("running") => Ok(OpState::Running { progress: info.num_at::<u8>(&["progress"]).map(|p| p.min(100)) }),
        Some("success") => {
            let result = info.child("result").and_then(|r| {
                Moref::from_node(r)
                    .map(|m| m.value)
                    .or_else(|| (r.children.is_empty() && !r.value().is_empty()).then(|| r.value().to_string()))
            });
            Ok(OpState::Succeeded { result })
        }
        Some("error") => {
            let err = info.child("error");
            let fault = err.and_then(|e| e.child("fault"));
            let kind = fault.and_then(|f| f.xsi_type.clone()).unwrap_or_else(|| "unknown fault".into());
            // The VM reached the asked power state by other means between our read and the
            // task: the caller's wish holds, so the power action succeeded.
            if kind == "InvalidPowerState"
                && let Some(f) = fault
                && f.text_at(&["requestedState"]).is_some()
                && f.text_at(&["requestedState"]) == f.text_at(&["existingState"])
            {
                return Ok(OpState::Succeeded { result: None });
            }
            let message = match err.and_then(|e| e.text_at(&["localizedMessage"])) {
                Some(m) => format!("{m} ({kind})"),
                None => kind,
            };
            Ok(OpState::Failed { message })
        }
        Some(other) => Err(format!("unknown task state {other:?}")),
        None => Err("the task info has no state".into()),
    }
}

fn flatten(tree: &Node, current: Option<&str>, out: &mut Vec<Snapshot>) {
    if let Some(id) = tree.child("snapshot").and_then(Moref::from_node).map(|m| m.value) {
        out.push(Snapshot {
            current: current == Some(id.as_str()),
            name: tree.text_at(&["name"]).unwrap_or_default().to_string(),
            description: tree.text_at(&["description"]).map(str::to_string),
            created: tree.text_at(&["createTime"]).map(str::to_string),
            id,
        });
    }
    for child in tree.children_named("childSnapshotList") {
        flatten(child, current, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vsphere::xml::parse;

    fn info(xml: &str) -> Node {
        parse(xml).expect("test xml")
    }

    #[test]
    fn task_info_states_map_onto_operation_states() {
        let ok = info(
            r#"<val xmlns:x="http://www.w3.org/2001/XMLSchema-instance"><state>success</state><result x:type="ManagedObjectReference" type="VirtualMachineSnapshot">snapshot-71</result></val>"#,
        );
        assert_eq!(task_state(&ok), Ok(OpState::Succeeded { result: Some("snapshot-71".into()) }));
        let running = info("<val><state>running</state><progress>42</progress></val>");
        assert_eq!(task_state(&running), Ok(OpState::Running { progress: Some(42) }));
        let failed = info(
            r#"<val xmlns:x="http://www.w3.org/2001/XMLSchema-instance"><state>error</state><error><fault x:type="FileLocked"></fault><localizedMessage>disk locked</localizedMessage></error></val>"#,
        );
        assert_eq!(task_state(&failed), Ok(OpState::Failed { message: "disk locked (FileLocked)".into() }));
        let same = info(
            r#"<val xmlns:x="http://www.w3.org/2001/XMLSchema-instance"><state>error</state><error><fault x:type="InvalidPowerState"><requestedState>poweredOn</requestedState><existingState>poweredOn</existingState></fault></error></val>"#,
        );
        assert_eq!(task_state(&same), Ok(OpState::Succeeded { result: None }));
        assert!(task_state(&info("<val><state>exploded</state></val>")).is_err());
        assert!(task_state(&info("<val/>")).is_err());
    }

    #[test]
    fn snapshot_trees_flatten_with_the_current_one_marked() {
        let tree = info(
            r#"<t><snapshot type="VirtualMachineSnapshot">snapshot-1</snapshot><name>a</name><createTime>2026-01-01T00:00:00Z</createTime>
               <childSnapshotList><snapshot type="VirtualMachineSnapshot">snapshot-2</snapshot><name>b</name></childSnapshotList></t>"#,
        );
        let mut out = Vec::new();
        flatten(&tree, Some("snapshot-2"), &mut out);
        let ids: Vec<(&str, bool)> = out.iter().map(|s| (s.id.as_str(), s.current)).collect();
        assert_eq!(ids, vec![("snapshot-1", false), ("snapshot-2", true)]);
    }
}
