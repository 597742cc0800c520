//! Input problems as the domain states them: a field (the JSON path of the
//! input, or a question id) and what is wrong with it. The HTTP edge renders
//! them as the `errors` of a validation problem; nothing here knows HTTP.

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
