//! [`ServeError`]: why the server could not start or stopped.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "`{addr}` is not a loopback address, so requests must be authenticated; set `DAG_API_TOKEN` or bind `127.0.0.1`"
    )]
    TokenRequired { addr: SocketAddr },
    #[error("`{flag}` must be between 0 and 1, got {value}")]
    Fraction { flag: &'static str, value: f64 },
    #[error("cannot listen on `{addr}`")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the model registry")]
    Registry(#[source] dag_operators::models::RegistryError),
    #[error("cannot create the prediction log directory `{}`", path.display())]
    LogDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the `{what}` thread")]
    Thread {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the server's async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("the server stopped")]
    Serve(#[source] std::io::Error),
}

impl ServeError {
    /// Errors the user can fix by changing flags or the environment.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::TokenRequired { .. } | Self::Fraction { .. } | Self::Bind { .. }
        )
    }
}
