//! `mangrove controller run`: opens the store and CA, serves the agent, enrollment and API
//! ports, and stops cleanly on SIGTERM or Ctrl-C (live agent streams are cut so the process
//! exits within seconds; agents keep their reports in their outboxes and replay them).

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use proto::v1::agent_server::AgentServer;
use proto::v1::enrollment_server::EnrollmentServer;
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::Config;
use crate::grpc::{AgentService, EnrollService};
use crate::metrics::Metrics;
use crate::pki::Ca;
use crate::sessions::Sessions;
use crate::store::{HostSeed, PlatformSeed, PlatformStore, SqliteStore, Store};
use crate::tlsnet;

/// How long shutdown waits for connections to close before the process exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

async fn bind(addr: std::net::SocketAddr, what: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} ({what} port)"))
}

/// The names the controller's certificates carry: this machine's hostname and the addresses
/// it listens on (an unspecified address adds 127.0.0.1).
fn server_names(cfg: &Config) -> Vec<String> {
    let mut names = cfg.api.extra_names.clone();
    if let Ok(h) = nix::unistd::gethostname() {
        names.push(h.to_string_lossy().into_owned());
    }
    names.push("127.0.0.1".into());
    names.push("::1".into());
    for a in [cfg.listen.api, cfg.listen.agents, cfg.listen.enroll] {
        if !a.ip().is_unspecified() {
            names.push(a.ip().to_string());
        }
    }
    if let Some(adv) = &cfg.advertise_agents
        && let Some((host, _)) = adv.rsplit_once(':')
    {
        names.push(host.trim_matches(['[', ']']).to_string());
    }
    names.retain(|n| crate::app::valid_host_name(n) || n.parse::<std::net::IpAddr>().is_ok());
    names
}

pub async fn run(cfg: Config) -> Result<()> {
    std::fs::create_dir_all(&cfg.data_dir).with_context(|| format!("cannot create {}", cfg.data_dir.display()))?;
    std::fs::set_permissions(&cfg.data_dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict {}", cfg.data_dir.display()))?;
    let ca = Ca::load_or_create(&cfg.data_dir).context("certificate authority")?;
    let db = cfg.data_dir.join("mangrove.db");
    let store = SqliteStore::open(&db).await.with_context(|| format!("store {}", db.display()))?;
    let mut loaded = None;
    if let Some(path) = &cfg.inventory {
        let inv = inventory::load_file(path)?;
        let seeds: Vec<HostSeed> = inv
            .machines()
            .iter()
            .map(|m| HostSeed { name: m.name.to_string(), site: m.site.to_string(), kind: m.kind.as_str().to_string() })
            .collect();
        store.upsert_inventory_hosts(&seeds).await.context("loading the inventory's hosts")?;
        tracing::info!(inventory = %path.display(), hosts = seeds.len(), "inventory loaded");
        loaded = Some(Arc::new(inv));
    }
    let platform_seeds: Vec<PlatformSeed> = cfg
        .platforms
        .iter()
        .map(|p| PlatformSeed {
            name: p.name.clone(),
            kind: p.kind.as_str().to_string(),
            site: crate::platforms::site_of(loaded.as_deref(), &p.name),
            endpoint: p.endpoint.clone(),
        })
        .collect();
    store.upsert_platforms(&platform_seeds).await.context("declaring the configured platforms")?;
    let shutdown = CancellationToken::new();
    let store_handle = store.clone();
    let backup_plans = match loaded.as_deref() {
        Some(inv) => crate::backup::plans::plans(inv).context("backup plans")?,
        None => Vec::new(),
    };
    let capacity_prometheus = match &cfg.capacity.prometheus {
        None => None,
        Some(p) => {
            let client = Arc::new(crate::capacity::prometheus::PromClient::new(p).context("capacity.prometheus")?);
            // Reachability is logged, not required: the server may come up after us.
            let probe = client.clone();
            match tokio::task::spawn_blocking(move || probe.check()).await {
                Ok(Ok(version)) => tracing::info!(url = p.url, version, "capacity history read from Prometheus"),
                Ok(Err(e)) => tracing::warn!(url = p.url, error = %e, "Prometheus not answering yet"),
                Err(e) => tracing::warn!(error = %e, "Prometheus check did not run"),
            }
            Some(client)
        }
    };
    let app = Arc::new(App {
        cfg: cfg.clone(),
        store: Arc::new(store),
        ca,
        sessions: Sessions::default(),
        metrics: Metrics::default(),
        shutdown: shutdown.clone(),
        inventory: loaded,
        platforms: crate::platforms::Platforms::new(cfg.platforms.clone(), cfg.platform_sync.interval.0),
        policy: crate::policy::Policies::load(&cfg.policy.packs).map_err(anyhow::Error::msg)?,
        backups: crate::backup::runs::Backups::new(
            backup_plans,
            crate::backup::secrets::RepoSecrets::new(&cfg.data_dir),
        ),
        backup_breaches: Default::default(),
        capacity_prometheus,
        remediating: Default::default(),
        drills: Default::default(),
        images: Default::default(),
    });
    crate::platforms::spawn_scheduler(app.clone());
    crate::capacity::collect::spawn_folding(app.clone());
    crate::backup::snapshots::fail_interrupted(&app).await;
    crate::backup::schedule::spawn(app.clone(), cfg.backup.evaluate_every.0);
    crate::images::schedule::spawn(app.clone(), cfg.backup.evaluate_every.0);
    crate::endpoints::spawn(app.clone());
    crate::vc::schedule::spawn(app.clone());
    crate::failover::runs::spawn(app.clone());
    app.bootstrap_admin().await?;

    let (chain, key) = app.ca.server_identity(&server_names(&cfg)).context("server certificate")?;
    let ca_der = vec![app.ca.cert_der().clone()];

    let agents_l = bind(cfg.listen.agents, "agent").await?;
    let enroll_l = bind(cfg.listen.enroll, "enrollment").await?;
    let api_l = bind(cfg.listen.api, "API").await?;
    let agents_addr = agents_l.local_addr()?;
    let enroll_addr = enroll_l.local_addr()?;
    let api_addr = api_l.local_addr()?;

    let agents_tls = Arc::new(proto::tls::mtls_server_config(chain.clone(), key.clone_key(), &ca_der)?);
    let agents_rx = tlsnet::accept(agents_l, agents_tls, shutdown.clone(), "agent");
    let agent_svc = AgentServer::new(AgentService { app: app.clone() })
        .max_decoding_message_size(proto::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(proto::MAX_MESSAGE_BYTES);
    let s = shutdown.clone();
    let agents_srv = tokio::spawn(
        tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(10)))
            .http2_keepalive_timeout(Some(Duration::from_secs(20)))
            .add_service(agent_svc)
            .serve_with_incoming_shutdown(ReceiverStream::new(agents_rx).map(Ok::<_, std::io::Error>), async move {
                s.cancelled().await
            }),
    );

    let enroll_tls = Arc::new(proto::tls::server_config(chain.clone(), key.clone_key(), &[b"h2"])?);
    let enroll_rx = tlsnet::accept(enroll_l, enroll_tls, shutdown.clone(), "enrollment");
    let enroll_svc = EnrollmentServer::new(EnrollService { app: app.clone() }).max_decoding_message_size(64 * 1024);
    let s = shutdown.clone();
    let enroll_srv = tokio::spawn(
        tonic::transport::Server::builder()
            .timeout(Duration::from_secs(30))
            .add_service(enroll_svc)
            .serve_with_incoming_shutdown(ReceiverStream::new(enroll_rx).map(Ok::<_, std::io::Error>), async move {
                s.cancelled().await
            }),
    );

    let router = crate::api::router(app.clone());
    let s = shutdown.clone();
    let api_srv = if cfg.api.plain_http {
        tracing::warn!(addr = %api_addr, "API served over plain HTTP (loopback only, as configured)");
        tokio::spawn(async move {
            axum::serve(api_l, router).with_graceful_shutdown(async move { s.cancelled().await }).await
        })
    } else {
        let (api_chain, api_key) = match (&cfg.api.tls_cert, &cfg.api.tls_key) {
            (Some(c), Some(k)) => {
                let c = std::fs::read_to_string(c).with_context(|| format!("api.tls_cert {}", c.display()))?;
                let k = std::fs::read_to_string(k).with_context(|| format!("api.tls_key {}", k.display()))?;
                (proto::tls::certs_from_pem(&c)?, proto::tls::key_from_pem(&k)?)
            }
            _ => (chain, key),
        };
        let api_tls = Arc::new(proto::tls::server_config(api_chain, api_key, &[b"h2", b"http/1.1"])?);
        let rx = tlsnet::accept(api_l, api_tls, shutdown.clone(), "api");
        tokio::spawn(async move {
            axum::serve(tlsnet::AxumTls { rx, local: api_addr }, router)
                .with_graceful_shutdown(async move { s.cancelled().await })
                .await
        })
    };
    tokio::spawn(crate::tasks::expire_loop(app.clone()));

    tracing::info!(api = %api_addr, agents = %agents_addr, enroll = %enroll_addr, ca = app.ca.fingerprint(), "controller ready");

    wait_for_signal().await;
    tracing::info!("shutting down");
    shutdown.cancel();
    let all = async {
        let _ = agents_srv.await;
        let _ = enroll_srv.await;
        let _ = api_srv.await;
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
        tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; exiting anyway");
    }
    store_handle.close().await;
    tracing::info!("controller stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            tracing::error!("cannot install signal handlers; stop with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}
