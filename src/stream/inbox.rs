//! The bounded hand-over between the two capture threads and the inference thread: one short
//! queue per side under one lock, so the consumer can pair their heads atomically.
//!
//! Live sources never wait: a full queue drops its oldest frame (the latest frame wins, like
//! `appsink drop=1`). Finite sources (files, pipes) wait for room instead, so an offline run
//! fuses every frame. Memory is bounded either way.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::pair::{self, Decision, Side, Stamped};

/// What a full queue does with a new frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Drop the oldest queued frame (live sources).
    DropOldest,
    /// Wait until the consumer takes one (finite sources).
    Wait,
}

/// How a push went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued with room to spare.
    Queued,
    /// Queued after dropping the oldest frame.
    DroppedOldest,
    /// The inbox was shut down; the frame was discarded.
    ShutDown,
}

/// What [`Inbox::next_pair`] found.
#[derive(Debug)]
pub enum Next<T> {
    /// An (IR, visible) pair.
    Pair(T, T),
    /// Nothing within the timeout.
    Timeout,
    /// No more pairs: a side ended, or the inbox was shut down.
    End,
}

#[derive(Debug)]
struct State<T> {
    queues: [VecDeque<T>; 2],
    closed: [bool; 2],
    shut_down: bool,
    /// Since when each queue has been empty (`None` while it holds frames).
    empty_since: [Option<Instant>; 2],
    /// Frames dropped by the pairing (no partner in time), per side.
    unpaired: [u64; 2],
    /// Frames dropped because a queue was full, per side.
    overflow: [u64; 2],
}

impl<T> State<T> {
    /// Records when queue `i` ran empty.
    fn mark_empty(&mut self, i: usize) {
        if self.queues[i].is_empty() && self.empty_since[i].is_none() {
            self.empty_since[i] = Some(Instant::now());
        }
    }
}

/// Two bounded frame queues, IR and visible.
#[derive(Debug)]
pub struct Inbox<T> {
    state: Mutex<State<T>>,
    changed: Condvar,
    capacity: usize,
}

impl<T: Stamped> Inbox<T> {
    /// Queues of `capacity` frames each (at least 2, so pairing can look one frame ahead).
    pub fn new(capacity: usize) -> Inbox<T> {
        Inbox {
            state: Mutex::new(State {
                queues: [VecDeque::new(), VecDeque::new()],
                closed: [false; 2],
                shut_down: false,
                empty_since: [Some(Instant::now()); 2],
                unpaired: [0; 2],
                overflow: [0; 2],
            }),
            changed: Condvar::new(),
            capacity: capacity.max(2),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panicking thread leaves plain queues behind: keep using them.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame of `side`.
    pub fn push(&self, side: Side, frame: T, when_full: WhenFull) -> Pushed {
        let mut s = self.lock();
        let i = side as usize;
        let mut outcome = Pushed::Queued;
        while s.queues[i].len() >= self.capacity && !s.shut_down {
            match when_full {
                WhenFull::DropOldest => {
                    s.queues[i].pop_front();
                    s.overflow[i] += 1;
                    outcome = Pushed::DroppedOldest;
                }
                WhenFull::Wait => s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner()),
            }
        }
        if s.shut_down {
            return Pushed::ShutDown;
        }
        s.queues[i].push_back(frame);
        s.empty_since[i] = None;
        self.changed.notify_all();
        outcome
    }

    /// Marks `side` as ended: no more frames will come.
    pub fn close(&self, side: Side) {
        self.lock().closed[side as usize] = true;
        self.changed.notify_all();
    }

    /// Stops everything: waiting producers return, [`next_pair`](Inbox::next_pair) ends.
    pub fn shut_down(&self) {
        self.lock().shut_down = true;
        self.changed.notify_all();
    }

    /// The next pair, waiting at most `timeout`.
    pub fn next_pair(&self, tolerance: Duration, timeout: Duration) -> Next<T> {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        loop {
            if s.shut_down {
                return Next::End;
            }
            match pair::decide(&s.queues, s.closed, tolerance) {
                Decision::Pair => {
                    let ir = s.queues[0].pop_front().expect("decided on a head");
                    let vis = s.queues[1].pop_front().expect("decided on a head");
                    s.mark_empty(0);
                    s.mark_empty(1);
                    self.changed.notify_all();
                    return Next::Pair(ir, vis);
                }
                Decision::Drop(side) => {
                    s.queues[side as usize].pop_front();
                    s.unpaired[side as usize] += 1;
                    s.mark_empty(side as usize);
                    self.changed.notify_all();
                }
                Decision::End => return Next::End,
                Decision::Wait => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Next::Timeout;
                    }
                    s = self
                        .changed
                        .wait_timeout(s, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }

    /// Since when `side`'s queue has been empty, `None` while it holds frames: the consumer
    /// is starved of that side from then on (a stall, when it lasts).
    pub fn empty_since(&self, side: Side) -> Option<Instant> {
        self.lock().empty_since[side as usize]
    }

    /// Whether `side` has ended.
    pub fn is_closed(&self, side: Side) -> bool {
        self.lock().closed[side as usize]
    }

    /// (unpaired, overflow) drop counts of `side`.
    pub fn drops(&self, side: Side) -> (u64, u64) {
        let s = self.lock();
        (s.unpaired[side as usize], s.overflow[side as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Debug)]
    struct F(u64);
    impl Stamped for F {
        fn time(&self) -> Duration {
            Duration::from_millis(self.0)
        }
    }

    const TOL: Duration = Duration::from_millis(5);

    #[test]
    fn live_queues_keep_the_latest_frames() {
        let inbox = Inbox::new(2);
        for t in 0..5 {
            inbox.push(Side::Ir, F(t * 10), WhenFull::DropOldest);
        }
        assert_eq!(inbox.drops(Side::Ir), (0, 3));
        inbox.push(Side::Vis, F(40), WhenFull::DropOldest);
        match inbox.next_pair(TOL, Duration::ZERO) {
            // 30 had no partner and was dropped by the pairing; 40 pairs with 40.
            Next::Pair(a, b) => assert_eq!((a.0, b.0), (40, 40)),
            other => panic!("{other:?}"),
        }
        assert_eq!(inbox.drops(Side::Ir), (1, 3));
    }

    #[test]
    fn finite_producers_wait_for_room_and_lose_nothing() {
        let inbox = Arc::new(Inbox::new(2));
        let producers: Vec<_> = Side::BOTH
            .into_iter()
            .map(|side| {
                let inbox = inbox.clone();
                std::thread::spawn(move || {
                    for t in 0..100 {
                        assert_eq!(inbox.push(side, F(t), WhenFull::Wait), Pushed::Queued);
                    }
                    inbox.close(side);
                })
            })
            .collect();
        let mut pairs = 0;
        loop {
            match inbox.next_pair(TOL, Duration::from_secs(5)) {
                Next::Pair(a, b) => {
                    assert_eq!(a.0, b.0);
                    pairs += 1;
                }
                Next::End => break,
                Next::Timeout => panic!("producers stalled"),
            }
        }
        producers.into_iter().for_each(|p| p.join().unwrap());
        assert_eq!(pairs, 100);
    }

    #[test]
    fn shut_down_releases_waiting_producers() {
        let inbox = Arc::new(Inbox::new(2));
        for t in 0..2 {
            inbox.push(Side::Ir, F(t), WhenFull::Wait);
        }
        let waiting = {
            let inbox = inbox.clone();
            std::thread::spawn(move || inbox.push(Side::Ir, F(9), WhenFull::Wait))
        };
        std::thread::sleep(Duration::from_millis(20));
        inbox.shut_down();
        assert_eq!(waiting.join().unwrap(), Pushed::ShutDown);
        assert!(matches!(inbox.next_pair(TOL, Duration::ZERO), Next::End));
    }

    #[test]
    fn an_empty_inbox_times_out() {
        let inbox: Inbox<F> = Inbox::new(2);
        assert!(matches!(
            inbox.next_pair(TOL, Duration::from_millis(10)),
            Next::Timeout
        ));
    }
}
