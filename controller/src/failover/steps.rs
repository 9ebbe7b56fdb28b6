//! The steps of a run, computed once from the plan and the mode when the run is created (and
//! stored with it, so a resumed run follows the plan it started with). Pure.
//!
//! Every step has a key that is unique in its run and names what it acts on
//! (`dr.boot:qlvbdh-app-01`); the executor makes each step idempotent by that key (a boot looks
//! for the instance it names before creating one, a DNS switch replaces a record set), so a
//! step interrupted by a controller crash can run again.

use std::time::Duration;

use inventory::Inventory;
use inventory::recovery::{PromptPoint, RecoveryMethod, RecoveryPlan};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How a run treats production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Boot in the isolated test network, switch only the test zone, clean up and verify the
    /// clean-up; production is never touched.
    Test,
    /// Final backup, power off at the DC, recover at DR.
    Planned,
    /// The DC is unreachable: skip DC steps, use the newest verified restore point.
    Disaster,
    /// Back from DR to the DC, reversing the last planned or disaster run of the plan: a
    /// final backup at DR, restored into the DC machines in place, the records switched back
    /// to what they held before, the DR instances removed.
    Failback,
}

impl Mode {
    pub fn parse(text: &str) -> Result<Mode, String> {
        match text {
            "test" => Ok(Mode::Test),
            "planned" => Ok(Mode::Planned),
            "disaster" => Ok(Mode::Disaster),
            "failback" => Ok(Mode::Failback),
            other => Err(format!("mode {other:?} is not test, planned, disaster or failback")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Test => "test",
            Mode::Planned => "planned",
            Mode::Disaster => "disaster",
            Mode::Failback => "failback",
        }
    }

    /// Whether a second operator must approve before anything happens.
    pub fn needs_approval(self) -> bool {
        !matches!(self, Mode::Test)
    }
}

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StepKind {
    /// A pre-check: nothing changes.
    #[serde(rename = "precheck")]
    Precheck,
    /// A last backup of the system at the DC (planned mode).
    #[serde(rename = "backup.final")]
    FinalBackup,
    /// Power off the workload's VM at the DC (planned mode).
    #[serde(rename = "dc.power_off")]
    DcPowerOff,
    /// Boot the DR instance.
    #[serde(rename = "dr.boot")]
    DrBoot,
    /// Restore the system's restore point into the instance through its agent.
    #[serde(rename = "dr.restore")]
    DrRestore,
    /// Failback: restore the final backup taken at DR into the DC machine, in place.
    #[serde(rename = "dc.restore")]
    DcRestore,
    /// Failback: remove the DR instance once the system serves from the DC again.
    #[serde(rename = "dr.retire")]
    DrRetire,
    /// Record the instance's DR address (what DNS will point at).
    #[serde(rename = "readdress")]
    Readdress,
    /// Point the system's records at DR (RFC 2136 with TSIG).
    #[serde(rename = "dns.switch")]
    DnsSwitch,
    /// Check the system serves.
    #[serde(rename = "probe")]
    Probe,
    /// A person confirms.
    #[serde(rename = "prompt")]
    Prompt,
    /// A command the recovered machine's agent runs (the plan's `tasks`).
    #[serde(rename = "agent.task")]
    AgentTask,
    /// Remove what a test run made (instances, test records).
    #[serde(rename = "cleanup")]
    Cleanup,
    /// Re-inventory the DR site and the test zone: nothing of the run may be left.
    #[serde(rename = "cleanup.verify")]
    CleanupVerify,
}

impl StepKind {
    /// Whether the step restores data (its output has the restore point's `rpo_seconds`).
    pub fn is_restore(self) -> bool {
        matches!(self, StepKind::DrRestore | StepKind::DcRestore)
    }

    /// Whether the step's output may carry an `rpo_seconds`: a restore, or the boot of an
    /// `image` workload from a refreshed image (the export's age).
    pub fn measures_rpo(self) -> bool {
        self.is_restore() || self == StepKind::DrBoot
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Precheck => "precheck",
            StepKind::FinalBackup => "backup.final",
            StepKind::DcPowerOff => "dc.power_off",
            StepKind::DrBoot => "dr.boot",
            StepKind::DrRestore => "dr.restore",
            StepKind::DcRestore => "dc.restore",
            StepKind::DrRetire => "dr.retire",
            StepKind::Readdress => "readdress",
            StepKind::DnsSwitch => "dns.switch",
            StepKind::Probe => "probe",
            StepKind::Prompt => "prompt",
            StepKind::AgentTask => "agent.task",
            StepKind::Cleanup => "cleanup",
            StepKind::CleanupVerify => "cleanup.verify",
        }
    }
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSpec {
    pub key: String,
    pub kind: StepKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// The priority group (0 for pre-checks, 9 for clean-up).
    pub group: u8,
    /// Steps that must have succeeded first (for clean-up steps: ended, however).
    pub after: Vec<String>,
    /// Runs whatever happened before it, once the other steps have stopped.
    #[serde(default)]
    pub cleanup: bool,
    /// Safe to run again after an interruption (every step of the library is, by its key).
    pub idempotent: bool,
    pub timeout_s: u64,
    /// Further attempts after a failure, with backoff.
    pub retries: u32,
    /// What the step needs beyond its kind (the probe, the prompt's text, the records).
    #[serde(default)]
    pub params: Value,
}

impl StepSpec {
    fn new(key: String, kind: StepKind, group: u8, after: Vec<String>) -> StepSpec {
        let (timeout, retries) = defaults(kind);
        StepSpec {
            key,
            kind,
            system: None,
            workload: None,
            group,
            after,
            cleanup: matches!(kind, StepKind::Cleanup | StepKind::CleanupVerify),
            idempotent: true,
            timeout_s: timeout.as_secs(),
            retries,
            params: Value::Null,
        }
    }

    fn of_system(mut self, system: &str) -> StepSpec {
        self.system = Some(system.to_string());
        self
    }

    fn of_workload(mut self, workload: &str) -> StepSpec {
        self.workload = Some(workload.to_string());
        self
    }

    fn with(mut self, params: Value) -> StepSpec {
        self.params = params;
        self
    }
}

/// Each kind's timeout and retries.
fn defaults(kind: StepKind) -> (Duration, u32) {
    let m = |n: u64| Duration::from_secs(60 * n);
    match kind {
        StepKind::Precheck => (m(2), 1),
        StepKind::FinalBackup => (m(60), 1),
        StepKind::DcPowerOff => (m(10), 2),
        StepKind::DrBoot => (m(15), 2),
        StepKind::DrRestore | StepKind::DcRestore => (m(120), 1),
        StepKind::DrRetire => (m(15), 3),
        StepKind::Readdress => (m(5), 3),
        StepKind::DnsSwitch => (m(2), 3),
        StepKind::Probe => (m(5), 0),
        // The agent runs a task id once: trying again would only read the same result.
        StepKind::AgentTask => (m(5), 0),
        // A person answers: a day, and no retry (the run waits).
        StepKind::Prompt => (m(24 * 60), 0),
        StepKind::Cleanup => (m(15), 3),
        StepKind::CleanupVerify => (m(5), 2),
    }
}

/// The pre-checks every run starts with.
pub const PRECHECKS: &[(&str, &str)] = &[
    ("precheck.dr_hosts", "DR hosts connected"),
    ("precheck.dr_catalog", "DR images and networks present"),
    ("precheck.headroom", "DR headroom for the plan"),
    ("precheck.restore_points", "newest verified restore point (or refreshed image) within RPO"),
];

/// The pre-checks of a failback.
pub const FAILBACK_PRECHECKS: &[(&str, &str)] = &[
    ("precheck.failback", "the plan's systems run at DR: the run to reverse, its instances and their agents"),
    ("precheck.dc_agents", "the DC machines are up and their agents connected"),
];

/// The steps of `plan` in `mode`.
pub fn build(plan: &RecoveryPlan, inv: &Inventory, mode: Mode) -> Vec<StepSpec> {
    if mode == Mode::Failback {
        return build_failback(plan, inv);
    }
    let mut out: Vec<StepSpec> = Vec::new();
    for (key, what) in PRECHECKS {
        out.push(StepSpec::new(key.to_string(), StepKind::Precheck, 0, Vec::new()).with(json!({"check": what})));
    }
    if plan.dns.is_some() {
        out.push(
            StepSpec::new("precheck.dns".into(), StepKind::Precheck, 0, Vec::new())
                .with(json!({"check": "DNS server reachable, its zones served"})),
        );
    }
    if mode == Mode::Planned {
        out.push(
            StepSpec::new("precheck.dc".into(), StepKind::Precheck, 0, Vec::new())
                .with(json!({"check": "DC platform reachable"})),
        );
    }
    let mut previous: Vec<String> = out.iter().map(|s| s.key.clone()).collect();
    let mut system_ends: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for (priority, systems) in plan.groups(inv) {
        let group = priority.get();
        let mut group_ends = Vec::new();
        for sys in systems {
            let name = sys.name.as_str();
            let mut start: Vec<String> = previous.clone();
            for d in &sys.depends_on {
                start.extend(system_ends.get(d).cloned().unwrap_or_default());
            }
            let mut ready = start.clone();
            ready = prompts(&mut out, sys, PromptPoint::Start, group, ready);
            if mode == Mode::Planned && sys.recover.iter().any(|w| w.method == RecoveryMethod::Restore) {
                let key = format!("backup.final:{name}");
                out.push(StepSpec::new(key.clone(), StepKind::FinalBackup, group, ready.clone()).of_system(name));
                ready = vec![key];
            }
            let mut up = Vec::new();
            for w in &sys.recover {
                let wl = w.workload.as_str();
                let mut after = ready.clone();
                if mode == Mode::Planned {
                    let key = format!("dc.power_off:{wl}");
                    out.push(
                        StepSpec::new(key.clone(), StepKind::DcPowerOff, group, after).of_system(name).of_workload(wl),
                    );
                    after = vec![key];
                }
                let boot = format!("dr.boot:{wl}");
                out.push(
                    StepSpec::new(boot.clone(), StepKind::DrBoot, group, after)
                        .of_system(name)
                        .of_workload(wl)
                        .with(json!({"image": w.image, "network": w.network, "method": w.method.as_str()})),
                );
                let mut last = boot;
                if w.method == RecoveryMethod::Restore {
                    let key = format!("dr.restore:{wl}");
                    out.push(
                        StepSpec::new(key.clone(), StepKind::DrRestore, group, vec![last])
                            .of_system(name)
                            .of_workload(wl),
                    );
                    last = key;
                }
                let key = format!("readdress:{wl}");
                out.push(
                    StepSpec::new(key.clone(), StepKind::Readdress, group, vec![last]).of_system(name).of_workload(wl),
                );
                up.push(key);
            }
            let probed = switch_and_probe(&mut out, sys, group, up);
            let ends = prompts(&mut out, sys, PromptPoint::End, group, probed);
            system_ends.insert(name.to_string(), ends.clone());
            group_ends.extend(ends);
        }
        previous = group_ends;
    }
    if mode == Mode::Test {
        let mut cleanups = Vec::new();
        for sys in &plan.systems {
            for w in &sys.recover {
                let key = format!("cleanup:{}", w.workload);
                out.push(
                    StepSpec::new(key.clone(), StepKind::Cleanup, 9, vec![format!("dr.boot:{}", w.workload)])
                        .of_system(&sys.name)
                        .of_workload(&w.workload),
                );
                cleanups.push(key);
            }
            if !sys.dns.is_empty() {
                let key = format!("cleanup.dns:{}", sys.name);
                let records: Vec<Value> =
                    sys.dns.iter().map(|r| json!({"name": r.name, "type": r.rtype.as_str()})).collect();
                out.push(
                    StepSpec::new(key.clone(), StepKind::Cleanup, 9, vec![format!("dns.switch:{}", sys.name)])
                        .of_system(&sys.name)
                        .with(json!({"records": records})),
                );
                cleanups.push(key);
            }
        }
        out.push(StepSpec::new("cleanup.verify".into(), StepKind::CleanupVerify, 9, cleanups));
    }
    out
}

/// A failback, priority group by group (P1 first, as the failover did): per system a final
/// backup at DR, each restore-method workload's data restored in place on its DC machine, the
/// records switched back, the probes, then the DR instances removed. Image-method workloads
/// kept their DC VM's disks: only their records move back.
fn build_failback(plan: &RecoveryPlan, inv: &Inventory) -> Vec<StepSpec> {
    let mut out: Vec<StepSpec> = Vec::new();
    for (key, what) in FAILBACK_PRECHECKS {
        out.push(StepSpec::new(key.to_string(), StepKind::Precheck, 0, Vec::new()).with(json!({"check": what})));
    }
    if plan.dns.is_some() {
        out.push(
            StepSpec::new("precheck.dns".into(), StepKind::Precheck, 0, Vec::new())
                .with(json!({"check": "DNS server reachable, its zones served"})),
        );
    }
    let mut previous: Vec<String> = out.iter().map(|s| s.key.clone()).collect();
    for (priority, systems) in plan.groups(inv) {
        let group = priority.get();
        let mut group_ends = Vec::new();
        for sys in systems {
            let name = sys.name.as_str();
            let mut ready = prompts(&mut out, sys, PromptPoint::Start, group, previous.clone());
            let restored: Vec<&str> = sys
                .recover
                .iter()
                .filter(|w| w.method == RecoveryMethod::Restore)
                .map(|w| w.workload.as_str())
                .collect();
            if !restored.is_empty() {
                let key = format!("backup.final:{name}");
                out.push(StepSpec::new(key.clone(), StepKind::FinalBackup, group, ready).of_system(name));
                let mut back = Vec::new();
                for wl in restored {
                    let k = format!("dc.restore:{wl}");
                    out.push(
                        StepSpec::new(k.clone(), StepKind::DcRestore, group, vec![key.clone()])
                            .of_system(name)
                            .of_workload(wl),
                    );
                    back.push(k);
                }
                ready = back;
            }
            let probed = switch_and_probe(&mut out, sys, group, ready);
            let mut ends = prompts(&mut out, sys, PromptPoint::End, group, probed);
            let mut retired = Vec::new();
            for w in &sys.recover {
                let key = format!("dr.retire:{}", w.workload);
                out.push(
                    StepSpec::new(key.clone(), StepKind::DrRetire, group, ends.clone())
                        .of_system(name)
                        .of_workload(&w.workload),
                );
                retired.push(key);
            }
            if !retired.is_empty() {
                ends = retired;
            }
            group_ends.extend(ends);
        }
        previous = group_ends;
    }
    out
}

/// From the system's machines being up (`after`): its `before_dns` tasks and prompts, the
/// switch of its records, its probes, its `end` tasks; returns what comes next waits for.
fn switch_and_probe(
    out: &mut Vec<StepSpec>,
    sys: &inventory::recovery::PlanSystem,
    group: u8,
    after: Vec<String>,
) -> Vec<String> {
    let name = sys.name.as_str();
    let ready = tasks(out, sys, PromptPoint::BeforeDns, group, after);
    let mut ready = prompts(out, sys, PromptPoint::BeforeDns, group, ready);
    if !sys.dns.is_empty() {
        let key = format!("dns.switch:{name}");
        let records: Vec<Value> = sys.dns.iter().map(|r| json!({"name": r.name, "type": r.rtype.as_str()})).collect();
        out.push(
            StepSpec::new(key.clone(), StepKind::DnsSwitch, group, ready)
                .of_system(name)
                .with(json!({"records": records})),
        );
        ready = vec![key];
    }
    let mut probed = Vec::new();
    for (j, p) in sys.probes.iter().enumerate() {
        let key = format!("probe:{name}:{j}");
        let mut spec = StepSpec::new(key.clone(), StepKind::Probe, group, ready.clone())
            .of_system(name)
            .with(serde_json::to_value(p).unwrap_or(Value::Null));
        spec.timeout_s = p.timeout().as_secs();
        out.push(spec);
        probed.push(key);
    }
    if probed.is_empty() {
        probed = ready;
    }
    tasks(out, sys, PromptPoint::End, group, probed)
}

/// Adds `specs` one after another, the first after `after`; returns what the next step
/// waits for (`after` itself when there are none).
fn chain(out: &mut Vec<StepSpec>, after: Vec<String>, specs: impl IntoIterator<Item = StepSpec>) -> Vec<String> {
    let mut ready = after;
    for mut spec in specs {
        spec.after = std::mem::replace(&mut ready, vec![spec.key.clone()]);
        out.push(spec);
    }
    ready
}

/// Adds the system's agent tasks at `at` in a chain after `after`.
fn tasks(
    out: &mut Vec<StepSpec>,
    sys: &inventory::recovery::PlanSystem,
    at: PromptPoint,
    group: u8,
    after: Vec<String>,
) -> Vec<String> {
    let specs = sys.tasks.iter().enumerate().filter(|(_, t)| t.at == at).map(|(i, t)| {
        let wl = t.workload.clone().or_else(|| sys.recover.first().map(|w| w.workload.clone())).unwrap_or_default();
        let mut spec = StepSpec::new(format!("agent.task:{}:{i}", sys.name), StepKind::AgentTask, group, Vec::new())
            .of_system(&sys.name)
            .of_workload(&wl)
            .with(json!({"command": t.command, "timeout_s": t.timeout().as_secs()}));
        // The command's own time, and a minute to reach the agent and hear back.
        spec.timeout_s = t.timeout().as_secs() + 60;
        spec
    });
    chain(out, after, specs)
}

/// Adds the system's prompts at `at` in a chain after `after`.
fn prompts(
    out: &mut Vec<StepSpec>,
    sys: &inventory::recovery::PlanSystem,
    at: PromptPoint,
    group: u8,
    after: Vec<String>,
) -> Vec<String> {
    let specs = sys.prompts.iter().enumerate().filter(|(_, p)| p.at == at).map(|(i, p)| {
        StepSpec::new(format!("prompt:{}:{i}", sys.name), StepKind::Prompt, group, Vec::new())
            .of_system(&sys.name)
            .with(json!({"text_vi": p.text_vi, "text_en": p.text_en}))
    });
    chain(out, after, specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camau() -> (RecoveryPlan, Inventory) {
        let inv =
            inventory::parse_str(include_str!("../../../inventory/examples/camau.yaml"), "camau.yaml").expect("inv");
        let plan = inventory::recovery::parse_plan(
            include_str!("../../../inventory/examples/camau-all.yaml"),
            "camau-all.yaml",
            &inv,
            &Default::default(),
        )
        .expect("plan");
        (plan, inv)
    }

    #[test]
    fn keys_are_unique_and_every_dependency_names_an_earlier_step() {
        let (plan, inv) = camau();
        for mode in [Mode::Test, Mode::Planned, Mode::Disaster, Mode::Failback] {
            let steps = build(&plan, &inv, mode);
            let mut seen = std::collections::HashSet::new();
            for s in &steps {
                for a in &s.after {
                    assert!(
                        seen.contains(a.as_str()),
                        "{mode:?}: {} waits for {a}, which comes later or not at all",
                        s.key
                    );
                }
                assert!(seen.insert(s.key.as_str()), "{mode:?}: {} twice", s.key);
            }
        }
    }

    #[test]
    fn test_mode_never_touches_the_dc_and_cleans_up_every_instance_and_record() {
        let (plan, inv) = camau();
        let steps = build(&plan, &inv, Mode::Test);
        assert!(!steps.iter().any(|s| matches!(s.kind, StepKind::DcPowerOff | StepKind::FinalBackup)));
        let boots = steps.iter().filter(|s| s.kind == StepKind::DrBoot).count();
        let cleaned = steps.iter().filter(|s| s.kind == StepKind::Cleanup && s.workload.is_some()).count();
        assert_eq!((boots, cleaned), (6, 6));
        assert_eq!(steps.iter().filter(|s| s.key.starts_with("cleanup.dns:")).count(), 6);
        assert_eq!(steps.last().map(|s| s.kind), Some(StepKind::CleanupVerify));
    }

    #[test]
    fn planned_mode_backs_up_and_powers_off_before_booting_at_dr() {
        let (plan, inv) = camau();
        let steps = build(&plan, &inv, Mode::Planned);
        let boot = steps.iter().find(|s| s.key == "dr.boot:qlvbdh-app-01").expect("boot");
        assert_eq!(boot.after, vec!["dc.power_off:qlvbdh-app-01".to_string()]);
        let off = steps.iter().find(|s| s.key == "dc.power_off:qlvbdh-app-01").expect("off");
        assert_eq!(off.after, vec!["backup.final:qlvbdh".to_string()]);
        assert!(!steps.iter().any(|s| s.cleanup), "nothing is cleaned up after a real failover");
        let disaster = build(&plan, &inv, Mode::Disaster);
        assert!(!disaster.iter().any(|s| matches!(s.kind, StepKind::DcPowerOff | StepKind::FinalBackup)));
    }

    #[test]
    fn a_group_starts_after_the_one_before_and_a_system_after_its_dependencies() {
        let (plan, inv) = camau();
        let steps = build(&plan, &inv, Mode::Test);
        let boot = |wl: &str| steps.iter().find(|s| s.key == format!("dr.boot:{wl}")).expect("boot").after.clone();
        // web-portal (P2) waits for every P1 system's end; qlvbdh (P1) waits for e-mail.
        let web = boot("web-portal-app-01");
        for k in ["probe:email:0", "probe:qlvbdh:0", "probe:dvc-portal:0"] {
            assert!(web.iter().any(|a| a == k), "{web:?} lacks {k}");
        }
        assert!(boot("qlvbdh-app-01").iter().any(|a| a == "probe:email:0"));
        assert!(!boot("email-app-01").iter().any(|a| a.starts_with("probe:")));
    }

    #[test]
    fn failback_backs_up_at_dr_restores_in_place_switches_back_and_then_retires_the_instance() {
        let (plan, inv) = camau();
        let steps = build(&plan, &inv, Mode::Failback);
        let get = |k: &str| steps.iter().find(|s| s.key == k).unwrap_or_else(|| panic!("no step {k}"));
        assert_eq!(get("dc.restore:qlvbdh-app-01").after, vec!["backup.final:qlvbdh".to_string()]);
        // The shipped plan's task (the service answers on the machine) comes between.
        assert_eq!(get("agent.task:qlvbdh:0").after, vec!["dc.restore:qlvbdh-app-01".to_string()]);
        assert_eq!(get("dns.switch:qlvbdh").after, vec!["agent.task:qlvbdh:0".to_string()]);
        assert_eq!(get("dns.switch:email").after, vec!["dc.restore:email-app-01".to_string()]);
        assert_eq!(get("dr.retire:qlvbdh-app-01").after, vec!["probe:qlvbdh:0".to_string()]);
        assert!(
            !steps.iter().any(|s| matches!(s.kind, StepKind::DrBoot | StepKind::DrRestore | StepKind::DcPowerOff)),
            "a failback boots nothing at DR"
        );
        assert!(steps.iter().any(|s| s.key == "precheck.failback"));
        assert!(Mode::Failback.needs_approval());
        assert_eq!(Mode::parse("failback"), Ok(Mode::Failback));
    }

    #[test]
    fn a_plan_task_runs_after_the_restore_and_before_the_switch_or_after_the_probes() {
        let (mut plan, inv) = camau();
        let q = plan.systems.iter_mut().find(|s| s.name == "qlvbdh").expect("qlvbdh");
        q.tasks = vec![
            inventory::recovery::AgentTask {
                workload: None,
                command: vec!["true".into()],
                at: PromptPoint::BeforeDns,
                timeout: None,
            },
            inventory::recovery::AgentTask {
                workload: None,
                command: vec!["true".into()],
                at: PromptPoint::End,
                timeout: Some(Duration::from_secs(30)),
            },
        ];
        for mode in [Mode::Test, Mode::Failback] {
            let steps = build(&plan, &inv, mode);
            let get = |k: &str| steps.iter().find(|s| s.key == k).unwrap_or_else(|| panic!("{mode:?}: no step {k}"));
            let before = get("agent.task:qlvbdh:0");
            let restored = if mode == Mode::Test { "readdress:qlvbdh-app-01" } else { "dc.restore:qlvbdh-app-01" };
            assert_eq!(before.after, vec![restored.to_string()], "{mode:?}");
            assert_eq!(get("dns.switch:qlvbdh").after, vec!["agent.task:qlvbdh:0".to_string()], "{mode:?}");
            let end = get("agent.task:qlvbdh:1");
            assert_eq!(
                (end.after.clone(), end.params["timeout_s"].as_u64()),
                (vec!["probe:qlvbdh:0".to_string()], Some(30)),
                "{mode:?}"
            );
            assert_eq!(end.workload.as_deref(), Some("qlvbdh-app-01"));
        }
    }
}
