//! `dag serve`: an HTTP prediction server over the model registry.
//!
//! It owns the request path (validation, routing between champion and
//! challenger, the JSON answer), hot model swaps when an alias moves, the
//! Prometheus metrics and the sampled prediction log. It does not train,
//! register or promote models; it reads the registry that
//! `dag_operators::models` writes and follows its aliases.
//!
//! - [`config`]: what to serve and how ([`ServeConfig`])
//! - [`slot`]: the atomically swappable model in use
//! - [`watcher`]: polls an alias and swaps in verified versions
//! - [`records`]: request bodies read straight into model-ready columns
//! - [`validate`]: strict record checks against the training schema, and
//!   what a record failing them gets ([`InvalidRecords`])
//! - [`answer`]: the prediction JSON and the risk level of a class
//! - [`routing`]: which model answers a request
//! - [`metrics`]: counters and the latency histogram, rendered for Prometheus
//! - [`prediction_log`]: sampled, rotated CSV of what was asked and answered
//! - [`app`]: the request path from body to predictions, shared by the routes
//! - [`handlers`], [`response`] and [`server`]: the axum routes, their JSON
//!   answers and refusals, and the listener

pub mod answer;
mod app;
pub mod config;
mod error;
mod handlers;
pub mod metrics;
pub mod prediction_log;
pub mod records;
mod response;
pub mod routing;
mod server;
pub mod slot;
#[cfg(test)]
pub(crate) mod test_support;
pub mod validate;
pub mod watcher;

pub use config::{ChallengerConfig, LogConfig, ServeConfig};
pub use error::ServeError;
pub use server::{BackgroundServer, Server, ServingStatus};
pub use validate::InvalidRecords;
