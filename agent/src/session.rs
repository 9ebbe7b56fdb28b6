//! `mangrove-agent run`: produce reports into the outbox on timers, and keep one session with
//! the controller that sends them in order and deletes each once acknowledged.
//!
//! Producers (heartbeats, fact snapshots, task results) never wait for the network: they
//! write to the outbox, so nothing is lost while the controller is away. The session replays
//! whatever is waiting each time it connects.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use proto::v1::agent_client::AgentClient;
use proto::v1::report::Body;
use proto::v1::{AgentMessage, Heartbeat, Hello, RenewRequest, agent_message, controller_message};
use tokio::sync::{Notify, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::config::AgentConfig;
use crate::facts::{Collector, problems};
use crate::outbox::Outbox;
use crate::state::{Enrollment, StateDir};
use crate::tasks::{Tasks, now_ms};

/// Reports in flight (sent, not yet acknowledged) at most.
const WINDOW: u64 = 256;
const HELLO_ACK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Intervals {
    heartbeat: Duration,
    facts: Duration,
}

struct Shared {
    outbox: Arc<Mutex<Outbox>>,
    appended: Arc<Notify>,
    problems: Mutex<Vec<String>>,
    intervals: watch::Sender<Intervals>,
    reconnect: Notify,
    /// The latest heartbeat the outbox could not take, for the session to send as it is;
    /// cleared when a heartbeat makes it into the outbox (that one is newer).
    unsequenced: Mutex<Option<Heartbeat>>,
    unsequenced_waiting: Notify,
    /// Asks for a fresh fact snapshot (the outbox can write again after a failure).
    recollect: Notify,
    /// The controller's clock at the last HelloAck (Unix ms) and when that was, on the
    /// monotonic clock: the controller's time now, whatever our wall clock does since.
    controller_clock: Mutex<Option<(i64, std::time::Instant)>>,
    /// In proxy mode, the latest reading of the hosts this agent speaks for.
    proxied: Arc<crate::proxy::Latest>,
    /// The security collectors the controller asked for (by the policies assigned here).
    collectors: Mutex<Vec<String>>,
}

/// A clock further than this from the controller's is reported as a problem.
const CLOCK_OFF_LIMIT_MS: i64 = 60_000;

impl Shared {
    /// Now on the controller's clock (ms), if we have met the controller.
    fn controller_now_ms(&self) -> Option<i64> {
        let anchor = *self.controller_clock.lock().unwrap_or_else(|p| p.into_inner());
        anchor.map(|(at, seen)| at.saturating_add(i64::try_from(seen.elapsed().as_millis()).unwrap_or(i64::MAX)))
    }

    /// The controller's clock minus ours (ms), as of now.
    fn clock_offset_ms(&self) -> Option<i64> {
        self.controller_now_ms().map(|c| c.saturating_sub(now_ms()))
    }

    /// Now on the controller's clock (seconds), or on ours until we have met the controller.
    fn controller_now_s(&self) -> i64 {
        self.controller_now_ms().unwrap_or_else(now_ms) / 1000
    }

    /// A problem naming how far our clock is from the controller's, if too far.
    fn clock_problem(&self) -> Option<String> {
        let off = self.clock_offset_ms()?;
        (off.saturating_abs() > CLOCK_OFF_LIMIT_MS).then(|| {
            let way = if off < 0 { "ahead of" } else { "behind" };
            format!("clock is {} s {way} the controller's", off.saturating_abs() / 1000)
        })
    }

    /// The security collectors the controller wants; a change (or `now`) collects facts at
    /// once, so an assignment or an evaluation on demand sees them without waiting an interval.
    fn set_collectors(&self, mut names: Vec<String>, now: bool) {
        names.sort();
        names.dedup();
        let changed = {
            let mut c = self.collectors.lock().unwrap_or_else(|p| p.into_inner());
            let changed = *c != names;
            *c = names;
            changed
        };
        if changed || now {
            self.recollect.notify_one();
        }
    }

    fn outbox(&self) -> std::sync::MutexGuard<'_, Outbox> {
        // Every outbox operation leaves its files consistent before returning, so a panic
        // elsewhere while the lock was held leaves nothing half-done.
        self.outbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends a report to the outbox; false if it could not be written (counted and logged
    /// by the outbox).
    fn append(&self, body: Body) -> bool {
        let mut ob = self.outbox();
        let failing_before = ob.write_failure().is_some();
        let written = ob.append(body, now_ms());
        drop(ob);
        match written {
            Ok(Some(_)) => {
                self.appended.notify_one();
                if failing_before {
                    tracing::info!("the outbox can be written again");
                    self.recollect.notify_one();
                }
                true
            }
            Ok(None) => true, // dropped as the outbox is full: counted and logged by the outbox
            Err(_) => false,
        }
    }
}

pub async fn run(state: StateDir, cfg: AgentConfig, shutdown: CancellationToken) -> Result<()> {
    let enrollment = state.enrollment()?;
    let _lock = state.lock()?;
    let outbox = Outbox::open(&state.outbox(), cfg.outbox).context("outbox")?;
    let outbox = Arc::new(Mutex::new(outbox));
    let appended = Arc::new(Notify::new());
    let (itx, irx) = watch::channel(Intervals { heartbeat: Duration::from_secs(5), facts: Duration::from_secs(60) });
    let shared = Arc::new(Shared {
        outbox: outbox.clone(),
        appended: appended.clone(),
        problems: Mutex::new(Vec::new()),
        intervals: itx,
        reconnect: Notify::new(),
        unsequenced: Mutex::new(None),
        unsequenced_waiting: Notify::new(),
        recollect: Notify::new(),
        controller_clock: Mutex::new(None),
        proxied: Arc::new(crate::proxy::Latest::default()),
        collectors: Mutex::new(Vec::new()),
    });
    if let Some(p) = cfg.proxy.clone() {
        tracing::info!(platform = p.platform.name, "proxy mode: speaking for the platform's hosts");
        crate::proxy::start(p, shared.proxied.clone());
    }
    let tasks = Arc::new(Tasks::new(state.tasks(), outbox, appended, cfg.task_output_cap).context("task journal")?);
    tracing::info!(host = enrollment.host, controller = enrollment.agent_endpoint, "agent starting");

    // The machine's anti-malware product is read only where the agent reports the real machine.
    let av = matches!(cfg.facts, crate::facts::FactSource::System)
        .then(|| crate::antivirus::Watcher::new(cfg.antivirus.clone(), &state.dir));
    tokio::spawn(facts_loop(shared.clone(), Collector::new(cfg.facts.clone()), av, irx.clone(), shutdown.clone()));
    tokio::spawn(heartbeat_loop(shared.clone(), irx, shutdown.clone()));
    tokio::spawn(renew_loop(state.clone(), enrollment.clone(), shared.clone(), shutdown.clone()));

    let mut attempt: u32 = 0;
    loop {
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = session(&state, &enrollment, &shared, &tasks, &shutdown) => r,
        };
        match outcome {
            Ok(true) => attempt = 0, // a session was established: start backing off afresh
            Ok(false) => attempt += 1,
            Err(e) => {
                attempt += 1;
                let error = format!("{e:#}");
                if error.contains("CertificateExpired") {
                    tracing::error!(error, attempt, "{}", expired_message(&state));
                } else {
                    tracing::warn!(error, attempt, "session with the controller failed");
                }
            }
        }
        if shutdown.is_cancelled() {
            break;
        }
        let delay = backoff(attempt, cfg.reconnect_max);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
            _ = shared.reconnect.notified() => {}
        }
    }
    tracing::info!("agent stopped; unsent reports stay in the outbox");
    Ok(())
}

/// Exponential backoff with jitter: 0.5 s, 1 s, 2 s … capped at `cap`, each scaled by a random
/// factor in [0.5, 1) so that agents cut off together do not return together.
pub fn backoff(attempt: u32, cap: Duration) -> Duration {
    if attempt == 0 {
        return Duration::from_millis(100);
    }
    let base = Duration::from_millis(500).saturating_mul(1u32 << (attempt - 1).min(16));
    base.min(cap).mul_f64(0.5 + rand::random::<f64>() / 2.0)
}

/// One session. Ok(true) if it got as far as the controller's HelloAck.
async fn session(
    state: &StateDir,
    enrollment: &Enrollment,
    shared: &Arc<Shared>,
    tasks: &Arc<Tasks>,
    shutdown: &CancellationToken,
) -> Result<bool> {
    if let Ok((_, not_after)) = state.cert_validity()
        && not_after <= shared.controller_now_s()
    {
        // The controller judges (a clock may be wrong); if it refuses, the run loop says what
        // to do.
        tracing::warn!("this agent's certificate looks expired; trying the controller anyway");
    }
    let tls = state.client_tls()?;
    let ch = crate::net::channel(&enrollment.agent_endpoint, tls).await?;
    let mut client = AgentClient::new(ch)
        .max_decoding_message_size(proto::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(proto::MAX_MESSAGE_BYTES);
    let (tx, rx) = mpsc::channel::<AgentMessage>(32);
    let last_assigned = shared.outbox().meta().last_seq_assigned;
    tx.send(AgentMessage {
        msg: Some(agent_message::Msg::Hello(Hello {
            protocol_major: proto::PROTOCOL_MAJOR,
            protocol_minor: proto::PROTOCOL_MINOR,
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            last_seq_assigned: last_assigned,
        })),
    })
    .await
    .context("session closed before Hello")?;
    let mut inbound = tokio::time::timeout(HELLO_ACK_TIMEOUT, client.session(ReceiverStream::new(rx)))
        .await
        .context("the controller did not open the session within 10 s")?
        .map_err(|s| anyhow::anyhow!("controller refused the session: {}", crate::net::status_text(&s)))?
        .into_inner();
    let first = tokio::time::timeout(HELLO_ACK_TIMEOUT, inbound.message())
        .await
        .context("no HelloAck within 10 s")?
        .map_err(|s| anyhow::anyhow!("controller ended the session: {}", crate::net::status_text(&s)))?;
    let Some(controller_message::Msg::HelloAck(ack)) = first.and_then(|m| m.msg) else {
        anyhow::bail!("the controller's first message was not HelloAck");
    };
    {
        let mut ob = shared.outbox();
        if ack.last_seq_stored > ob.meta().last_seq_assigned {
            ob.rebase(ack.last_seq_stored)?;
        } else {
            ob.ack(ack.last_seq_stored)?;
        }
    }
    if ack.controller_time_unix_ms != 0 {
        *shared.controller_clock.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((ack.controller_time_unix_ms, std::time::Instant::now()));
        if let Some(problem) = shared.clock_problem() {
            tracing::warn!(problem, "this host's clock is off");
        }
    }
    let intervals = Intervals {
        heartbeat: Duration::from_millis(u64::from(ack.heartbeat_interval_ms.max(100))),
        facts: Duration::from_millis(u64::from(ack.facts_interval_ms.max(1000))),
    };
    shared.intervals.send_if_modified(|i| std::mem::replace(i, intervals) != intervals);
    shared.set_collectors(ack.security_collectors.clone(), false);
    tracing::info!(host = ack.host, last_seq_stored = ack.last_seq_stored, "session established");

    let mut sent = shared.outbox().meta().last_seq_acked;
    loop {
        // The next report to send, if the window allows one and one is waiting.
        let next = {
            let ob = shared.outbox();
            let acked = ob.meta().last_seq_acked;
            sent = sent.max(acked);
            if sent - acked < WINDOW && ob.last_pending().is_some_and(|l| l > sent) {
                ob.pending_after(sent, 1)?.into_iter().next()
            } else {
                None
            }
        };
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(true),
            _ = shared.reconnect.notified() => {
                tracing::info!("reconnecting with the renewed certificate");
                return Ok(true);
            }
            m = inbound.message() => match m {
                Ok(Some(m)) => match m.msg {
                    Some(controller_message::Msg::Ack(a)) => {
                        // The entries are deleted even when the metadata cannot be written
                        // (full disk); a restart then learns the numbers from the controller.
                        if let Err(e) = shared.outbox().ack(a.seq) {
                            tracing::warn!(error = %e, seq = a.seq, "cannot record an acknowledgement");
                        }
                    }
                    Some(controller_message::Msg::Task(t)) => tasks.handle(t),
                    Some(controller_message::Msg::FactsRequest(r)) => shared.set_collectors(r.security_collectors, r.now),
                    Some(controller_message::Msg::HelloAck(_)) | None => {}
                },
                Ok(None) => {
                    tracing::info!("controller closed the session");
                    return Ok(true);
                }
                Err(s) => {
                    tracing::warn!(code = ?s.code(), error = s.message(), "session ended by the controller");
                    return Ok(true);
                }
            },
            permit = tx.reserve(), if next.is_some() => {
                let Ok(permit) = permit else { return Ok(true) };
                if let Some(r) = next {
                    sent = r.seq;
                    permit.send(AgentMessage { msg: Some(agent_message::Msg::Report(r)) });
                }
            }
            _ = shared.appended.notified(), if next.is_none() => {}
            _ = shared.unsequenced_waiting.notified() => {
                let hb = shared.unsequenced.lock().unwrap_or_else(|p| p.into_inner()).take();
                // Best effort, never waiting: a full stream means the link is slow, and the
                // next heartbeat says the same.
                if let Some(hb) = hb {
                    let _ = tx.try_send(AgentMessage { msg: Some(agent_message::Msg::UnsequencedHeartbeat(hb)) });
                }
            }
            _ = shared.proxied.ready.notified() => {
                // Latest wins, as for unsequenced heartbeats: the next reading follows soon.
                if let Some(p) = shared.proxied.take() {
                    let _ = tx.try_send(AgentMessage { msg: Some(agent_message::Msg::ProxiedHosts(p)) });
                }
            }
        }
    }
}

async fn heartbeat_loop(shared: Arc<Shared>, mut intervals: watch::Receiver<Intervals>, shutdown: CancellationToken) {
    loop {
        let every = intervals.borrow().heartbeat;
        let meta = shared.outbox().meta();
        let backlog = shared.outbox().len() as u64;
        // A heartbeat that makes it into the outbox proves the outbox writable: the write
        // failure, if any, is named only in the unsequenced fallback below.
        let mut problems = shared.problems.lock().unwrap_or_else(|p| p.into_inner()).clone();
        problems.extend(shared.clock_problem());
        let hb = Heartbeat {
            problems,
            outbox_backlog: backlog,
            outbox_dropped: meta.dropped,
            outbox_compacted: meta.compacted,
        };
        if shared.append(Body::Heartbeat(hb.clone())) {
            shared.unsequenced.lock().unwrap_or_else(|p| p.into_inner()).take();
        } else {
            let mut hb = hb;
            let ob = shared.outbox();
            hb.outbox_dropped = ob.meta().dropped;
            if let Some(why) = ob.write_failure() {
                hb.problems.push(format!("cannot write reports to the outbox: {why}"));
            }
            drop(ob);
            // The latest one is what matters.
            *shared.unsequenced.lock().unwrap_or_else(|p| p.into_inner()) = Some(hb);
            shared.unsequenced_waiting.notify_one();
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
            _ = intervals.changed() => {}
        }
    }
}

async fn facts_loop(
    shared: Arc<Shared>,
    collector: Collector,
    av: Option<crate::antivirus::Watcher>,
    mut intervals: watch::Receiver<Intervals>,
    shutdown: CancellationToken,
) {
    let collector = Arc::new(Mutex::new(collector));
    let av = Arc::new(Mutex::new(av));
    loop {
        let c = collector.clone();
        let a = av.clone();
        let wanted = shared.collectors.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let now_s = shared.controller_now_s();
        // Collection reads /proc and runs read-only commands: keep it off the session's thread.
        let facts = tokio::task::spawn_blocking(move || {
            let mut f = c.lock().unwrap_or_else(|p| p.into_inner()).collect();
            if !wanted.is_empty() {
                let names: Vec<&str> = wanted.iter().map(String::as_str).collect();
                f.security_json = crate::security::collect(&names, std::path::Path::new("/")).to_string();
            }
            let reading = a.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|w| w.read(now_s));
            f.antivirus = reading.as_ref().map(|r| r.facts.clone());
            (f, reading)
        })
        .await;
        match facts {
            Ok((f, reading)) => {
                if let Some(mut reading) = reading {
                    // Detections first, then the facts that count them; the log is marked read
                    // only once every detection is in the outbox.
                    let stored = std::mem::take(&mut reading.events).into_iter().all(|e| {
                        tracing::warn!(kind = e.kind, message = e.message, "threat detected");
                        shared.append(Body::Event(e))
                    });
                    if stored && let Some(w) = av.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
                        w.committed(reading);
                    }
                }
                *shared.problems.lock().unwrap_or_else(|p| p.into_inner()) = problems(&f);
                shared.append(Body::Facts(f));
            }
            Err(e) => tracing::error!(error = %e, "fact collection failed"),
        }
        let every = intervals.borrow().facts;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
            // The disk problem that made the last snapshot's problems is gone: say so now.
            _ = shared.recollect.notified() => {}
            _ = intervals.changed() => {
                // A new interval from the controller: wait it out from now, not re-collect.
                let every = intervals.borrow().facts;
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
            }
        }
    }
}

/// When two thirds of the certificate's life have passed, asks the controller for a new one
/// for a new key; retries every 30 s on failure. The session then reconnects with it.
async fn renew_loop(state: StateDir, enrollment: Enrollment, shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        let wait = match state.cert_validity() {
            Ok((nb, na)) => {
                let renew_at = nb + (na - nb) * 2 / 3;
                // The certificate's times are the controller's: so is the clock we read them by.
                // Looked at again every few seconds: the offset from the controller's clock is
                // learnt (or changes) only when a session starts.
                let now = shared.controller_now_s();
                (renew_at > now).then(|| Duration::from_secs(u64::try_from(renew_at - now).unwrap_or(1).min(5)))
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the agent certificate");
                Some(Duration::from_secs(30))
            }
        };
        if let Some(wait) = wait {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            continue;
        }
        match renew(&state, &enrollment).await {
            Ok(not_after) => {
                tracing::info!(not_after, "certificate renewed");
                shared.reconnect.notify_one();
            }
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "certificate renewal failed; retrying in 30 s");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                }
            }
        }
    }
}

/// What an agent whose certificate expired must do.
fn expired_message(state: &StateDir) -> String {
    format!(
        "this agent's certificate expired (the host was away longer than its lifetime); enroll again with a new \
         token: mangrove-agent enroll --controller HOST:PORT --token TOKEN --state-dir {}",
        state.dir.display()
    )
}

async fn renew(state: &StateDir, enrollment: &Enrollment) -> Result<i64> {
    let (key_pem, csr) = crate::enroll::key_and_csr(&enrollment.host)?;
    let ch = crate::net::channel(&enrollment.agent_endpoint, state.client_tls()?).await?;
    let resp = AgentClient::new(ch)
        .renew(RenewRequest { csr_pem: csr })
        .await
        .map_err(|s| anyhow::anyhow!("controller refused renewal: {}", crate::net::status_text(&s)))?
        .into_inner();
    state.write_identity(&resp.certificate_pem, &key_pem)?;
    Ok(resp.not_after_unix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        let cap = Duration::from_secs(10);
        for attempt in 1..40 {
            let d = backoff(attempt, cap);
            let base = Duration::from_millis(500).saturating_mul(1u32 << (attempt - 1).min(16)).min(cap);
            assert!(d >= base / 2 && d <= base, "attempt {attempt}: {d:?} vs {base:?}");
        }
        assert!(backoff(30, cap) <= cap);
    }
}
