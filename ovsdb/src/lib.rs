//! Native OVSDB client: RFC 7047 JSON-RPC over a unix (or TCP) socket, on tokio.
//!
//! Shaped like `rtnetlink`: [`connect`] returns a [`Connection`] future to drive and a
//! cheap-to-clone [`Client`] handle. Operations are typed ([`Operation`]), values use
//! OVSDB's notation ([`Value`], [`Atom`]), and [`vswitch`] adds typed requests for the
//! `Open_vSwitch` database (add/delete a port, read an interface, wait for `ofport`, wait
//! for ovs-vswitchd to apply the configuration).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = ovsdb_client::Client::connect("unix:/run/openvswitch/db.sock").await?;
//! let vs = client.vswitch();
//! let added = vs.add_port("br-int", "abcdef123456_h").external_id("iface-id", "pod.ns").execute().await?;
//! let ofport = vs.wait_for_ofport("abcdef123456_h", std::time::Duration::from_secs(10)).await?;
//! # let _ = (added, ofport); Ok(()) }
//! ```

mod client;
mod connection;
pub mod data;
mod endpoint;
mod error;
pub mod monitor;
pub mod ops;
pub mod unixctl;
pub mod vswitch;

pub use client::{connect, Client, DEFAULT_REQUEST_TIMEOUT};
pub use connection::Connection;
pub use data::{Atom, DecodeError, Row, Uuid, Value};
pub use endpoint::{Endpoint, EndpointError};
pub use error::Error;
pub use monitor::{Monitor, MonitorRequest};
pub use ops::{Condition, Function, Mutation, Mutator, Operation, OperationResult, WaitUntil};
pub use unixctl::{Unixctl, UnixctlError};
