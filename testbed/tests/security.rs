//! What an attacker or a confused client meets: the agent port demands a client certificate,
//! the enrollment port answers nothing but enrollment, garbage gets an error or a closed
//! connection (never a crash), and every API call is authenticated and role-checked.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use common::Testbed;
use serde_json::{Value, json};

/// A TLS client that accepts any server certificate and presents none.
fn no_cert_tls() -> Arc<rustls::ClientConfig> {
    #[derive(Debug)]
    struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);
    impl rustls::client::danger::ServerCertVerifier for AcceptAny {
        fn verify_server_cert(
            &self,
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &[rustls::pki_types::CertificateDer<'_>],
            _: &rustls::pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
    let provider = proto::tls::provider();
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(cfg)
}

/// Sends `bytes` over TLS without a client certificate; returns what came back (empty if the
/// server closed or failed the connection).
fn tls_exchange(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let name = rustls::pki_types::ServerName::try_from("mangrove-controller").expect("name");
    let mut conn = rustls::ClientConnection::new(no_cert_tls(), name).expect("tls");
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    let _ = tls.write_all(bytes);
    let mut buf = vec![0u8; 4096];
    match tls.read(&mut buf) {
        Ok(n) => buf[..n].to_vec(),
        Err(e) => {
            assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "server neither answered nor closed");
            assert_ne!(e.kind(), std::io::ErrorKind::TimedOut, "server neither answered nor closed");
            Vec::new()
        }
    }
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

#[test]
fn ports_refuse_strangers_and_survive_garbage() {
    let tb = Testbed::up(Some(common::SMALL_INVENTORY));
    tb.wait(Duration::from_secs(30), Testbed::all_connected).expect("connected");

    // The agent port: no client certificate, no answer.
    assert!(tls_exchange(&tb.agents, H2_PREFACE).is_empty(), "agent port answered a client without a certificate");

    // Raw garbage, truncated TLS records and oversized frames on every port.
    let api_addr = tb.api.trim_start_matches("https://").to_string();
    for addr in [&tb.agents, &tb.enroll, &api_addr] {
        for junk in [&b"\x16\x03\x01\x00\x05hello"[..], &[0u8; 3], &[0xffu8; 70_000], b"GET / HTTP/1.1\r\n\r\n"] {
            if let Ok(mut s) = TcpStream::connect(addr.as_str()) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
                let _ = s.write_all(junk);
                let mut buf = [0u8; 64];
                let _ = s.read(&mut buf);
            }
        }
        // A TLS client that speaks HTTP/2 garbage after the handshake.
        let _ = tls_exchange(addr, b"\x00\x00\x10\x99\xff\xff\xff\xff\xffgarbage-frame-body");
    }

    // The enrollment port answers the enrollment call only.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let code = rt.block_on(async {
        let tls = (*no_cert_tls()).clone();
        let tls = Arc::new(tls);
        let addr = tb.enroll.clone();
        let connector = tower::service_fn(move |_: tonic::transport::Uri| {
            let tls = tls.clone();
            let addr = addr.clone();
            async move {
                let tcp = tokio::net::TcpStream::connect(addr).await?;
                let name = rustls::pki_types::ServerName::try_from("mangrove-controller").expect("name");
                let s = tokio_rustls::TlsConnector::from(tls).connect(name, tcp).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
            }
        });
        let ch =
            tonic::transport::Endpoint::from_static("http://x").connect_with_connector(connector).await.expect("ch");
        let mut c = proto::v1::agent_client::AgentClient::new(ch);
        c.renew(proto::v1::RenewRequest { csr_pem: String::new() }).await.expect_err("renew on enrollment port").code()
    });
    assert_eq!(code, tonic::Code::Unimplemented);

    // After all that, the controller still serves and every agent is still connected.
    tb.wait(Duration::from_secs(20), Testbed::all_connected).expect("still connected after garbage");
    let health = tb.http().get(format!("{}/healthz", tb.api)).call().expect("healthz");
    assert_eq!(health.status(), 200);
}

fn post(tb: &Testbed, path: &str, token: Option<&str>, body: &[u8]) -> (u16, Value) {
    let mut req = tb.http().post(format!("{}{path}", tb.api)).header("Content-Type", "application/json");
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut r = req.send(body).expect("API reachable");
    let status = r.status().as_u16();
    (status, r.body_mut().read_json().unwrap_or(Value::Null))
}

#[test]
fn every_api_call_is_authenticated_and_role_checked() {
    let tb = Testbed::up(Some(common::SMALL_INVENTORY));
    let planner = tb.user_token("planner");
    let auditor = tb.user_token("auditor");
    let operator = tb.user_token("operator");
    let task = json!({"host": "web-app-01", "program": "true"}).to_string();

    let cases: Vec<(&str, Option<&str>, Vec<u8>, u16)> = vec![
        ("/api/v1/tasks", None, task.clone().into_bytes(), 401),
        (
            "/api/v1/tasks",
            Some("mgu1.0000000000000000.000000000000000000000000000000000000000000000000"),
            task.clone().into_bytes(),
            401,
        ),
        ("/api/v1/tasks", Some("garbage"), task.clone().into_bytes(), 401),
        ("/api/v1/tasks", Some(&planner), task.clone().into_bytes(), 403),
        ("/api/v1/tasks", Some(&auditor), task.clone().into_bytes(), 403),
        ("/api/v1/tokens", Some(&operator), br#"{"role":"admin","user":"eve"}"#.to_vec(), 403),
        ("/api/v1/agents/web-app-01/revoke", Some(&planner), b"{}".to_vec(), 403),
        ("/api/v1/tasks", Some(&operator), b"{\"host\": \"web-app-01\", \"program\": ".to_vec(), 400),
        ("/api/v1/tasks", Some(&operator), br#"{"host": 5, "program": []}"#.to_vec(), 400),
        ("/api/v1/tasks", Some(&operator), br#"{"host": "web-app-01", "program": "true", "sudo": true}"#.to_vec(), 400),
        ("/api/v1/tasks", Some(&operator), br#"{"host": "nowhere", "program": "true"}"#.to_vec(), 404),
        ("/api/v1/tokens", Some(&tb.token), br#"{"role":"superuser","user":"eve"}"#.to_vec(), 400),
        ("/api/v1/tokens", Some(&tb.token), br#"{"role":"planner","user":"operator"}"#.to_vec(), 409),
        ("/api/v1/tasks", Some(&operator), vec![b'['; 3 * 1024 * 1024], 413),
    ];
    for (path, token, body, want) in cases {
        let (got, v) = post(&tb, path, token, &body);
        assert_eq!(got, want, "POST {path} as {token:?}: {v}");
        assert!(v["error"].is_string(), "POST {path}: no error message in {v}");
    }
    // Reading is fine for every role; the audit log only for those who may.
    for who in ["planner", "auditor", "security", "operator"] {
        let hosts = tb.api_get("/api/v1/hosts", &tb.user_token(who));
        assert_eq!(hosts.as_array().map(Vec::len), Some(3), "{who}");
    }
    let r =
        tb.http().get(format!("{}/api/v1/audit", tb.api)).header("Authorization", &format!("Bearer {planner}")).call();
    assert_eq!(r.expect("reachable").status(), 403);
    let audit = tb.api_get("/api/v1/audit", &auditor);
    assert!(audit.as_array().expect("audit").iter().any(|a| a["action"] == "token.create" && a["actor"] == "admin"));
    // /metrics needs a token too.
    let r = tb.http().get(format!("{}/metrics", tb.api)).call().expect("reachable");
    assert_eq!(r.status(), 401);
}
