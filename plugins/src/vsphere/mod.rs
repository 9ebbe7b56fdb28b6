//! The VMware vSphere driver: vim25 SOAP spoken directly over the shared HTTP client.
//!
//! * [`soap`] builds envelopes, keeps the session cookie and reads answers and faults;
//! * [`xml`] is the namespace-aware reader those answers go through;
//! * [`inventory`] is the bulk PropertyCollector walk and its mapping;
//! * [`actions`] holds power, snapshot, clone/destroy and task polling;
//! * [`export`] downloads a VM's disks through an export lease (`ExportVm`).
//!
//! A driver holds one session (`SessionManager.Login`), made in [`VsphereDriver::connect`]
//! and ended by [`Hypervisor::close`] or on drop. A call that finds the session expired
//! (`NotAuthenticated`) logs in again once and is retried once; login itself is never
//! retried, so a wrong password costs one attempt.
//!
//! Operation ids are the vCenter task moids (`task-68`), except for a guest shutdown, which
//! is no task on vSphere: its id is `shutdown:<vm moid>` and polling it reads the VM's power
//! state until it is off.

mod actions;
pub mod export;
mod inventory;
pub mod soap;
pub mod xml;

use std::collections::HashMap;

use serde::Deserialize;

use crate::error::PlatformError;
use crate::http::HttpOptions;
use crate::hypervisor::{CreateSpec, Hypervisor, Inventory, Operation, PlatformKind, PowerAction, Snapshot};

use soap::{CallError, Moref, Transport, el};
use xml::Node;

/// Page size asked of the PropertyCollector; vCenter returns a `token` for the rest.
const MAX_OBJECTS_PER_PAGE: u32 = 500;

/// How to reach one vCenter or ESXi host. Deserialize only: a value holding a password is
/// not meant to be written back out.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VsphereConfig {
    /// The SDK endpoint, e.g. `https://vcenter.example/sdk`.
    pub url: String,
    pub username: String,
    /// Never logged: `Debug` prints it redacted.
    pub password: String,
    #[serde(default)]
    pub http: HttpOptions,
}

impl std::fmt::Debug for VsphereConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VsphereConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("http", &self.http)
            .finish()
    }
}

/// The managed objects the driver addresses, from `RetrieveServiceContent`.
#[derive(Debug, Clone)]
struct ServiceContent {
    root_folder: Moref,
    property_collector: Moref,
    session_manager: Moref,
    search_index: Option<Moref>,
    custom_fields_manager: Option<Moref>,
    /// `about.fullName`, e.g. "VMware vCenter Server 8.0.2 build-…".
    full_name: String,
}

/// One object of a PropertyCollector answer: its moref and the properties asked for that it
/// has (a property the server leaves out, or reports in `missingSet`, is simply absent).
#[derive(Debug, Clone)]
pub(crate) struct ObjectContent {
    pub obj: Moref,
    pub props: HashMap<String, Node>,
}

impl ObjectContent {
    /// Reads one `objects` element of a RetrievePropertiesEx answer.
    pub fn from_node(o: &Node) -> Result<ObjectContent, String> {
        let obj = o.child("obj").and_then(Moref::from_node).ok_or("an `objects` entry without an `obj` moref")?;
        let mut props = HashMap::new();
        for p in o.children_named("propSet") {
            let name = p.text_at(&["name"]).ok_or_else(|| format!("a propSet of {} without a name", obj.value))?;
            if let Some(val) = p.child("val") {
                props.insert(name.to_string(), val.clone());
            }
        }
        Ok(ObjectContent { obj, props })
    }

    pub fn text(&self, prop: &str) -> Option<&str> {
        self.props.get(prop).map(Node::value).filter(|t| !t.is_empty())
    }

    pub fn num<T: std::str::FromStr>(&self, prop: &str) -> Option<T> {
        self.text(prop).and_then(|t| t.parse().ok())
    }
}

/// A logged-in connection to a vCenter (or an ESXi host).
pub struct VsphereDriver {
    transport: Transport,
    username: String,
    password: String,
    service: ServiceContent,
}

impl std::fmt::Debug for VsphereDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VsphereDriver")
            .field("endpoint", &self.transport.endpoint)
            .field("username", &self.username)
            .field("server", &self.service.full_name)
            .finish_non_exhaustive()
    }
}

impl VsphereDriver {
    /// Negotiates the API version, reads the service content and logs in.
    ///
    /// Errors: `Config` for a bad URL or CA file, `Unreachable`/`Timeout` when the server
    /// cannot be asked, `Auth` when it refuses the credentials.
    pub fn connect(cfg: VsphereConfig) -> Result<VsphereDriver, PlatformError> {
        if cfg.username.is_empty() || cfg.password.is_empty() {
            return Err(PlatformError::Config(format!("vSphere {}: username and password are required", cfg.url)));
        }
        let transport = Transport::new(&cfg.url, &cfg.http)?;
        let mut trips = 0;
        let version = transport.negotiate_version(&mut trips)?;
        let service = retrieve_service_content(&transport, &mut trips)?;
        let driver = VsphereDriver { transport, username: cfg.username, password: cfg.password, service };
        driver.login(&mut trips)?;
        tracing::info!(
            endpoint = %driver.transport.endpoint,
            version,
            server = %driver.service.full_name,
            user = %driver.username,
            "vSphere session opened"
        );
        Ok(driver)
    }

    /// The vim25 API version in use (e.g. `6.5`).
    pub fn api_version(&self) -> String {
        self.transport.version()
    }

    /// The server's own description (`about.fullName`).
    pub fn server_name(&self) -> &str {
        &self.service.full_name
    }

    fn login(&self, trips: &mut u32) -> Result<(), PlatformError> {
        let params = format!(
            "{}{}{}",
            self.service.session_manager.xml("_this"),
            el("userName", &self.username),
            el("password", &self.password)
        );
        match self.transport.call("Login", &params, trips) {
            Ok(_) => Ok(()),
            Err(CallError::Fault { kind, message, .. }) if kind == "InvalidLogin" || kind == "NoPermission" => {
                Err(PlatformError::Auth {
                    endpoint: self.transport.endpoint.clone(),
                    user: self.username.clone(),
                    detail: if message.is_empty() { kind } else { message },
                })
            }
            Err(e) => Err(self.fault_error("Login", e)),
        }
    }

    /// Calls `method`, logging in again once when the session has expired.
    pub(crate) fn invoke(&self, method: &str, params: &str, trips: &mut u32) -> Result<Node, PlatformError> {
        match self.transport.call(method, params, trips) {
            Err(CallError::Fault { kind, .. }) if kind == "NotAuthenticated" => {
                tracing::info!(endpoint = %self.transport.endpoint, method, "session expired; logging in again");
                self.transport.forget_session();
                self.login(trips)?;
                self.transport.call(method, params, trips).map_err(|e| self.fault_error(method, e))
            }
            other => other.map_err(|e| self.fault_error(method, e)),
        }
    }

    fn fault_error(&self, method: &str, e: CallError) -> PlatformError {
        match fault_to_error(&self.transport.endpoint, method, e) {
            PlatformError::Auth { endpoint, detail, .. } => {
                PlatformError::Auth { endpoint, user: self.username.clone(), detail }
            }
            other => other,
        }
    }

    fn malformed(&self, call: &str, detail: impl Into<String>) -> PlatformError {
        PlatformError::Malformed {
            endpoint: self.transport.endpoint.clone(),
            call: call.to_string(),
            detail: detail.into(),
        }
    }

    /// RetrievePropertiesEx with `specs`, following `token`s through every page.
    ///
    /// Some servers (vcsim among them) answer a PropertyCollector call without a session with
    /// every property in `missingSet` as `NotAuthenticated` instead of a fault; that is an
    /// expired session too, so it gets the same single re-login.
    pub(crate) fn retrieve(&self, specs: &str, trips: &mut u32) -> Result<Vec<ObjectContent>, PlatformError> {
        match self.retrieve_pages(specs, trips)? {
            Some(objects) => Ok(objects),
            None => {
                tracing::info!(endpoint = %self.transport.endpoint, "session expired (properties withheld); new login");
                self.transport.forget_session();
                self.login(trips)?;
                self.retrieve_pages(specs, trips)?.ok_or_else(|| PlatformError::Auth {
                    endpoint: self.transport.endpoint.clone(),
                    user: self.username.clone(),
                    detail: "RetrievePropertiesEx: properties withheld as NotAuthenticated even after logging in again"
                        .into(),
                })
            }
        }
    }

    /// The pages of one retrieval; `None` when the server withheld properties for want of a
    /// session.
    fn retrieve_pages(&self, specs: &str, trips: &mut u32) -> Result<Option<Vec<ObjectContent>>, PlatformError> {
        let pc = self.service.property_collector.xml("_this");
        let params = format!("{pc}{specs}<options><maxObjects>{MAX_OBJECTS_PER_PAGE}</maxObjects></options>");
        let mut answer = self.invoke("RetrievePropertiesEx", &params, trips)?;
        let mut objects = Vec::new();
        let mut method = "RetrievePropertiesEx";
        // No returnval at all means no object matched.
        while let Some(result) = answer.child("returnval") {
            for o in result.children_named("objects") {
                let not_authenticated = o.children_named("missingSet").any(|m| {
                    m.path(&["fault", "fault"]).and_then(|f| f.xsi_type.as_deref()) == Some("NotAuthenticated")
                });
                if not_authenticated {
                    return Ok(None);
                }
                objects.push(ObjectContent::from_node(o).map_err(|detail| self.malformed(method, detail))?);
            }
            let Some(token) = result.text_at(&["token"]) else { break };
            method = "ContinueRetrievePropertiesEx";
            answer = self.invoke(method, &format!("{pc}{}", el("token", token)), trips)?;
        }
        Ok(Some(objects))
    }

    /// Reads `paths` of one object; `NotFound` when it does not exist.
    pub(crate) fn read_object(
        &self,
        obj: &Moref,
        paths: &[&str],
        trips: &mut u32,
    ) -> Result<ObjectContent, PlatformError> {
        let paths: String = paths.iter().map(|p| el("pathSet", p)).collect();
        let specs = format!(
            "<specSet><propSet>{}{paths}</propSet><objectSet>{}<skip>false</skip></objectSet></specSet>",
            el("type", &obj.kind),
            obj.xml("obj")
        );
        let mut objects = self.retrieve(&specs, trips)?;
        match objects.iter().position(|o| o.obj == *obj) {
            Some(i) => Ok(objects.swap_remove(i)),
            None => Err(PlatformError::NotFound {
                endpoint: self.transport.endpoint.clone(),
                what: obj.kind.clone(),
                id: obj.value.clone(),
            }),
        }
    }
}

fn retrieve_service_content(t: &Transport, trips: &mut u32) -> Result<ServiceContent, PlatformError> {
    let call = "RetrieveServiceContent";
    let answer = t
        .call(call, &Moref::new("ServiceInstance", "ServiceInstance").xml("_this"), trips)
        .map_err(|e| fault_to_error(&t.endpoint, call, e))?;
    let rv = answer.child("returnval").ok_or_else(|| PlatformError::Malformed {
        endpoint: t.endpoint.clone(),
        call: call.into(),
        detail: "no returnval".into(),
    })?;
    let need = |name: &str| {
        rv.child(name).and_then(Moref::from_node).ok_or_else(|| PlatformError::Malformed {
            endpoint: t.endpoint.clone(),
            call: call.into(),
            detail: format!("the service content has no {name}"),
        })
    };
    Ok(ServiceContent {
        root_folder: need("rootFolder")?,
        property_collector: need("propertyCollector")?,
        session_manager: need("sessionManager")?,
        search_index: rv.child("searchIndex").and_then(Moref::from_node),
        custom_fields_manager: rv.child("customFieldsManager").and_then(Moref::from_node),
        full_name: rv.text_at(&["about", "fullName"]).unwrap_or("unknown vSphere server").to_string(),
    })
}

/// Turns a failed call into the caller's error: faults keep their vim25 type in the message.
fn fault_to_error(endpoint: &str, method: &str, e: CallError) -> PlatformError {
    match e {
        CallError::Platform(p) => p,
        CallError::Fault { kind, detail, .. } if kind == "ManagedObjectNotFound" => {
            let obj = detail.as_ref().and_then(|d| d.child("obj")).and_then(Moref::from_node);
            PlatformError::NotFound {
                endpoint: endpoint.to_string(),
                what: obj.as_ref().map(|o| o.kind.clone()).unwrap_or_else(|| "managed object".into()),
                id: obj.map(|o| o.value).unwrap_or_default(),
            }
        }
        CallError::Fault { kind, message, .. } if kind == "NotAuthenticated" => PlatformError::Auth {
            endpoint: endpoint.to_string(),
            user: String::new(),
            detail: format!("{method}: the session is not authenticated even after logging in again ({message})"),
        },
        CallError::Fault { kind, message, .. } => PlatformError::Refused {
            endpoint: endpoint.to_string(),
            call: method.to_string(),
            message: if message.is_empty() { kind } else { format!("{message} ({kind})") },
        },
    }
}

impl Hypervisor for VsphereDriver {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Vsphere
    }

    fn endpoint(&self) -> &str {
        &self.transport.endpoint
    }

    fn inventory(&self) -> Result<Inventory, PlatformError> {
        let mut trips = 0;
        let specs = inventory::spec_set(&self.service.root_folder, self.service.custom_fields_manager.as_ref());
        let objects = self.retrieve(&specs, &mut trips)?;
        let (hosts, vms, storage) = inventory::build(&objects);
        tracing::debug!(
            endpoint = %self.transport.endpoint,
            hosts = hosts.len(),
            vms = vms.len(),
            round_trips = trips,
            "vSphere inventory read"
        );
        Ok(Inventory { hosts, vms, storage, round_trips: trips })
    }

    fn power(&self, vm: &str, action: PowerAction) -> Result<Operation, PlatformError> {
        self.power_vm(vm, action)
    }

    fn snapshot_create(&self, vm: &str, name: &str, description: &str) -> Result<Operation, PlatformError> {
        self.create_snapshot(vm, name, description)
    }

    fn snapshot_list(&self, vm: &str) -> Result<Vec<Snapshot>, PlatformError> {
        self.list_snapshots(vm, &mut 0)
    }

    fn snapshot_revert(&self, vm: &str, snapshot: &str) -> Result<Operation, PlatformError> {
        self.revert_snapshot(vm, snapshot)
    }

    fn snapshot_delete(&self, vm: &str, snapshot: &str) -> Result<Operation, PlatformError> {
        self.delete_snapshot(vm, snapshot)
    }

    fn create_instance(&self, spec: &CreateSpec) -> Result<Operation, PlatformError> {
        // A clone takes a guest customization spec, not cloud-init user data.
        spec.refuse_user_data("vsphere")?;
        self.clone_vm(spec)
    }

    fn delete_instance(&self, vm: &str) -> Result<Operation, PlatformError> {
        self.destroy_vm(vm)
    }

    fn poll(&self, op: &Operation) -> Result<Operation, PlatformError> {
        self.poll_operation(op)
    }

    fn close(&self) {
        if !self.transport.has_session() {
            return;
        }
        let mut trips = 0;
        let result = self.transport.call("Logout", &self.service.session_manager.xml("_this"), &mut trips);
        self.transport.forget_session();
        match result {
            Ok(_) => tracing::debug!(endpoint = %self.transport.endpoint, "vSphere session closed"),
            Err(e) => {
                let e = self.fault_error("Logout", e);
                tracing::warn!(
                    endpoint = %self.transport.endpoint,
                    error = %e,
                    "vSphere logout failed; the session will expire on its own"
                );
            }
        }
    }
}

impl Drop for VsphereDriver {
    fn drop(&mut self) {
        self.close();
    }
}

/// Decodes one `RetrievePropertiesEx` answer (HTTP status and body, as a vCenter sent it) into
/// hosts, VMs and storage, the way a sync reads it. For reading captured answers and for the
/// fuzzer: it must reject anything malformed with an error and never panic.
pub fn decode_inventory_answer(status: u16, body: &str) -> Result<crate::hypervisor::Inventory, String> {
    let answer = soap::read_answer("captured", "RetrievePropertiesEx", status, body).map_err(|e| format!("{e:?}"))?;
    let mut objects = Vec::new();
    if let Some(result) = answer.child("returnval") {
        for o in result.children_named("objects") {
            objects.push(ObjectContent::from_node(o)?);
        }
    }
    let (hosts, vms, storage) = inventory::build(&objects);
    Ok(crate::hypervisor::Inventory { hosts, vms, storage, round_trips: 1 })
}
