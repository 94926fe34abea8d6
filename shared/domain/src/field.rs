//! One problem with one field: the error shape every validator in callfleet returns (requests,
//! campaigns, voice session options), so a caller gets every problem at once, named by path.

use serde::{Deserialize, Serialize};

/// One problem with one field.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema,
)]
pub struct FieldError {
    /// Dotted path of the field, e.g. `session_options.tts.voice`; `(body)` for the whole body.
    pub field: String,
    /// What is wrong, in words.
    pub problem: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

/// Join field errors into one line, for dead-letter reasons and summaries.
pub fn describe(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
