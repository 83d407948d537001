//! [`ParseLimits`] and [`Budget`]: how much one DAG load may read and build.
//!
//! DAG files may be hostile: a few hundred bytes of nested YAML aliases
//! expand to billions of nodes, an include may name a device that never
//! ends. Every load gets a budget — bytes read across the file and its
//! includes, nodes and scalar bytes built (every alias copy counts), nesting
//! depth, and optionally a deadline — and the first limit hit becomes a
//! diagnostic that names it and where it was hit.

use std::time::{Duration, Instant};

/// The limits of one load (a DAG file and everything it includes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Largest single file read.
    pub max_file_bytes: u64,
    /// Most bytes read across the file and its includes.
    pub max_total_bytes: u64,
    /// Most files one load reads (the file and its includes).
    pub max_files: usize,
    /// Deepest nesting of mappings and sequences.
    pub max_depth: usize,
    /// Most YAML nodes built, counting every copy an alias makes. Nodes
    /// written out in the text are bounded by the byte limits as well.
    pub max_nodes: usize,
    /// Most YAML nodes built by alias copies: what turns a few hundred bytes
    /// into billions of nodes. Real DAG files copy little or nothing.
    pub max_alias_nodes: usize,
    /// Most bytes of scalar text built, counting every copy an alias makes.
    pub max_scalar_bytes: usize,
    /// How long the load may take; `None` for no limit. The daemon sets one
    /// so that no file can hold up its loop.
    pub time: Option<Duration>,
}

impl Default for ParseLimits {
    /// Far above any real DAG: the 10,000-task benchmark DAG is about 1 MiB
    /// and 120,000 nodes, the 100,000-task one about 6 MiB and 1.2 million
    /// nodes, neither with an alias.
    fn default() -> Self {
        Self {
            max_file_bytes: 8 << 20,
            max_total_bytes: 32 << 20,
            max_files: 1_000,
            max_depth: 64,
            max_nodes: 4_000_000,
            max_alias_nodes: 500_000,
            max_scalar_bytes: 64 << 20,
            time: None,
        }
    }
}

/// A limit that stopped a load, with what it allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitHit {
    #[error("the YAML nests deeper than {0} levels")]
    Depth(usize),
    #[error("the YAML expands to more than {0} nodes (every copy an alias makes counts)")]
    Nodes(usize),
    #[error("the YAML's aliases copy more than {0} nodes")]
    AliasNodes(usize),
    #[error("the YAML expands to more than {} MiB of text (every copy an alias makes counts)", .0 >> 20)]
    ScalarBytes(usize),
    #[error("loading took longer than {:.1} s", .0.as_secs_f64())]
    Time(Duration),
}

impl LimitHit {
    pub fn help(&self) -> &'static str {
        match self {
            Self::Depth(_) => "DAG files need a few levels; flatten the structure",
            Self::Nodes(_) | Self::AliasNodes(_) | Self::ScalarBytes(_) => {
                "a DAG file this large is almost certainly a mistake or an attack; \
                 look for aliases (`*name`) that copy large anchored values"
            }
            Self::Time(_) => "split the file, or look for aliases that copy large anchored values",
        }
    }
}

/// What is left of a load's [`ParseLimits`], shared by the file and its
/// includes.
#[derive(Debug, Clone)]
pub struct Budget {
    pub limits: ParseLimits,
    deadline: Option<Instant>,
    pub(crate) bytes_read: u64,
    pub(crate) files_read: usize,
    pub(crate) nodes: usize,
    pub(crate) alias_nodes: usize,
    pub(crate) scalar_bytes: usize,
}

impl Budget {
    /// A fresh budget; the clock of [`ParseLimits::time`] starts now.
    pub fn new(limits: ParseLimits) -> Self {
        Self {
            limits,
            deadline: limits
                .time
                .and_then(|time| Instant::now().checked_add(time)),
            bytes_read: 0,
            files_read: 0,
            nodes: 0,
            alias_nodes: 0,
            scalar_bytes: 0,
        }
    }

    /// Counts `nodes` nodes holding `bytes` of text against the budget.
    pub(crate) fn spend(&mut self, nodes: usize, bytes: usize) -> Result<(), LimitHit> {
        let nodes = self.nodes.saturating_add(nodes);
        if nodes > self.limits.max_nodes {
            return Err(LimitHit::Nodes(self.limits.max_nodes));
        }
        let bytes = self.scalar_bytes.saturating_add(bytes);
        if bytes > self.limits.max_scalar_bytes {
            return Err(LimitHit::ScalarBytes(self.limits.max_scalar_bytes));
        }
        self.nodes = nodes;
        self.scalar_bytes = bytes;
        Ok(())
    }

    /// Counts a copy of `nodes` nodes holding `bytes` of text that an alias
    /// makes, against the alias limit as well as the others.
    pub(crate) fn spend_alias(&mut self, nodes: usize, bytes: usize) -> Result<(), LimitHit> {
        let alias_nodes = self.alias_nodes.saturating_add(nodes);
        if alias_nodes > self.limits.max_alias_nodes {
            return Err(LimitHit::AliasNodes(self.limits.max_alias_nodes));
        }
        self.spend(nodes, bytes)?;
        self.alias_nodes = alias_nodes;
        Ok(())
    }

    /// Fails once the deadline has passed.
    pub(crate) fn check_time(&self) -> Result<(), LimitHit> {
        match (self.deadline, self.limits.time) {
            (Some(deadline), Some(time)) if Instant::now() >= deadline => Err(LimitHit::Time(time)),
            _ => Ok(()),
        }
    }

    /// How many more bytes the next file may have.
    pub(crate) fn file_allowance(&self) -> u64 {
        self.limits
            .max_file_bytes
            .min(self.limits.max_total_bytes.saturating_sub(self.bytes_read))
    }
}

impl Default for Budget {
    fn default() -> Self {
        Self::new(ParseLimits::default())
    }
}
