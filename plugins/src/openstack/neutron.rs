//! Neutron v2.0: networks, ports, floating IPs.

use serde::{Deserialize, Serialize};

use super::OpenstackDriver;
use super::nova::encode;
use super::session::Service;
use crate::error::PlatformError;

/// A Neutron network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub shared: bool,
    #[serde(default, rename = "router:external")]
    pub external: bool,
    #[serde(default)]
    pub subnets: Vec<String>,
}

/// A fixed IP of a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedIp {
    #[serde(default)]
    pub subnet_id: Option<String>,
    pub ip_address: String,
}

/// A Neutron port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub id: String,
    #[serde(default)]
    pub network_id: String,
    /// The server (or router) it belongs to.
    #[serde(default)]
    pub device_id: String,
    #[serde(default)]
    pub mac_address: Option<String>,
    #[serde(default)]
    pub fixed_ips: Vec<FixedIp>,
    #[serde(default)]
    pub status: String,
}

/// A Neutron floating IP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloatingIp {
    pub id: String,
    pub floating_ip_address: String,
    #[serde(default)]
    pub fixed_ip_address: Option<String>,
    #[serde(default)]
    pub port_id: Option<String>,
    #[serde(default)]
    pub floating_network_id: String,
    #[serde(default)]
    pub status: String,
}

impl OpenstackDriver {
    pub fn networks(&self) -> Result<Vec<Network>, PlatformError> {
        self.session.list(Service::Network, "/v2.0/networks", "networks")
    }

    pub fn ports(&self) -> Result<Vec<Port>, PlatformError> {
        self.session.list(Service::Network, "/v2.0/ports", "ports")
    }

    pub fn floating_ips(&self) -> Result<Vec<FloatingIp>, PlatformError> {
        self.session.list(Service::Network, "/v2.0/floatingips", "floatingips")
    }

    /// A network's id from its exact name, or the id itself when no network has that name.
    pub(crate) fn network_id(&self, name_or_id: &str) -> Result<String, PlatformError> {
        let path = format!("/v2.0/networks?name={}", encode(name_or_id));
        let named: Vec<Network> = self.session.list(Service::Network, &path, "networks")?;
        let mut exact = named.into_iter().filter(|n| n.name == name_or_id);
        match (exact.next(), exact.next()) {
            (Some(n), None) => return Ok(n.id),
            (Some(_), Some(_)) => {
                return Err(PlatformError::Refused {
                    endpoint: self.session.endpoint.clone(),
                    call: format!("GET {path}"),
                    message: format!("more than one network is named {name_or_id:?}; give its id"),
                });
            }
            _ => {}
        }
        let by_id = format!("/v2.0/networks/{}", encode(name_or_id));
        let reply = self.session.call(Service::Network, "GET", &by_id, None)?;
        if reply.status == 404 {
            return Err(self.session.not_found("network", name_or_id));
        }
        let call = format!("GET {by_id}");
        let doc = self.session.json(reply, &call)?;
        let n: Network = self.session.field(&doc, "network", &call)?;
        Ok(n.id)
    }
}
