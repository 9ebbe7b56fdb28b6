//! Recovery plans: applying a plan file (checked, versioned, audited) and reading plans back.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use inventory::recovery::{DrCatalog, RecoveryPlan, parse_plan};
use plugins::Hypervisor;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::app::{App, AppError, now_ms};
use crate::store::{Applied, PlanRecord};

/// Longest a plan file may be: a province's plan is a few KiB.
pub const MAX_PLAN_BYTES: usize = 1 << 20;

/// How long reading the DR site's catalog may take before the plan is checked without it.
const CATALOG_DEADLINE: Duration = Duration::from_secs(60);

/// What `plans apply` did.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyOutcome {
    pub name: String,
    pub version: i64,
    /// True when the newest stored version already had this text.
    pub unchanged: bool,
    /// Priority groups in order: `{priority, systems}`.
    pub groups: Vec<serde_json::Value>,
    /// What could not be checked (the DR site's images and networks when it did not answer).
    pub warnings: Vec<String>,
}

/// What the DR site has, read from its OpenStack platform; unknown parts stay `None` with a
/// warning saying why. VMs discovered at any site count as their system's workloads.
pub async fn dr_catalog(app: &Arc<App>) -> (DrCatalog, Vec<String>) {
    let mut catalog = DrCatalog::default();
    let mut warnings = Vec::new();
    if let Ok(vms) = app.store.list_vms().await {
        for vm in vms {
            if let Some(system) = vm.system {
                catalog.discovered_vms.entry(system).or_insert_with(BTreeSet::new).insert(vm.info.name);
            }
        }
    }
    let dr_platform = app
        .inventory
        .as_deref()
        .and_then(|inv| inv.sites.iter().find(|s| s.name == "dr").map(|s| s.platform.name.clone()));
    let conn = dr_platform.as_deref().and_then(|p| app.platforms.connection(p)).cloned();
    let Some(conn) = conn.filter(|c| c.kind == plugins::PlatformKind::Openstack) else {
        warnings.push(
            "no OpenStack platform is configured for the DR site: its images and networks were not checked".into(),
        );
        return (catalog, warnings);
    };
    let name = conn.name.clone();
    let job = tokio::task::spawn_blocking(move || {
        let driver = conn.connect_openstack()?;
        let read = (|| {
            let images: BTreeSet<String> = driver.images()?.into_iter().filter_map(|i| i.name).collect();
            let networks: BTreeSet<String> = driver.networks()?.into_iter().map(|n| n.name).collect();
            Ok::<_, plugins::PlatformError>((images, networks))
        })();
        driver.close();
        read
    });
    match tokio::time::timeout(CATALOG_DEADLINE, job).await {
        Ok(Ok(Ok((images, networks)))) => {
            catalog.images = Some(images);
            catalog.networks = Some(networks);
        }
        Ok(Ok(Err(e))) => warnings
            .push(format!("the DR site's catalog could not be read ({e}): images and networks were not checked")),
        Ok(Err(e)) => warnings.push(format!("platform {name}: reading the catalog failed unexpectedly ({e})")),
        Err(_) => warnings.push(format!(
            "platform {name}: no answer within {} s; images and networks were not checked",
            CATALOG_DEADLINE.as_secs()
        )),
    }
    (catalog, warnings)
}

/// Checks and stores a plan's text as applied by `user` from the file `origin`.
///
/// # Errors
/// `BadRequest` with every problem as `origin:line:column: field: message`, one per line.
pub async fn apply(app: &Arc<App>, origin: &str, text: &str, user: &str) -> Result<ApplyOutcome, AppError> {
    if text.len() > MAX_PLAN_BYTES {
        return Err(AppError::TooLarge(format!("{origin}: a plan is at most {MAX_PLAN_BYTES} bytes")));
    }
    let inv = inventory_of(app)?;
    let (catalog, warnings) = dr_catalog(app).await;
    let plan = parse_plan(text, origin, &inv, &catalog).map_err(|e| AppError::BadRequest(every_problem(&e, origin)))?;
    refresh_schedules(&plan, origin)?;
    let record = PlanRecord {
        name: plan.name.clone(),
        version: 0,
        text: text.to_string(),
        digest: hex::encode(Sha256::digest(text.as_bytes())),
        origin: origin.to_string(),
        applied_by: user.to_string(),
        applied_at: now_ms(),
    };
    let applied = app.store.apply_plan(&record).await?;
    let (version, unchanged) = match applied {
        Applied::New(v) => (v, false),
        Applied::Unchanged(v) => (v, true),
    };
    if !unchanged {
        app.audit(
            user,
            "plan.apply",
            Some(&plan.name),
            json!({"version": version, "origin": origin, "digest": record.digest}),
        )
        .await;
    }
    Ok(ApplyOutcome { name: plan.name.clone(), version, unchanged, groups: groups_json(&plan, &inv), warnings })
}

/// Image refresh schedules the controller's cron reader accepts (the file check only sees
/// their shape: `61 * * * *` passes it).
fn refresh_schedules(plan: &RecoveryPlan, origin: &str) -> Result<(), AppError> {
    let mut problems = Vec::new();
    for (i, s) in plan.systems.iter().enumerate() {
        for (j, w) in s.recover.iter().enumerate() {
            if let Some(r) = &w.refresh
                && let Err(e) = crate::backup::plans::parse_cron(&r.schedule)
            {
                problems.push(format!("{origin}: systems[{i}].recover[{j}].refresh.schedule: `{}`: {e}", r.schedule));
            }
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(AppError::BadRequest(problems.join("\n"))) }
}

/// A stored plan (its newest version unless `version`), read again against today's
/// inventory.
///
/// # Errors
/// `NotFound` for an unknown plan or version; `Conflict` when the inventory changed so that
/// the plan no longer holds (the message says where).
pub async fn load(app: &App, name: &str, version: Option<i64>) -> Result<(PlanRecord, RecoveryPlan), AppError> {
    let Some(record) = app.store.plan(name, version).await? else {
        let known: Vec<String> = app.store.plans().await?.into_iter().map(|p| p.name).collect();
        return Err(AppError::NotFound(match (version, known.is_empty()) {
            (Some(v), _) => format!("recovery plan {name} has no version {v}"),
            (None, true) => format!("no recovery plan named {name}; no recovery plan has been applied"),
            (None, false) => format!("no recovery plan named {name} (plans: {})", known.join(", ")),
        }));
    };
    let inv = inventory_of(app)?;
    let origin = format!("{name} v{} (from {})", record.version, record.origin);
    let plan = parse_plan(&record.text, &origin, &inv, &DrCatalog::default()).map_err(|e| {
        AppError::Conflict(format!(
            "recovery plan {name} no longer fits the inventory; apply a corrected plan:\n{}",
            every_problem(&e, &origin)
        ))
    })?;
    Ok((record, plan))
}

/// `{priority, systems}` per group, in order.
pub fn groups_json(plan: &RecoveryPlan, inv: &inventory::Inventory) -> Vec<serde_json::Value> {
    plan.groups(inv)
        .into_iter()
        .map(|(p, systems)| json!({"priority": p.get(), "systems": systems.iter().map(|s| s.name.clone()).collect::<Vec<_>>()}))
        .collect()
}

/// Each system's priority in the plan, by name (for DR headroom by plan).
pub fn priorities(plan: &RecoveryPlan, inv: &inventory::Inventory) -> BTreeMap<String, u8> {
    plan.systems.iter().map(|s| (s.name.clone(), plan.priority_of(s, inv).get())).collect()
}

fn inventory_of(app: &App) -> Result<Arc<inventory::Inventory>, AppError> {
    app.inventory.clone().ok_or_else(|| {
        AppError::Conflict("the controller runs without an inventory; recovery plans name its systems".into())
    })
}

/// Every problem of a refused plan, one `origin:line:column: field: message` per line.
fn every_problem(e: &inventory::InventoryError, origin: &str) -> String {
    let all = e.diagnostics();
    if all.is_empty() {
        return e.to_string();
    }
    all.iter().map(|d| format!("{origin}:{d}")).collect::<Vec<_>>().join("\n")
}
