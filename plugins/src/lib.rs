//! Integrations with the platforms Mangrove manages. Today: the hypervisor driver interface
//! ([`hypervisor::Hypervisor`]) and its drivers for VMware vSphere (SOAP, vim25), OpenStack
//! (Keystone v3, Nova, Cinder, Glance, Neutron) and, behind the `libvirt` feature, libvirt; and
//! the anti-malware status of the local machine ([`antivirus`]: ClamAV, Kaspersky Endpoint
//! Security for Linux).

pub mod antivirus;
pub mod connect;
pub mod error;
pub mod http;
pub mod hypervisor;
#[cfg(feature = "libvirt")]
pub mod libvirt;
pub mod openstack;
pub mod restic;
pub mod vsphere;

pub use error::PlatformError;
pub use hypervisor::{Hypervisor, Inventory, Operation, PlatformKind};
