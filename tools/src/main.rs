//! `ship-tools`: thin CLI over the ship-tools library.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    keep_freed_buffers();
    inline_candle_elementwise();
    die_quietly_on_closed_pipe();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Rust ignores SIGPIPE, so `println!` into a closed pipe (`ship-tools info | head`) panics.
/// The default action ends the process quietly, as for any Unix filter; writes to files are
/// unaffected.
#[cfg(unix)]
fn die_quietly_on_closed_pipe() {
    // SAFETY: resets one signal's disposition before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn die_quietly_on_closed_pipe() {}

/// candle allocates every large tensor (each gradient of a training step) fresh, and glibc
/// serves blocks above its mmap threshold with `mmap` and unmaps them on free, so every step
/// page-faults its whole working set again: about 19% of a probe step on 2 cores, and raising
/// the thresholds cut the step from 1057 to 825 ms (issue 13). Freed blocks then stay in the
/// heap and are reused.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_buffers() {
    // SAFETY: mallopt only tunes the allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// candle runs element-wise ops and reductions of 64k+ elements on its own "barrier pool",
/// whose workers and caller busy-wait for each other; our conv kernels run on rayon's pool.
/// On a 2-core machine the two pools fight for the cores: the spin-waits were 55% of an `rt`
/// training step's CPU time, and one candle thread (no barrier pool: element-wise ops are
/// memory-bound anyway) made `rt` steps 2.8x and `edge` steps 2.1x faster on a loaded machine,
/// with identical losses. A user's own `CANDLE_NUM_THREADS` wins.
fn inline_candle_elementwise() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: called first thing in main, before any other thread exists.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_buffers() {}
