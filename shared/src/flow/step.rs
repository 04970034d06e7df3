//! The steps of a flow. A failure names the step it happened in: the name labels log lines and
//! the `Rollbacks` metric, the description completes a message ("… failed while {doing}").

use std::fmt;

/// One step of a flow. Each flow declares its own as constants; the ones every flow shares are
/// here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    name: &'static str,
    doing: &'static str,
    /// Nothing outside the database has been asked to change when this step runs, so a
    /// connection found dead here may be replaced and the attempt run again.
    local: bool,
}

impl Step {
    /// A step that runs before any call outside the database.
    pub const fn local(name: &'static str, doing: &'static str) -> Self {
        Self {
            name,
            doing,
            local: true,
        }
    }

    /// A step that may run after something outside the database changed.
    pub const fn new(name: &'static str, doing: &'static str) -> Self {
        Self {
            name,
            doing,
            local: false,
        }
    }

    pub const BEGIN: Step = Step::local("begin", "opening the database transaction");
    pub const AUTHORIZE: Step = Step::local("authorize", "checking the caller");
    pub const IDEMPOTENCY: Step = Step::new("idempotency", "checking the idempotency key");
    pub const COMMIT: Step = Step::new("commit", "committing");

    pub fn name(self) -> &'static str {
        self.name
    }

    /// What the step does, for messages: "… failed while {doing}".
    pub fn doing(self) -> &'static str {
        self.doing
    }

    pub fn precedes_outside_calls(self) -> bool {
        self.local
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}
