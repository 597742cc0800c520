//! Input problems as the domain states them: a field (the JSON path of the
//! input, or a question id) and what is wrong with it. The HTTP edge renders
//! them as the `errors` of a validation problem; nothing here knows HTTP.
//! Also the two rules on the characters of text a caller sends: one line
//! (names, addresses, ids, reasons) and free text (notes, comments, answers).

use serde::Serialize;
use utoipa::ToSchema;

/// One input problem: `field` is the JSON path of the input (or a question id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// One problem per failed rule of validator's (nested) errors, with
    /// JSON paths such as `contacts[1].email`, sorted by field.
    pub fn from_validator(errors: &validator::ValidationErrors) -> Vec<FieldError> {
        let mut out = Vec::new();
        flatten("", errors, &mut out);
        out.sort_by(|a, b| a.field.cmp(&b.field));
        out
    }
}

fn flatten(prefix: &str, errors: &validator::ValidationErrors, out: &mut Vec<FieldError>) {
    use validator::ValidationErrorsKind;
    for (field, kind) in errors.errors() {
        let path = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                for error in list {
                    let message = error
                        .message
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_else(|| describe(error));
                    out.push(FieldError::new(path.clone(), message));
                }
            }
            ValidationErrorsKind::Struct(inner) => flatten(&path, inner, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    flatten(&format!("{path}[{index}]"), inner, out);
                }
            }
        }
    }
}

/// Whether a free text may not hold `c`: the C0 and C1 control characters
/// (NUL among them) and DEL, but for tab and the line breaks, which text
/// written by people carries.
pub fn is_foreign_to_text(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// Whether a single line of text (a name, an address, an id, a reason) may
/// not hold `c`: every control character, tab and line breaks included; the
/// Unicode line and paragraph separators; and the bidirectional embeddings,
/// overrides and isolates, which make a name read otherwise than it is
/// stored (U+202A..U+202E, U+2066..U+2069).
pub fn is_foreign_to_line(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// What is wrong with `text` as one line, if anything.
pub fn line_fault(text: &str) -> Option<String> {
    text.chars().find(|c| is_foreign_to_line(*c)).map(|c| {
        format!(
            "must be one line, without control characters (holds U+{:04X})",
            c as u32
        )
    })
}

/// What is wrong with `text` as free text, if anything.
pub fn text_fault(text: &str) -> Option<String> {
    text.chars().find(|c| is_foreign_to_text(*c)).map(|c| {
        format!(
            "must not contain control characters (holds U+{:04X})",
            c as u32
        )
    })
}

/// validator's form of [`line_fault`], for `#[validate(custom(...))]`.
pub fn one_line(text: &str) -> Result<(), validator::ValidationError> {
    match line_fault(text) {
        None => Ok(()),
        Some(message) => {
            Err(validator::ValidationError::new("control").with_message(message.into()))
        }
    }
}

/// A time a caller sends must fall in the years 1 to 9999, the years RFC
/// 3339 writes: chrono reads years up to 262,143 either side of zero, which
/// PostgreSQL cannot store (SQLite stores them as text), nor any date
/// arithmetic needs.
pub fn ordinary_time(at: &chrono::DateTime<chrono::Utc>) -> Result<(), validator::ValidationError> {
    use chrono::Datelike;
    if (1..=9999).contains(&at.year()) {
        return Ok(());
    }
    Err(validator::ValidationError::new("range")
        .with_message("must be a time in the years 1 to 9999".into()))
}

fn describe(error: &validator::ValidationError) -> String {
    let param = |name: &str| error.params.get(name).map(|v| v.to_string());
    match error.code.as_ref() {
        "required" => "is required".into(),
        "email" => "is not a valid email address".into(),
        "url" => "is not a valid URL".into(),
        "length" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be {min} to {max} characters long"),
            (Some(min), None) => format!("must be at least {min} characters long"),
            (None, Some(max)) => format!("must be at most {max} characters long"),
            (None, None) => "has the wrong length".into(),
        },
        "range" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be between {min} and {max}"),
            _ => "is out of range".into(),
        },
        code => format!("is invalid ({code})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_refuses_controls_separators_and_bidi_overrides() {
        for bad in [
            "a\u{1}b",
            "a\tb",
            "a\nb",
            "a\u{7f}",
            "a\u{85}",
            "a\u{2028}b",
            "\u{202E}gnp.exe",
        ] {
            assert!(line_fault(bad).is_some(), "{bad:?}");
        }
        for good in ["Anthropic", "Zoë Müller", "שלום", "security@example.com"] {
            assert_eq!(line_fault(good), None, "{good:?}");
        }
    }

    #[test]
    fn times_are_in_the_years_rfc_3339_writes() {
        let at = |text: &str| text.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        assert!(ordinary_time(&at("2030-01-01T00:00:00Z")).is_ok());
        assert!(ordinary_time(&at("9999-12-31T23:59:59Z")).is_ok());
        assert!(ordinary_time(&at("-262143-01-01T00:00:00Z")).is_err());
        assert!(ordinary_time(&at("+262142-12-31T23:59:59Z")).is_err());
        assert!(ordinary_time(&at("0000-01-01T00:00:00Z")).is_err());
    }

    #[test]
    fn free_text_keeps_tabs_and_line_breaks() {
        assert_eq!(text_fault("Line one.\r\n\tLine two.\u{2028}"), None);
        for bad in ["a\u{0}b", "a\u{1b}[31m", "a\u{c}", "a\u{7f}", "a\u{9f}"] {
            assert!(text_fault(bad).is_some(), "{bad:?}");
        }
    }
}
