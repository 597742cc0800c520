//! The workflow the engine's and the file format's tests share: five
//! stages (two of them only for high tiers), a questionnaire each, risk
//! rules, escalations and controls.

use super::{Workflow, file};

/// The workflow's TOML source.
pub const WORKFLOW: &str = include_str!("fixture.toml");

/// The workflow, parsed.
pub fn workflow() -> Workflow {
    file::parse("fixture.toml", WORKFLOW, None).expect("test workflow is valid")
}
