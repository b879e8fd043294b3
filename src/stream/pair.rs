//! Pairing IR and visible frames by timestamp: nearest within a tolerance, else the older frame
//! is dropped (and counted). Pure logic on the heads of the two queues, so it is tested
//! without threads.

use std::collections::VecDeque;
use std::time::Duration;

/// Anything with a capture time.
pub trait Stamped {
    /// The time pairing compares.
    fn time(&self) -> Duration;
}

/// Which stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The infrared camera.
    Ir = 0,
    /// The visible camera.
    Vis = 1,
}

impl Side {
    /// Both, in index order.
    pub const BOTH: [Side; 2] = [Side::Ir, Side::Vis];

    /// `"ir"` or `"vis"`.
    pub fn name(self) -> &'static str {
        match self {
            Side::Ir => "ir",
            Side::Vis => "vis",
        }
    }
}

/// What to do with the queue heads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The two heads form a pair.
    Pair,
    /// Drop this side's head: it has no partner within the tolerance (or a later frame of the
    /// same side is a closer partner).
    Drop(Side),
    /// Wait for more frames.
    Wait,
    /// No pair can be formed any more: a side ended and is empty.
    End,
}

/// Decides on the heads of `queues` (`[ir, vis]`); `closed` says which sides will not get
/// more frames.
pub fn decide<T: Stamped>(
    queues: &[VecDeque<T>; 2],
    closed: [bool; 2],
    tolerance: Duration,
) -> Decision {
    let (Some(ir), Some(vis)) = (queues[0].front(), queues[1].front()) else {
        let ended = (0..2).any(|i| closed[i] && queues[i].is_empty());
        return if ended { Decision::End } else { Decision::Wait };
    };
    let (ti, tv) = (ir.time(), vis.time());
    let gap = ti.abs_diff(tv);
    if gap > tolerance {
        return Decision::Drop(if ti < tv { Side::Ir } else { Side::Vis });
    }
    // The older head may have a successor that fits the newer head better.
    let (older, newer_time) = if ti <= tv {
        (Side::Ir, tv)
    } else {
        (Side::Vis, ti)
    };
    if let Some(next) = queues[older as usize].get(1)
        && next.time().abs_diff(newer_time) < gap
    {
        return Decision::Drop(older);
    }
    Decision::Pair
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Stamped for u64 {
        fn time(&self) -> Duration {
            Duration::from_millis(*self)
        }
    }

    /// Runs the decisions to the end; returns the pairs and the dropped counts.
    fn run(ir: &[u64], vis: &[u64], tol_ms: u64) -> (Vec<(u64, u64)>, [usize; 2]) {
        let mut q = [
            ir.iter().copied().collect::<VecDeque<_>>(),
            vis.iter().copied().collect(),
        ];
        let (mut pairs, mut dropped) = (Vec::new(), [0; 2]);
        loop {
            match decide(&q, [true, true], Duration::from_millis(tol_ms)) {
                Decision::Pair => {
                    let (a, b) = (q[0].pop_front().unwrap(), q[1].pop_front().unwrap());
                    pairs.push((a, b));
                }
                Decision::Drop(s) => {
                    q[s as usize].pop_front();
                    dropped[s as usize] += 1;
                }
                Decision::End => return (pairs, dropped),
                Decision::Wait => panic!("closed queues never wait"),
            }
        }
    }

    #[test]
    fn equal_rates_pair_one_to_one() {
        let t: Vec<u64> = (0..5).map(|i| i * 33).collect();
        let (pairs, dropped) = run(&t, &t, 10);
        assert_eq!(pairs.len(), 5);
        assert_eq!(dropped, [0, 0]);
    }

    #[test]
    fn a_faster_stream_pairs_its_nearest_frames() {
        // IR at 9 fps (Lepton), visible at 30 fps: each IR frame takes the nearest visible one.
        let ir: Vec<u64> = (0..4).map(|i| i * 111).collect();
        let vis: Vec<u64> = (0..14).map(|i| i * 33).collect();
        let (pairs, dropped) = run(&ir, &vis, 20);
        assert_eq!(pairs, vec![(0, 0), (111, 99), (222, 231), (333, 330)]);
        assert_eq!(dropped[0], 0);
        // 14 visible frames: 4 paired, 7 dropped between them, 3 left after the last IR frame.
        assert_eq!(dropped[1], 7);
    }

    #[test]
    fn frames_without_a_partner_are_dropped() {
        let (pairs, dropped) = run(&[0, 100, 200], &[5, 205], 20);
        assert_eq!(pairs, vec![(0, 5), (200, 205)]);
        assert_eq!(dropped, [1, 0]);
    }

    #[test]
    fn open_queues_wait_and_ended_ones_end() {
        let q: [VecDeque<u64>; 2] = [VecDeque::from([0]), VecDeque::new()];
        let tol = Duration::from_millis(10);
        assert_eq!(decide(&q, [false, false], tol), Decision::Wait);
        assert_eq!(decide(&q, [false, true], tol), Decision::End);
    }
}
