//! Test harness for running the `ship-edge` binary: a fresh temporary directory per test, a
//! command builder that runs in it, and failures that dump the command, working directory,
//! files, stdout and stderr.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh, empty directory for one test, removed when dropped.
pub struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    /// A new directory whose name starts with the test's name.
    pub fn new(test: &str) -> Dir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("ship-edge-{test}-"))
            .tempdir()
            .unwrap();
        Dir { dir }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the directory.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `bytes` to `name` inside the directory and returns its path.
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// File names in the directory, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A `ship-edge` command running in this directory.
    pub fn command(&self) -> TestCommand {
        let mut cmd = binary_command(env!("CARGO_BIN_EXE_ship-edge"));
        cmd.current_dir(self.path());
        TestCommand {
            cmd,
            dir: self.path().to_path_buf(),
        }
    }
}

/// Largest absolute difference between two equally long slices (0 for empty ones).
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "slices differ in length");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max)
}

/// Cargo's runner for aarch64 builds, set when testing them on another machine (qemu-user).
const AARCH64_RUNNER: &str = "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER";

/// A command for the binary under test. An aarch64 test binary run under qemu-user spawns the
/// aarch64 `ship-edge` through the same runner: a child process is not emulated by itself.
fn binary_command(bin: &str) -> Command {
    let runner = std::env::var(AARCH64_RUNNER)
        .ok()
        .filter(|_| cfg!(target_arch = "aarch64"));
    let mut words = runner.iter().flat_map(|r| r.split_whitespace());
    match words.next() {
        Some(program) => {
            let mut cmd = Command::new(program);
            cmd.args(words).arg(bin);
            cmd
        }
        None => Command::new(bin),
    }
}

/// A `ship-edge` invocation.
pub struct TestCommand {
    cmd: Command,
    dir: PathBuf,
}

impl TestCommand {
    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut TestCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Sets an environment variable of the child.
    pub fn env(&mut self, key: &str, value: &str) -> &mut TestCommand {
        self.cmd.env(key, value);
        self
    }

    /// Adds a flag and its value.
    pub fn arg_pair(&mut self, flag: &str, value: impl AsRef<std::ffi::OsStr>) -> &mut TestCommand {
        self.cmd.arg(flag).arg(value);
        self
    }

    /// The underlying command, e.g. to pipe its stdin.
    pub fn command_mut(&mut self) -> &mut Command {
        &mut self.cmd
    }

    /// Runs, expecting success; returns stdout.
    pub fn stdout(&mut self) -> String {
        let out = self.output();
        if !out.status.success() {
            panic!("expected success\n{}", self.report(&out));
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs, expecting exit code `code`; returns stderr.
    pub fn fails_with(&mut self, code: i32) -> String {
        let out = self.output();
        if out.status.code() != Some(code) {
            panic!("expected exit code {code}\n{}", self.report(&out));
        }
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Runs and returns the raw output.
    pub fn output(&mut self) -> Output {
        self.cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", self.cmd))
    }

    /// Command, working directory, files, exit status, stdout and stderr, for a failure message.
    pub fn report(&self, out: &Output) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "command: {:?}", self.cmd);
        let _ = writeln!(s, "cwd: {}", self.dir.display());
        let mut files: Vec<String> = std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        let _ = writeln!(s, "files: {files:?}");
        let _ = writeln!(s, "status: {}", out.status);
        let _ = writeln!(s, "stdout:\n{}", String::from_utf8_lossy(&out.stdout));
        let _ = writeln!(s, "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
        s
    }
}

/// The TNO sample pair directory: `samples/tno` of this repository, else `../shared/data/ivif/tno`.
/// `None` (the caller skips with a printed reason) when neither exists.
pub fn tno_dir() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        root.join("samples/tno"),
        root.join("../shared/data/ivif/tno"),
    ]
    .into_iter()
    .find(|d| d.join("ir/01.png").is_file() && d.join("vi/01.png").is_file())
}

/// The SHIP colour conventions restated independently of the library, for expected values.
pub mod reference {
    /// RGB -> [Y, Cr, Cb].
    pub fn ycrcb([r, g, b]: [f32; 3]) -> [f32; 3] {
        let y = 0.299 * r + 0.587 * g + 0.114 * b;
        [y, 0.713 * (r - y) + 0.5, 0.564 * (b - y) + 0.5]
    }

    /// [Y, Cr, Cb] -> RGB, clamped to [0, 1].
    pub fn rgb([y, cr, cb]: [f32; 3]) -> [f32; 3] {
        let (cr, cb) = (cr - 0.5, cb - 0.5);
        [y + 1.403 * cr, y - 0.714 * cr - 0.344 * cb, y + 1.773 * cb].map(|v| v.clamp(0.0, 1.0))
    }
}
