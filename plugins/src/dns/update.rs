//! [`Updater`]: RFC 2136 dynamic updates of one zone on one server, signed with TSIG
//! (RFC 8945), each one UPDATE message over TCP.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, OpCode, Query, ResponseCode, UpdateMessage};
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::{DNSClass, Name, Record, RecordType, TSigner};

use super::key::TsigKey;
use super::records::{self, RecordKind};
use super::transport::Exchange;
use super::{DnsError, query, rcode_name};

/// Seconds the server may think our clock is off by (BIND's and nsupdate's default).
const FUDGE: u16 = 300;

/// Updates one zone on one DNS server with one TSIG key.
///
/// Blocking: each call is one exchange that waits for up to the timeout, with no async runtime
/// of its own, so it never panics inside a tokio runtime; from async code call it through
/// `tokio::task::spawn_blocking` so it does not hold up a worker thread.
pub struct Updater {
    server: SocketAddr,
    zone: Name,
    key: TsigKey,
    signer: TSigner,
    timeout: Duration,
}

impl fmt::Debug for Updater {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The signer holds the secret: only the key's name and algorithm are shown.
        f.debug_struct("Updater")
            .field("server", &self.server)
            .field("zone", &records::display(&self.zone))
            .field("key", &self.key.name)
            .field("algorithm", &self.key.algorithm)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Updater {
    /// An updater of `zone` (e.g. `drill.camau.gov.vn`) at `server`, signing with `key`; every
    /// exchange gives up after `timeout`. Nothing is sent yet.
    ///
    /// # Errors
    /// [`DnsError::Invalid`] for a zone or key name that is not a DNS name.
    pub fn new(server: SocketAddr, zone: &str, key: TsigKey, timeout: Duration) -> Result<Updater, DnsError> {
        let zone = records::absolute(zone)?;
        let key_name = records::absolute(&key.name)?;
        let signer = TSigner::new(key.secret.expose().to_vec(), key.algorithm.to_hickory(), key_name, FUDGE)
            .map_err(|e| DnsError::Invalid(format!("TSIG key {:?}: {e}", key.name)))?;
        Ok(Updater { server, zone, key, signer, timeout })
    }

    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// The zone, without a trailing dot.
    pub fn zone(&self) -> String {
        records::display(&self.zone)
    }

    /// The name `name` stands for in this zone (see [`Updater::replace`]), without a trailing dot.
    ///
    /// # Errors
    /// As [`Updater::replace`] for names.
    pub fn fqdn(&self, name: &str) -> Result<String, DnsError> {
        Ok(records::display(&records::owner_in_zone(name, &self.zone)?))
    }

    /// Makes `name`'s `kind` records exactly `values` with `ttl`: one UPDATE that deletes the
    /// RRset and adds the new records, which the server applies atomically.
    ///
    /// `name`: `@` is the zone's apex, a name without a dot is relative to the zone (`qlvbdh`),
    /// anything else is fully qualified and must lie inside the zone.
    ///
    /// Idempotent: replacing with the same values again leaves the zone as it was. Safe to
    /// retry after a timeout (the update either happened or it did not; doing it again gives
    /// the same records).
    ///
    /// # Errors
    /// [`DnsError::KeyRejected`] when the key is wrong, [`DnsError::Refused`] when the server
    /// does not allow this key to update this zone, [`DnsError::NotAuthoritative`] when it does
    /// not serve the zone, [`DnsError::OutsideZone`] / [`DnsError::Invalid`] before sending,
    /// [`DnsError::Timeout`] / [`DnsError::Unreachable`] naming the server.
    pub fn replace(&self, name: &str, kind: RecordKind, ttl: u32, values: &[String]) -> Result<(), DnsError> {
        let owner = records::owner_in_zone(name, &self.zone)?;
        let data = records::rdata(kind, values)?;
        let mut msg = self.update_message();
        msg.add_update(delete_rrset(&owner, kind.record_type()));
        for d in data {
            msg.add_update(Record::from_rdata(owner.clone(), ttl, d));
        }
        let operation = format!("update of {} {kind} in zone {}", records::display(&owner), self.zone());
        self.send(msg, &operation, &owner)?;
        tracing::info!(
            server = %self.server,
            zone = %self.zone(),
            name = %records::display(&owner),
            rtype = %kind,
            ttl,
            values = ?values,
            "dns records replaced"
        );
        Ok(())
    }

    /// Deletes `name`'s `kind` records (a name as in [`Updater::replace`]). Idempotent:
    /// deleting records that do not exist succeeds.
    ///
    /// # Errors
    /// As [`Updater::replace`].
    pub fn delete(&self, name: &str, kind: RecordKind) -> Result<(), DnsError> {
        let owner = records::owner_in_zone(name, &self.zone)?;
        let mut msg = self.update_message();
        msg.add_update(delete_rrset(&owner, kind.record_type()));
        let operation = format!("deletion of {} {kind} in zone {}", records::display(&owner), self.zone());
        self.send(msg, &operation, &owner)?;
        tracing::info!(
            server = %self.server,
            zone = %self.zone(),
            name = %records::display(&owner),
            rtype = %kind,
            "dns records deleted"
        );
        Ok(())
    }

    /// The values of `name`'s `kind` records as this server answers them now (a name as in
    /// [`Updater::replace`]); see [`query::lookup`].
    ///
    /// # Errors
    /// As [`query::lookup`], and [`DnsError::OutsideZone`].
    pub fn lookup(&self, name: &str, kind: RecordKind) -> Result<Vec<String>, DnsError> {
        query::lookup_name(self.server, &records::owner_in_zone(name, &self.zone)?, kind, self.timeout)
    }

    /// An empty UPDATE of this zone (RFC 2136 2.3: the zone section is the zone's SOA).
    fn update_message(&self) -> Message {
        let mut msg = Message::query();
        msg.metadata.op_code = OpCode::Update;
        msg.metadata.recursion_desired = false;
        let mut zone = Query::new();
        zone.set_name(self.zone.clone()).set_query_class(DNSClass::IN).set_query_type(RecordType::SOA);
        msg.add_zone(zone);
        msg
    }

    /// Signs and sends `msg`, and reads the server's verdict.
    fn send(&self, mut msg: Message, operation: &str, owner: &Name) -> Result<(), DnsError> {
        let server = self.server;
        let bad = |detail: String| DnsError::BadResponse { server, operation: operation.to_string(), detail };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let verifier = msg
            .finalize(&self.signer, now)
            .map_err(|e| DnsError::Invalid(format!("cannot sign the {operation}: {e}")))?;
        let id = msg.metadata.id;
        let bytes = msg.to_vec().map_err(|e| DnsError::Invalid(format!("cannot encode the {operation}: {e}")))?;
        let ex = Exchange { server, timeout: self.timeout, operation };
        let raw = ex.tcp(&bytes, id)?;
        let answer = Message::from_vec(&raw).map_err(|e| bad(e.to_string()))?;
        let tsig_error = answer.signature.as_ref().and_then(|s| s.data.error);
        let zone = self.zone();
        let key = self.key.name.clone();
        match (answer.metadata.response_code, tsig_error) {
            (ResponseCode::NoError, _) => {
                // The answer must be signed with our key too: proof it came from the server
                // that holds it, and was not forged on the way.
                let mut verifier = verifier.ok_or_else(|| bad("no TSIG verifier for the request".into()))?;
                verifier.verify(&raw).map_err(|e| bad(format!("the answer is not signed with key {key:?}: {e}")))?;
                Ok(())
            }
            (_, Some(TsigError::BadTime)) | (ResponseCode::BADTIME, _) => {
                Err(DnsError::ClockSkew { server, zone, key })
            }
            (_, Some(e @ (TsigError::BadSig | TsigError::BadKey | TsigError::BadTrunc | TsigError::Unknown(_)))) => {
                Err(DnsError::KeyRejected { server, zone, key, detail: tsig_detail(e) })
            }
            (ResponseCode::BADSIG, _) => {
                Err(DnsError::KeyRejected { server, zone, key, detail: tsig_detail(TsigError::BadSig) })
            }
            (ResponseCode::BADKEY, _) => {
                Err(DnsError::KeyRejected { server, zone, key, detail: tsig_detail(TsigError::BadKey) })
            }
            (ResponseCode::NotAuth, None) => Err(DnsError::NotAuthoritative { server, zone }),
            (ResponseCode::Refused, _) => Err(DnsError::Refused { server, zone, key }),
            (ResponseCode::NotZone, _) => Err(DnsError::NotZone { server, zone, name: records::display(owner) }),
            (rcode, _) => Err(DnsError::Server { server, operation: operation.to_string(), rcode: rcode_name(rcode) }),
        }
    }
}

/// The RFC 2136 2.5.2 "delete an RRset" record: class ANY, TTL 0, no data.
fn delete_rrset(owner: &Name, rtype: RecordType) -> Record {
    let mut r = Record::update0(owner.clone(), 0, rtype);
    r.dns_class = DNSClass::ANY;
    r
}

fn tsig_detail(e: TsigError) -> String {
    match e {
        TsigError::BadSig => "BADSIG: the signature does not match the server's secret for this key".into(),
        TsigError::BadKey => "BADKEY: the server has no key of this name and algorithm".into(),
        TsigError::BadTime => "BADTIME".into(),
        TsigError::BadTrunc => "BADTRUNC".into(),
        TsigError::Unknown(code) => format!("TSIG error {code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::TsigAlgorithm;

    fn updater() -> Updater {
        let key = TsigKey::new("mangrove", TsigAlgorithm::HmacSha256, "c2VjcmV0LXNlY3JldC1zZWNyZXQ=").expect("key");
        Updater::new("127.0.0.1:53".parse().expect("addr"), "drill.camau.gov.vn", key, Duration::from_secs(1))
            .expect("updater")
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let u = updater();
        let text = format!("{u:?} {:?}", u.key);
        assert!(!text.contains("c2VjcmV0"), "{text}");
        assert!(!text.contains("secret-secret"), "{text}");
        assert!(text.contains("mangrove"), "{text}");
    }

    #[test]
    fn a_name_outside_the_zone_is_refused_before_sending() {
        let e =
            updater().replace("qlvbdh.camau.gov.vn", RecordKind::A, 60, &["192.0.2.51".into()]).expect_err("outside");
        assert!(matches!(e, DnsError::OutsideZone { .. }), "{e:?}");
    }
}
