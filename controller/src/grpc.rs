//! The gRPC services agents talk to: enrollment (its own port, no client certificate) and the
//! agent service (mutual TLS: the host is the one its certificate names).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use proto::v1::agent_server::Agent;
use proto::v1::enrollment_server::Enrollment;
use proto::v1::{
    Ack, AgentMessage, ControllerMessage, EnrollRequest, EnrollResponse, HelloAck, RenewRequest, RenewResponse,
    agent_message, controller_message,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::app::{App, now_ms, secret_matches, valid_host_name};
use crate::store::{CertRecord, Enrollment as EnrollmentRecord};
use crate::tasks::message_for;
use crate::tlsnet::PeerInfo;

const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `Enrollment` on the enrollment port.
pub struct EnrollService {
    pub app: Arc<App>,
}

fn unix_secs(t: time::OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

#[tonic::async_trait]
impl Enrollment for EnrollService {
    async fn enroll(&self, req: Request<EnrollRequest>) -> Result<Response<EnrollResponse>, Status> {
        let remote = req.extensions().get::<PeerInfo>().map(|p| p.remote.to_string()).unwrap_or_default();
        let r = req.into_inner();
        let result = self.enroll_inner(&r).await;
        match &result {
            Ok(resp) => {
                self.app.metrics.enrollment("ok");
                tracing::info!(host = %resp.host, %remote, "agent enrolled");
            }
            Err(s) => {
                self.app.metrics.enrollment("refused");
                tracing::warn!(%remote, reason = %s.message(), "enrollment refused");
            }
        }
        result.map(Response::new)
    }
}

impl EnrollService {
    async fn enroll_inner(&self, r: &EnrollRequest) -> Result<EnrollResponse, Status> {
        let app = &self.app;
        if r.protocol_major != proto::PROTOCOL_MAJOR {
            return Err(Status::failed_precondition(format!(
                "agent speaks protocol v{}; this controller speaks v{}",
                r.protocol_major,
                proto::PROTOCOL_MAJOR
            )));
        }
        let unknown = || Status::unauthenticated("unknown token: this controller never issued it");
        let parts = proto::token::parse(&r.token).map_err(|_| unknown())?;
        if parts.prefix != proto::token::BOOTSTRAP_PREFIX {
            return Err(Status::unauthenticated("not an agent bootstrap token (create one with --role agent)"));
        }
        if parts.ca_fingerprint != Some(app.ca.fingerprint().as_str()) {
            return Err(Status::unauthenticated("unknown token: it was issued by another controller's CA"));
        }
        let t = app.store.get_token(parts.id).await.map_err(internal)?.ok_or_else(unknown)?;
        if t.kind != "bootstrap" || !secret_matches(parts.secret, &t.secret_hash) {
            return Err(unknown());
        }
        let now = now_ms();
        if let Some(at) = t.used_at {
            return Err(Status::permission_denied(format!(
                "token already used (at {}); create a new one with `mangrove token create --role agent`",
                crate::app::rfc3339(at)
            )));
        }
        if let Some(exp) = t.expires_at.filter(|e| *e <= now) {
            return Err(Status::permission_denied(format!(
                "token expired at {}; create a new one with `mangrove token create --role agent`",
                crate::app::rfc3339(exp)
            )));
        }
        let host = match (&t.host, r.hostname.trim()) {
            (Some(h), _) => h.clone(),
            (None, "") => return Err(Status::invalid_argument("the request names no hostname and the token no host")),
            (None, h) => h.to_string(),
        };
        if !valid_host_name(&host) {
            return Err(Status::invalid_argument(format!("invalid host name {host:?}")));
        }
        // A token not bound to a host must not take over one that is enrolled and live.
        if t.host.is_none() && app.store.has_live_cert(&host, now).await.map_err(internal)? {
            return Err(Status::permission_denied(format!(
                "host {host} is already enrolled; revoke it first (`mangrove agents revoke {host}`) or use a token \
                 made for it (`mangrove token create --role agent --host {host}`)"
            )));
        }
        // Sign before spending the token: a bad CSR must not burn it.
        let issued = app
            .ca
            .sign_agent(&r.csr_pem, &host, app.cfg.agents.cert_ttl.0)
            .map_err(|e| Status::invalid_argument(format!("certificate signing request refused: {e}")))?;
        if !app.store.mark_token_used(&t.id, now, &host).await.map_err(internal)? {
            return Err(Status::permission_denied("token already used by another agent"));
        }
        app.store
            .record_enrollment(&EnrollmentRecord {
                host: host.clone(),
                serial: issued.serial.clone(),
                issued_at: now,
                not_after: unix_secs(issued.not_after) * 1000,
            })
            .await
            .map_err(internal)?;
        let last_seq_stored = app
            .store
            .get_host(&host)
            .await
            .map_err(internal)?
            .map(|h| u64::try_from(h.last_seq).unwrap_or(0))
            .unwrap_or(0);
        let actor = t.user_name.clone().unwrap_or_else(|| "unknown".into());
        app.audit(
            &actor,
            "agent.enroll",
            Some(&host),
            serde_json::json!({"token_id": t.id, "serial": issued.serial, "hostname": r.hostname}),
        )
        .await;
        Ok(EnrollResponse {
            host,
            certificate_pem: issued.pem,
            ca_pem: app.ca.cert_pem().to_string(),
            agent_endpoint: app.cfg.agent_endpoint(),
            not_after_unix: unix_secs(issued.not_after),
            last_seq_stored,
        })
    }
}

fn internal(e: impl std::fmt::Display) -> Status {
    tracing::error!(error = %e, "internal error");
    Status::internal("internal error; see the controller's log")
}

/// Serves `Agent` on the agent port.
pub struct AgentService {
    pub app: Arc<App>,
}

impl AgentService {
    /// The host this request's client certificate proves, if that certificate is still good.
    async fn authorise<T>(&self, req: &Request<T>) -> Result<(String, String), Status> {
        let (host, serial) = req
            .extensions()
            .get::<PeerInfo>()
            .and_then(|p| p.identity.clone())
            .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        let cert = self.app.store.get_cert(&serial).await.map_err(internal)?;
        match cert {
            Some(c) if c.host == host && c.revoked_at.is_none() => Ok((host, serial)),
            Some(c) if c.revoked_at.is_some() => Err(Status::permission_denied(format!(
                "the certificate of {host} was revoked; enroll again with a new token"
            ))),
            _ => Err(Status::permission_denied("certificate unknown to this controller")),
        }
    }
}

type SessionStream = Pin<Box<dyn Stream<Item = Result<ControllerMessage, Status>> + Send>>;

fn msg(m: controller_message::Msg) -> ControllerMessage {
    ControllerMessage { msg: Some(m) }
}

#[tonic::async_trait]
impl Agent for AgentService {
    type SessionStream = SessionStream;

    async fn session(&self, req: Request<Streaming<AgentMessage>>) -> Result<Response<SessionStream>, Status> {
        let (host, serial) = self.authorise(&req).await?;
        let app = self.app.clone();
        let mut inbound = req.into_inner();
        let hello = match tokio::time::timeout(HELLO_TIMEOUT, inbound.next()).await {
            Ok(Some(Ok(AgentMessage { msg: Some(agent_message::Msg::Hello(h)) }))) => h,
            Ok(Some(Err(e))) => return Err(e),
            Ok(_) => return Err(Status::invalid_argument("the first message of a session must be Hello")),
            Err(_) => return Err(Status::deadline_exceeded("no Hello within 10 s")),
        };
        if hello.protocol_major != proto::PROTOCOL_MAJOR {
            return Err(Status::failed_precondition(format!(
                "agent speaks protocol v{}; this controller speaks v{}",
                hello.protocol_major,
                proto::PROTOCOL_MAJOR
            )));
        }
        let record = app.store.get_host(&host).await.map_err(internal)?;
        let last_seq_stored = record.as_ref().map(|h| h.last_seq).unwrap_or(0);
        let (tx, rx) = mpsc::channel(256);
        let (id, cancel) = app.sessions.register(&host, tx.clone(), &app.shutdown);
        // A revocation between `authorise` and `register` found no session to cut: look again
        // now that this one is visible to `agents revoke`.
        if app.store.get_cert(&serial).await.map_err(internal)?.is_none_or(|c| c.revoked_at.is_some()) {
            app.sessions.unregister(&host, id);
            return Err(Status::permission_denied(format!(
                "the certificate of {host} was revoked; enroll again with a new token"
            )));
        }
        app.metrics.sessions.set(app.sessions.len() as i64);
        let now = now_ms();
        app.store.touch_host(&host, now).await.map_err(internal)?;
        tracing::info!(
            host,
            session = id,
            agent_version = hello.agent_version,
            last_seq_assigned = hello.last_seq_assigned,
            "agent connected"
        );
        // The channel is new and empty, so the first message always fits.
        let security_collectors = crate::policy::evaluate::collectors_for(&app, &host).await;
        let _ = tx.try_send(Ok(msg(controller_message::Msg::HelloAck(HelloAck {
            last_seq_stored: u64::try_from(last_seq_stored).unwrap_or(0),
            host: host.clone(),
            heartbeat_interval_ms: millis(app.cfg.liveness.heartbeat_interval.0),
            facts_interval_ms: millis(app.cfg.agents.facts_interval.0),
            controller_time_unix_ms: now_ms(),
            security_collectors,
        }))));
        // Tasks that were waiting for this agent, sent once the stream is flowing (there may be
        // more than the channel holds).
        let (dapp, dtx, dhost, dcancel) = (app.clone(), tx.clone(), host.clone(), cancel.clone());
        tokio::spawn(async move {
            let tasks = match dapp.store.open_tasks(&dhost, now).await {
                Ok(t) => t,
                Err(e) => return tracing::error!(host = dhost, error = %e, "cannot read open tasks"),
            };
            for t in tasks {
                let Some(m) = message_for(&dapp, &t) else { continue };
                tokio::select! {
                    _ = dcancel.cancelled() => return,
                    sent = dtx.send(Ok(m)) => if sent.is_err() { return },
                }
                if let Err(e) = dapp.store.mark_task_delivered(&t.id, now_ms()).await {
                    tracing::error!(task_id = t.id, error = %e, "cannot mark task delivered");
                }
            }
        });
        let reader_cancel = cancel.clone();
        let reader_host = host.clone();
        tokio::spawn(async move {
            let outcome = read_reports(&app, &reader_host, &mut inbound, &tx, &reader_cancel).await;
            if let Err(status) = outcome {
                tracing::warn!(host = reader_host, session = id, error = %status.message(), "agent session failed");
                let _ = tx.send(Err(status)).await;
            } else {
                tracing::info!(host = reader_host, session = id, "agent session ended");
            }
            reader_cancel.cancel();
            app.sessions.unregister(&reader_host, id);
            app.metrics.sessions.set(app.sessions.len() as i64);
        });
        let out = ReceiverStream::new(rx).take_until(cancel.cancelled_owned());
        Ok(Response::new(Box::pin(out)))
    }

    async fn renew(&self, req: Request<RenewRequest>) -> Result<Response<RenewResponse>, Status> {
        let (host, old_serial) = self.authorise(&req).await?;
        let r = req.into_inner();
        let issued = self
            .app
            .ca
            .sign_agent(&r.csr_pem, &host, self.app.cfg.agents.cert_ttl.0)
            .map_err(|e| Status::invalid_argument(format!("certificate signing request refused: {e}")))?;
        let not_after = unix_secs(issued.not_after);
        let cert = CertRecord {
            serial: issued.serial.clone(),
            host: host.clone(),
            not_after: not_after * 1000,
            revoked_at: None,
        };
        // Only while the certificate presented is still unrevoked, in one statement: a
        // revocation racing this renewal must not leave the host a fresh certificate.
        if !self.app.store.add_renewed_cert(&old_serial, &cert, now_ms()).await.map_err(internal)? {
            return Err(Status::permission_denied(format!("the certificate of {host} was revoked; enroll again")));
        }
        tracing::info!(host, old_serial, new_serial = issued.serial, "agent certificate renewed");
        Ok(Response::new(RenewResponse { certificate_pem: issued.pem, not_after_unix: not_after }))
    }
}

/// What a newly stored report sets off: fresh facts are evaluated against the host's policies;
/// a finished remediation task asks for fresh facts, so its effect is evaluated at once.
fn after_report(app: &Arc<App>, host: &str, effect: &crate::store::ReportEffect) {
    match effect {
        crate::store::ReportEffect::Facts { .. } => {
            let (app, host) = (app.clone(), host.to_string());
            tokio::spawn(async move {
                let cause = app.take_evaluation_cause(&host);
                if let Err(e) = crate::policy::evaluate::evaluate_host(&app, &host, &cause, false).await {
                    tracing::warn!(host, error = %e, "policy evaluation failed");
                }
            });
        }
        crate::store::ReportEffect::TaskResult(t) if crate::backup::is_backup_task(&t.task_id) => {
            let (app, host, t) = (app.clone(), host.to_string(), t.clone());
            tokio::spawn(async move {
                if let Err(e) = crate::backup::runs::task_finished(&app, &host, &t).await {
                    tracing::error!(task_id = t.task_id, error = %e, "backup run outcome not recorded");
                }
            });
        }
        crate::store::ReportEffect::Event { kind, fields } if kind == "backup.progress" => {
            if let Some(id) = fields.get("task_id") {
                app.backups.set_progress(id, serde_json::json!(fields));
            }
        }
        crate::store::ReportEffect::TaskResult(t) if t.task_id.starts_with("rem-") => {
            app.remediation_finished(host, &t.task_id);
            let (app, host) = (app.clone(), host.to_string());
            tokio::spawn(async move {
                crate::policy::evaluate::push_collectors(&app, std::slice::from_ref(&host), true).await;
            });
        }
        _ => {}
    }
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// Stores each report, then acknowledges it. Ends when the agent closes its side, the session
/// is cut, or the store fails (the agent then replays from its outbox on the next session).
async fn read_reports(
    app: &Arc<App>,
    host: &str,
    inbound: &mut Streaming<AgentMessage>,
    tx: &mpsc::Sender<Result<ControllerMessage, Status>>,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<(), Status> {
    loop {
        let next = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            n = inbound.next() => n,
        };
        let m = match next {
            None => return Ok(()),
            Some(Err(e)) => {
                tracing::debug!(host, error = %e, "agent stream error");
                return Ok(());
            }
            Some(Ok(m)) => m,
        };
        match m.msg {
            Some(agent_message::Msg::Report(r)) => {
                let seq = r.seq;
                let now = now_ms();
                let report =
                    crate::reports::convert(host, r, now).map_err(|e| Status::invalid_argument(e.to_string()))?;
                let new = app.store.store_report(&report).await.map_err(internal)?;
                if !new {
                    app.store.touch_host(host, now).await.map_err(internal)?;
                }
                app.metrics.count_report(report.kind, new);
                if let crate::store::ReportEffect::Heartbeat(hb) = &report.effect {
                    app.metrics.outbox_status(host, hb);
                }
                if new {
                    after_report(app, host, &report.effect);
                }
                if tx.send(Ok(msg(controller_message::Msg::Ack(Ack { seq })))).await.is_err() {
                    return Ok(());
                }
            }
            Some(agent_message::Msg::UnsequencedHeartbeat(h)) => {
                // Nothing to acknowledge: the agent keeps no copy of it.
                let hb = crate::reports::heartbeat_status(h);
                app.store.record_unsequenced_heartbeat(host, now_ms(), &hb).await.map_err(internal)?;
                app.metrics.count_report("unsequenced_heartbeat", true);
                app.metrics.outbox_status(host, &hb);
            }
            Some(agent_message::Msg::ProxiedHosts(p)) => {
                let Some(inv) = app.inventory.as_deref() else { continue };
                let statuses = crate::platforms::proxy::statuses(inv, host, &p);
                if statuses.is_empty() {
                    tracing::warn!(
                        host,
                        platform = p.platform,
                        "a proxy reading from an agent that is no site's proxy"
                    );
                    continue;
                }
                app.store.record_proxied_hosts(host, now_ms(), &statuses).await.map_err(internal)?;
                app.metrics.count_report("proxied_hosts", true);
            }
            Some(agent_message::Msg::Hello(_)) => {
                return Err(Status::invalid_argument("Hello may only open a session"));
            }
            None => return Err(Status::invalid_argument("empty message")),
        }
    }
}
