//! Integrations with the platforms Mangrove manages. Today: the hypervisor driver interface
//! ([`hypervisor::Hypervisor`]) and its drivers for VMware vSphere (SOAP, vim25), OpenStack
//! (Keystone v3, Nova, Cinder, Glance, Neutron) and, behind the `libvirt` feature, libvirt; the
//! video-conference endpoint checks (`vc`: SIP OPTIONS, SNMP, Poly REST and telnet); and the
//! anti-malware status of the local machine ([`antivirus`]: ClamAV, Kaspersky Endpoint
//! Security for Linux); and [`dns`], RFC 2136 dynamic updates with TSIG for the failover's DNS
//! switch; and [`qemu_img`], the disk conversion of VMs exported from vCenter into DR images.

pub mod antivirus;
pub mod cloudinit;
pub mod connect;
pub mod dns;
pub mod error;
pub mod http;
pub mod hypervisor;
pub mod ksc;
#[cfg(feature = "libvirt")]
pub mod libvirt;
pub mod openstack;
pub mod qemu_img;
pub mod restic;
pub mod vc;
pub mod vsphere;

pub use error::PlatformError;
pub use hypervisor::{Hypervisor, Inventory, Operation, PlatformKind};
