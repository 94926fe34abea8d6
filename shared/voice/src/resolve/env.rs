//! The provider environment and the problems found so far: env lookups (trimmed, blank = unset),
//! provider keys that must be set, and the per-field errors every stage adds to.

use std::collections::HashMap;

use callfleet_domain::field::FieldError;

use crate::config::Secret;

pub(super) struct Resolver<'a> {
    env: &'a HashMap<String, String>,
    pub errors: Vec<FieldError>,
}

/// A given text option, trimmed; blank counts as not given.
pub(super) fn given(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

impl<'a> Resolver<'a> {
    pub fn new(env: &'a HashMap<String, String>) -> Self {
        Self {
            env,
            errors: Vec::new(),
        }
    }

    pub fn err(&mut self, field: &str, problem: impl Into<String>) {
        self.errors.push(FieldError::new(field, problem));
    }

    /// An env variable, trimmed; blank counts as unset.
    pub fn env(&self, key: &str) -> Option<String> {
        given(self.env.get(key).map(String::as_str))
    }

    /// A provider key that must be set; a field error naming `var` (and `what` needs it) if not.
    pub fn key(&mut self, field: &str, var: &str, what: &str) -> Secret {
        match self.env(var) {
            Some(k) => Secret::new(k),
            None => {
                self.err(field, format!("{var} is not set (needed for {what})"));
                Secret::default()
            }
        }
    }
}
