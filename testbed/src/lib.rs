//! The simulated Cà Mau province that `mangrove testbed up` runs: the layout of a testbed dir,
//! the launcher of the controller and agent processes, and `down`, which stops everything a
//! testbed started.
//!
//! This crate never depends on the controller or agent crates: it starts their binaries and
//! writes their configuration files, whose formats are the contract. The controller drives it
//! (creating users and tokens through its own API) from the `testbed` subcommands.
//!
//! Every process a testbed starts names the testbed dir in its arguments, so `down` (and
//! anyone else) can find it by scanning `/proc`; each is restarted by running its own command
//! line again, and finds its ports and files there.

pub mod backup_storage;
pub mod bind;
pub mod chaos;
pub mod containers;
pub mod deps;
pub mod devices;
pub mod faults;
pub mod image;
pub mod ksc;
pub mod launch;
pub mod layout;
pub mod openstack;
pub mod platforms;
pub mod procs;
pub mod vcsim;
pub mod volumes;

pub use launch::{Launched, spawn_detached};
pub use layout::{DnsLayout, Layout, Ports, TestbedError, User};
