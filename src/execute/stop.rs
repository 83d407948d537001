//! [`RunStop`]: how a run is asked to stop, and why.
//!
//! A user's cancel (`dag cancel`, the web UI, Ctrl-C, `overlap:
//! cancel_previous`) ends a run as `cancelled`. The engine going away
//! (SIGTERM, the daemon's grace period running out) ends it as
//! `interrupted`, the same status a crash leaves, so both read alike in
//! history and both can be resumed. Either way the tasks see one
//! cancellation token; only the recorded status differs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use dag_state::RunStatus;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Default)]
pub struct RunStop {
    token: CancellationToken,
    interrupted: Arc<AtomicBool>,
}

impl RunStop {
    pub fn new() -> Self {
        Self::default()
    }

    /// A user's decision: the run ends `cancelled`.
    pub fn cancel(&self) {
        self.token.cancel();
    }

    /// The engine is going away: the run ends `interrupted`. Wins over an
    /// earlier cancel, because the run did not end on the user's terms.
    pub fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
        self.token.cancel();
    }

    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    pub fn is_stopped(&self) -> bool {
        self.token.is_cancelled()
    }

    /// The status a run asked to stop ends with.
    pub fn status(&self) -> RunStatus {
        if self.interrupted.load(Ordering::SeqCst) {
            RunStatus::Interrupted
        } else {
            RunStatus::Cancelled
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_ends_cancelled_and_an_interrupt_ends_interrupted() {
        let stop = RunStop::new();
        assert!(!stop.is_stopped());
        stop.cancel();
        assert!(stop.token().is_cancelled());
        assert_eq!(stop.status(), RunStatus::Cancelled);
        stop.interrupt();
        assert_eq!(stop.status(), RunStatus::Interrupted);
        let clone = RunStop::new();
        clone.clone().interrupt();
        assert_eq!(
            clone.status(),
            RunStatus::Interrupted,
            "clones share the reason"
        );
    }
}
