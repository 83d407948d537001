//! The Python interpreter of the cached test environment (`.ci/python-env`,
//! with scikit-learn, skl2onnx and onnxruntime), created on first use.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::support::repo_root;

pub fn python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let output = Command::new("bash")
            .arg(".ci/python-env")
            .current_dir(repo_root())
            .output()
            .expect("run .ci/python-env");
        assert!(
            output.status.success(),
            ".ci/python-env failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        assert!(path.is_file(), "no interpreter at {}", path.display());
        path
    })
}
