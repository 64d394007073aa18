//! Progress reports to Python, and Ctrl-C, during long jobs.

use pyo3::prelude::*;
use std::time::{Duration, Instant};

/// Passes progress to an optional Python callable `(stage, done, total)` at
/// most every 0.1 s, checking for Ctrl-C at the same time. The first Python
/// error (a raising callback, KeyboardInterrupt) is kept and stops the job.
pub(super) struct Reporter {
    callback: Option<Py<PyAny>>,
    last: Option<Instant>,
    error: Option<PyErr>,
}

impl Reporter {
    pub(super) fn new(callback: Option<Py<PyAny>>) -> Self {
        Reporter {
            callback,
            last: None,
            error: None,
        }
    }

    /// Whether to go on.
    pub(super) fn report(
        &mut self,
        stage: &str,
        done: u64,
        total: Option<u64>,
        always: bool,
    ) -> bool {
        self.report_with(stage, done, total, always)
    }

    /// Like [`Reporter::report`], with any Python-convertible `done`.
    pub(super) fn report_with<T>(
        &mut self,
        stage: &str,
        done: T,
        total: Option<u64>,
        always: bool,
    ) -> bool
    where
        T: for<'py> pyo3::IntoPyObject<'py>,
    {
        if self.error.is_some() {
            return false;
        }
        let due = self
            .last
            .is_none_or(|last| last.elapsed() >= Duration::from_millis(100));
        if !(always || due) {
            return true;
        }
        self.last = Some(Instant::now());
        let outcome = Python::attach(|py| {
            py.check_signals()?;
            match &self.callback {
                Some(callback) => callback.call1(py, (stage, done, total)).map(drop),
                None => Ok(()),
            }
        });
        if let Err(error) = outcome {
            self.error = Some(error);
        }
        self.error.is_none()
    }

    pub(super) fn check(&mut self) -> PyResult<()> {
        self.error.take().map_or(Ok(()), Err)
    }
}
