//! A small cache of optimised tract plans keyed by frame size, so a stream of same-sized
//! frames plans once.

use std::sync::Mutex;

use tract_onnx::prelude::{Arc, TypedRunnableModel};

/// How many frame sizes keep their plan; the least recently used one is dropped beyond that.
pub(crate) const PLAN_CACHE_SIZE: usize = 4;

/// (width, height).
type Key = (usize, usize);

/// Most recently used first.
#[derive(Debug, Default)]
pub(crate) struct PlanCache {
    entries: Mutex<Vec<(Key, Arc<TypedRunnableModel>)>>,
}

impl PlanCache {
    /// The plan for `key`, built with `build` on a miss. The lock is held while building so
    /// two threads asking for the same new size plan it once.
    pub(crate) fn get_or_build<E>(
        &self,
        key: Key,
        build: impl FnOnce() -> Result<Arc<TypedRunnableModel>, E>,
    ) -> Result<Arc<TypedRunnableModel>, E> {
        // A panic while planning leaves the list intact: recover it rather than propagate.
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pos) = entries.iter().position(|(k, _)| *k == key) {
            let entry = entries.remove(pos);
            let plan = entry.1.clone();
            entries.insert(0, entry);
            return Ok(plan);
        }
        let plan = build()?;
        entries.insert(0, (key, plan.clone()));
        entries.truncate(PLAN_CACHE_SIZE);
        Ok(plan)
    }

    /// The cached sizes, most recently used first.
    pub(crate) fn sizes(&self) -> Vec<Key> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, _)| *k)
            .collect()
    }
}
