//! Injected faults (see the module docs of `openstack` for the admin API): a list of active
//! faults, consumed by the service middleware (request faults) and by server/volume actions
//! (`fail_next_action`).

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::http::{ApiError, ApiResult, body_json, reply, token_of};
use super::{Service, Sim};

/// Default delay of a `slow` fault, in seconds.
const DEFAULT_SLOW_SECONDS: f64 = 5.0;

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// 503 with no body.
    Down,
    /// Answer normally after `seconds`.
    Slow,
    /// 200 with a body that is not valid JSON.
    Malformed,
    /// 500 with the service's fault body.
    Error,
    /// The next server create/action (or volume/snapshot/backup create) ends in ERROR.
    FailNextAction,
}

/// Which service a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Identity,
    Compute,
    Volume,
    Image,
    Network,
    All,
}

impl Target {
    fn covers(self, s: Service) -> bool {
        match self {
            Target::All => true,
            Target::Identity => s == Service::Identity,
            Target::Compute => s == Service::Compute,
            Target::Volume => s == Service::Volume,
            Target::Image => s == Service::Image,
            Target::Network => s == Service::Network,
        }
    }
}

/// One active fault, as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    #[serde(default)]
    pub id: u64,
    pub service: Target,
    pub kind: FaultKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// Requests (or actions) left; `None` = until cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

/// The active faults.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    inner: Mutex<(u64, Vec<Fault>)>,
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, Vec<Fault>)> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Consumes one use of the first request fault covering `service`.
    pub(crate) fn take_request_fault(&self, service: Service) -> Option<(FaultKind, f64)> {
        self.take(|f| f.kind != FaultKind::FailNextAction && f.service.covers(service))
            .map(|f| (f.kind, f.seconds.unwrap_or(DEFAULT_SLOW_SECONDS)))
    }

    /// Consumes one `fail_next_action` covering `service`; true if the action must fail.
    pub(crate) fn take_action_failure(&self, service: Service) -> bool {
        self.take(|f| f.kind == FaultKind::FailNextAction && f.service.covers(service)).is_some()
    }

    fn take(&self, pick: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let mut g = self.lock();
        let i = g.1.iter().position(pick)?;
        let f = g.1[i].clone();
        if let Some(n) = g.1[i].count.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                g.1.remove(i);
            }
        }
        Some(f)
    }

    fn add(&self, mut f: Fault) -> Fault {
        let mut g = self.lock();
        g.0 += 1;
        f.id = g.0;
        if f.kind == FaultKind::FailNextAction && f.count.is_none() {
            f.count = Some(1);
        }
        if f.kind == FaultKind::Slow && f.seconds.is_none() {
            f.seconds = Some(DEFAULT_SLOW_SECONDS);
        }
        g.1.push(f.clone());
        f
    }

    fn list(&self) -> Vec<Fault> {
        self.lock().1.clone()
    }

    fn clear(&self) {
        self.lock().1.clear();
    }
}

/// Only the admin may inject faults: a live token with the admin role.
fn require_admin(sim: &Sim, headers: &HeaderMap) -> Result<(), ApiError> {
    match token_of(sim, headers) {
        Some(t) if t.admin => Ok(()),
        Some(_) => Err(ApiError::keystone(StatusCode::FORBIDDEN, "fault injection needs an admin token")),
        None => Err(ApiError::unauthorized()),
    }
}

pub(crate) async fn post(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: axum::body::Bytes) -> ApiResult {
    require_admin(&sim, &headers)?;
    let v: Value = body_json(Service::Identity, &body)?;
    let f: Fault = serde_json::from_value(v).map_err(|e| {
        ApiError::keystone(
            StatusCode::BAD_REQUEST,
            format!(
                "invalid fault: {e}; expected {{\"service\": compute|volume|image|network|identity|all, \"kind\": \
                 down|slow|malformed|error|fail_next_action, \"seconds\"?: number, \"count\"?: number}}"
            ),
        )
    })?;
    if f.seconds.is_some_and(|s| !(0.0..=3600.0).contains(&s)) {
        return Err(ApiError::keystone(StatusCode::BAD_REQUEST, "invalid fault: seconds must be within 0–3600"));
    }
    if f.count == Some(0) {
        return Err(ApiError::keystone(StatusCode::BAD_REQUEST, "invalid fault: count must be at least 1"));
    }
    let f = sim.faults.add(f);
    tracing::info!(service = ?f.service, kind = ?f.kind, count = ?f.count, "openstack simulator fault injected");
    reply(StatusCode::CREATED, json!({ "fault": f }))
}

pub(crate) async fn get(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> ApiResult {
    require_admin(&sim, &headers)?;
    reply(StatusCode::OK, json!({ "faults": sim.faults.list() }))
}

pub(crate) async fn delete(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Result<Response, ApiError> {
    require_admin(&sim, &headers)?;
    sim.faults.clear();
    super::http::empty(StatusCode::NO_CONTENT)
}
