//! Run control for clients of a running daemon: submit a run, follow it,
//! cancel it, ask for status, and have the daemon run a read-only command
//! against the store it holds.
//!
//! - [`DaemonClient`]: the client side, over the daemon's loopback HTTP API.
//! - [`CommandHost`] and [`CommandOutput`]: the contract of `POST /api/cli`.
//!   The daemon's API does not know how commands are parsed or printed; the
//!   binary hands it a host (the CLI's) when it starts the daemon.
//!
//! In-process run control is the daemon's [`Dispatcher`](crate::daemon::dispatch::Dispatcher)
//! (submit, cancel) and [`execute_run`](crate::execute::execute_run).

mod client;
mod command;

pub use client::{ClientError, DaemonClient, path_segment};
pub use command::{CommandHost, CommandOutput};
