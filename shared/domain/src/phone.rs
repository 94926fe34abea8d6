//! Phone numbers normalised to E.164 (`+` then 8 to 15 digits, no leading zero).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A phone number in E.164 form. Only [`PhoneNumber::parse`] makes one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

/// Why a phone number was rejected. The message is shown to API users as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("is empty")]
    Empty,
    #[error(
        "contains {0:?}; only digits, a leading '+', spaces, dots, dashes and parentheses are allowed"
    )]
    BadCharacter(char),
    #[error(
        "is a national number (leading 0) and no country code is configured; send it as +<country code><number>"
    )]
    NationalWithoutCountry,
    #[error("has {0} digits; E.164 numbers have 8 to 15 digits including the country code")]
    BadLength(usize),
    #[error("country code cannot start with 0")]
    LeadingZero,
}

impl PhoneNumber {
    /// Normalise `raw` to E.164.
    ///
    /// Accepts `+61 402 012 298`, `0061402012298`, `tel:+61402012298`, and, as the seed bridge
    /// does, bare international digits (`61402012298`). A national number with a single leading
    /// `0` is completed with `default_country_code` (digits only, e.g. `"61"`) when one is set.
    pub fn parse(raw: &str, default_country_code: Option<&str>) -> Result<Self, PhoneError> {
        let trimmed = raw.trim();
        let trimmed = trimmed.strip_prefix("tel:").unwrap_or(trimmed);
        if trimmed.is_empty() {
            return Err(PhoneError::Empty);
        }
        let mut digits = String::with_capacity(trimmed.len());
        for (i, c) in trimmed.chars().enumerate() {
            match c {
                '0'..='9' => digits.push(c),
                '+' if i == 0 => {}
                ' ' | '-' | '.' | '(' | ')' => {}
                other => return Err(PhoneError::BadCharacter(other)),
            }
        }
        let explicit_plus = trimmed.starts_with('+');
        let international = if explicit_plus {
            digits
        } else if let Some(rest) = digits.strip_prefix("00") {
            rest.to_owned()
        } else if let Some(rest) = digits.strip_prefix('0') {
            match default_country_code {
                Some(cc) => format!("{cc}{rest}"),
                None => return Err(PhoneError::NationalWithoutCountry),
            }
        } else {
            digits
        };
        if international.is_empty() {
            return Err(PhoneError::Empty);
        }
        if !(8..=15).contains(&international.len()) {
            return Err(PhoneError::BadLength(international.len()));
        }
        if international.starts_with('0') {
            return Err(PhoneError::LeadingZero);
        }
        Ok(Self(format!("+{international}")))
    }

    /// A number LiveKit reported (an inbound call's called or calling number): normalised when
    /// it is a valid number, else kept as given (trimmed). Never for user input, which
    /// [`Self::parse`] validates.
    pub fn as_reported(raw: &str) -> Self {
        Self::parse(raw, None).unwrap_or_else(|_| Self(raw.trim().to_owned()))
    }

    /// The E.164 form, `+` included.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with all but the last three digits masked, for logs.
    pub fn masked(&self) -> String {
        let keep = 3.min(self.0.len());
        let (head, tail) = self.0.split_at(self.0.len() - keep);
        format!("+{}{}", "*".repeat(head.len().saturating_sub(1)), tail)
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = PhoneError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value, None)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_the_forms_users_send() {
        for raw in [
            "61402012298",
            "+61402012298",
            "+61 402 012 298",
            "0061402012298",
            "tel:+61-402-012-298",
        ] {
            assert_eq!(
                PhoneNumber::parse(raw, None).map(|p| p.0),
                Ok("+61402012298".into()),
                "{raw}"
            );
        }
        assert_eq!(
            PhoneNumber::parse("0402 012 298", Some("61")).map(|p| p.0),
            Ok("+61402012298".into())
        );
    }

    #[test]
    fn rejects_with_a_reason() {
        assert_eq!(PhoneNumber::parse("", None), Err(PhoneError::Empty));
        assert_eq!(
            PhoneNumber::parse("0402012298", None),
            Err(PhoneError::NationalWithoutCountry)
        );
        assert_eq!(
            PhoneNumber::parse("12345", None),
            Err(PhoneError::BadLength(5))
        );
        assert_eq!(
            PhoneNumber::parse("+1234567890123456", None),
            Err(PhoneError::BadLength(16))
        );
        assert_eq!(
            PhoneNumber::parse("+61abc", None),
            Err(PhoneError::BadCharacter('a'))
        );
        assert_eq!(
            PhoneNumber::parse("6140+2012298", None),
            Err(PhoneError::BadCharacter('+'))
        );
        assert_eq!(
            PhoneNumber::parse("+0402012298", None),
            Err(PhoneError::LeadingZero)
        );
    }

    #[test]
    fn masks_all_but_the_tail() {
        let p = PhoneNumber::parse("+61402012298", None).expect("valid");
        assert_eq!(p.masked(), "+********298");
    }
}
