//! Dialing the controller: TCP, then TLS 1.3 with the given configuration, then HTTP/2 for
//! tonic. The TLS name verified is always the controller's fixed name, whatever address is
//! dialed (see `proto::tls`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint, Uri};

/// A channel to `addr` (`host:port`) over TLS with `tls`.
pub async fn channel(addr: &str, tls: rustls::ClientConfig) -> Result<Channel> {
    let tls = Arc::new(tls);
    let target = addr.to_string();
    let connector = tower::service_fn(move |_: Uri| {
        let tls = tls.clone();
        let target = target.clone();
        async move {
            let tcp = TcpStream::connect(&target).await?;
            tcp.set_nodelay(true)?;
            let name =
                ServerName::try_from(proto::CONTROLLER_TLS_NAME).map_err(|e| std::io::Error::other(e.to_string()))?;
            let stream = TlsConnector::from(tls).connect(name, tcp).await?;
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        }
    });
    Endpoint::from_static("http://mangrove-controller")
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(20))
        .keep_alive_while_idle(true)
        .connect_with_connector(connector)
        .await
        .with_context(|| format!("cannot connect to the controller at {addr}"))
}

/// A gRPC status as a person should read it: its message, then the causes underneath (a
/// bare "transport error" says nothing; "received fatal alert: CertificateExpired" does).
pub fn status_text(s: &tonic::Status) -> String {
    let mut out = s.message().to_string();
    let mut source = std::error::Error::source(s);
    while let Some(e) = source {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}
