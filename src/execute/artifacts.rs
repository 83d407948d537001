//! Hashing declared artifacts (streaming blake3).

use std::fs::File;
use std::io;
use std::path::Path;

use dag_state::ArtifactRecord;

/// blake3 hex digest and size of a file, streamed.
pub fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let size = io::copy(&mut file, &mut hasher)?;
    Ok((hasher.finalize().to_hex().to_string(), size))
}

/// A declared artifact: name, path as declared (relative), absolute path.
#[derive(Debug, Clone)]
pub struct Declared {
    pub name: String,
    pub path: String,
    pub absolute: std::path::PathBuf,
}

/// Hashes each declared artifact; fails naming the first that is missing.
pub fn hash_all(declared: &[Declared], kind: &str) -> Result<Vec<ArtifactRecord>, String> {
    declared
        .iter()
        .map(|artifact| {
            let (digest, size) =
                hash_file(&artifact.absolute).map_err(|error| match error.kind() {
                    io::ErrorKind::NotFound => format!(
                        "{kind} `{}` does not exist: `{}`",
                        artifact.name, artifact.path
                    ),
                    _ => format!(
                        "cannot read {kind} `{}` at `{}`: {error}",
                        artifact.name, artifact.path
                    ),
                })?;
            Ok(ArtifactRecord {
                name: artifact.name.clone(),
                path: artifact.path.clone(),
                digest,
                size,
            })
        })
        .collect()
}
