//! Records the commit the binary is built from (`SHIP_EDGE_GIT_SHA`, for `ship-edge bench`
//! reports); `unknown` when building outside a git checkout or without git.

use std::process::Command;

fn main() {
    let sha = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=SHIP_EDGE_GIT_SHA={sha}");
    // A new commit moves HEAD or the branch it points to. Only existing paths are listed: a
    // missing one would rerun this script on every build.
    println!("cargo:rerun-if-changed=build.rs");
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
