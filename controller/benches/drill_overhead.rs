//! The controller's own work per drill step, without the platforms, agents or probes it waits
//! on: each wake-up of a run's driver reads the run and its steps, runs the transition
//! function over every step, and writes each started step's start and, once it ends, its
//! result (SQLite, WAL, synchronous as the controller runs it). Steps here end at once, so
//! all the time measured is the controller's.
//!
//! `cargo bench -p mangrove-controller --bench drill_overhead` prints the time per step for
//! the shipped `camau-all` plan (49 steps in test mode). Goal: at most 50 ms per step.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use controller::failover::steps::{self, Mode};
use controller::failover::workflow::{self, RunState, StepState, StepStatus};
use controller::store::{DrillRun, DrillStore, SqliteStore, StateChange, StepRecord};

const RUNS: usize = 30;

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let inv =
        inventory::parse_str(include_str!("../../inventory/examples/camau.yaml"), "camau.yaml").expect("inventory");
    let plan = inventory::recovery::parse_plan(
        include_str!("../../inventory/examples/camau-all.yaml"),
        "camau-all.yaml",
        &inv,
        &Default::default(),
    )
    .expect("plan");
    let specs = steps::build(&plan, &inv, Mode::Test);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = rt.block_on(SqliteStore::open(&dir.path().join("bench.db"))).expect("store");
    let mut per_step = Vec::new();
    for i in 0..RUNS {
        let id = format!("d-bench{i}");
        let run = DrillRun {
            id: id.clone(),
            plan: "camau-all".into(),
            plan_version: 1,
            mode: "test".into(),
            state: "running".into(),
            started_by: "bench".into(),
            approved_by: None,
            created_at: 0,
            started_at: Some(0),
            finished_at: None,
            steps: serde_json::to_value(&specs).expect("specs"),
            systems: serde_json::json!({"systems": []}),
            notes: serde_json::json!([]),
            error: None,
        };
        rt.block_on(store.insert_drill(&run, None)).expect("insert");
        let started = Instant::now();
        let steps_run = rt.block_on(drive(&store, &id, &specs));
        per_step.push(started.elapsed() / steps_run);
    }
    per_step.sort();
    let mean = per_step.iter().sum::<Duration>() / per_step.len() as u32;
    println!(
        "drill step overhead over {RUNS} runs of camau-all ({} steps): mean {:.2} ms, median {:.2} ms, worst {:.2} ms per step (goal ≤ 50 ms)",
        specs.len(),
        ms(mean),
        ms(per_step[per_step.len() / 2]),
        ms(per_step[per_step.len() - 1]),
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn status_of(r: &StepRecord) -> StepStatus {
    StepStatus {
        state: StepState::parse(&r.state).unwrap_or(StepState::Pending),
        attempts: r.attempts as u32,
        not_before: None,
    }
}

/// The driver's loop, as `failover::runs` runs it, with steps that end at once.
async fn drive(store: &SqliteStore, id: &str, specs: &[steps::StepSpec]) -> u32 {
    let mut ran = 0;
    loop {
        let run = store.drill(id).await.expect("run").expect("exists");
        let state = RunState::parse(&run.state).expect("state");
        let records = store.drill_steps(id).await.expect("steps");
        let status: HashMap<String, StepStatus> = records.iter().map(|r| (r.key.clone(), status_of(r))).collect();
        let d = workflow::decide(state, specs, &status, 0);
        for key in &d.skip {
            let r = record(id, key, "skipped", 0);
            store.put_drill_step(&r).await.expect("skip");
        }
        if let Some((end, _)) = d.finish {
            let change =
                StateChange { from: &["running"], to: end.as_str(), finished_at: Some(1), ..Default::default() };
            store.change_drill_state(id, &change).await.expect("finish");
            return ran.max(1);
        }
        for key in &d.start {
            store.put_drill_step(&record(id, key, "running", 1)).await.expect("start");
            // What a step reads before it acts: the results before it.
            let _done = store.drill_steps(id).await.expect("done");
            store.put_drill_step(&record(id, key, "succeeded", 1)).await.expect("result");
            ran += 1;
        }
    }
}

fn record(run: &str, key: &str, state: &str, attempts: i64) -> StepRecord {
    StepRecord {
        run: run.into(),
        key: key.into(),
        state: state.into(),
        attempts,
        started_at: Some(0),
        finished_at: Some(0),
        not_before: None,
        result: Some(serde_json::json!({"ok": true})),
        error: None,
    }
}
