//! The tasks a SHIP model can declare in its `task` metadata entry. Tensor names and
//! metadata keys are spelled once, in [`meta`].

use std::fmt;
use std::str::FromStr;

use super::meta;

/// What a model fuses (the value of its [`meta::TASK`] entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Task {
    /// Infrared + visible image fusion (`task = ivif`).
    Ivif,
    /// Pan-sharpening: multispectral + panchromatic (`task = pansharpen`).
    Pansharpen,
}

impl Task {
    /// The value of the `task` metadata entry.
    ///
    /// ```
    /// use ship_edge::Task;
    /// assert_eq!(Task::Ivif.as_str(), "ivif");
    /// assert_eq!("pansharpen".parse::<Task>().unwrap(), Task::Pansharpen);
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Ivif => meta::TASK_IVIF,
            Task::Pansharpen => meta::TASK_PANSHARPEN,
        }
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `task` value that names no known [`Task`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown task `{0}` (known: {ivif}, {pan})", ivif = meta::TASK_IVIF, pan = meta::TASK_PANSHARPEN)]
pub struct UnknownTask(pub String);

impl FromStr for Task {
    type Err = UnknownTask;
    fn from_str(s: &str) -> Result<Task, UnknownTask> {
        [Task::Ivif, Task::Pansharpen]
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownTask(s.to_string()))
    }
}
