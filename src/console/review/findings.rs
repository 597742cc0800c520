//! Raising a finding; giving one an owner and a remediation due date;
//! resolving, accepting or reopening one, or closing it in one step when
//! the answer that raised it has changed.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use validator::Validate;

use super::*;
use crate::auth::roles::STAFF;
use crate::console::page::PageError;
use crate::ids::StageKey;
use crate::reviews::{FindingPatch, FindingState, NewFinding, ReviewError};
use crate::validation::FieldError;
use crate::workflow::Severity;

/// A date field (`2026-06-01`) as the end of that day, UTC.
fn date_field(text: Option<&str>, key: &str) -> Result<Option<DateTime<Utc>>, FieldError> {
    match text {
        None => Ok(None),
        Some(text) => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(23, 59, 59))
            .map(|d| Some(d.and_utc()))
            .ok_or_else(|| FieldError::new(key, "is not a date such as 2026-06-01")),
    }
}

/// The new finding form.
#[derive(Debug, Deserialize)]
pub(super) struct FindingFields {
    severity: Option<String>,
    #[serde(default, deserialize_with = "forms::text")]
    text: Option<String>,
    #[serde(default, deserialize_with = "forms::text")]
    stage: Option<String>,
    #[serde(default, deserialize_with = "forms::text")]
    owner: Option<String>,
    /// A date such as `2026-06-01`.
    #[serde(default, deserialize_with = "forms::text")]
    remediation_due: Option<String>,
}

/// `POST /reviews/{id}/findings`.
pub(super) async fn add_finding(
    posted: OnReview<FindingFields>,
) -> Result<HttpResponse, PageError> {
    let OnReview { on, fields, form } = posted;
    if !on.viewer.has_any(STAFF) {
        return Err(PageError::Forbidden(
            "Only reviewers raise findings.".into(),
        ));
    }
    let mut errors = Vec::new();
    let severity = fields.severity.as_deref().and_then(Severity::parse);
    if severity.is_none() {
        errors.push(FieldError::new("severity", "is required"));
    }
    let remediation_due = date_field(fields.remediation_due.as_deref(), "remediation_due")
        .unwrap_or_else(|e| {
            errors.push(e);
            None
        });
    let stage = fields.stage.and_then(|s| StageKey::parse(&s).ok());
    let input = NewFinding {
        severity,
        text: fields.text,
        stage,
        owner: fields.owner,
        remediation_due,
    };
    if let Err(invalid) = input.validate() {
        errors.extend(FieldError::from_validator(&invalid));
    }
    let result = if errors.is_empty() {
        on.viewer
            .state
            .reviews
            .add_finding(on.call(), input)
            .await
            .map(drop)
    } else {
        Err(ReviewError::Invalid(errors))
    };
    on.outcome(result, "finding", "finding", Some(form.typed()))
        .await
}

/// The form of an open finding: its owner and remediation due date, or
/// resolve or accept it, or close it because its answer changed.
#[derive(Debug, Deserialize)]
pub(super) struct FindingPatchFields {
    state: Option<String>,
    /// `answer_changed`: close it because the answer that raised it changed.
    close: Option<String>,
    #[serde(default, deserialize_with = "forms::text")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "forms::text")]
    remediation_due: Option<String>,
    #[serde(default, deserialize_with = "forms::text")]
    resolution: Option<String>,
}

/// `POST /reviews/{id}/findings/{finding}`: set the owner and due date,
/// resolve, accept or reopen, or close because the answer changed.
pub(super) async fn update_finding(
    path: web::Path<(String, String)>,
    posted: OnReview<FindingPatchFields>,
) -> Result<HttpResponse, PageError> {
    let OnReview { on, fields, .. } = posted;
    if !on.viewer.has_any(STAFF) {
        return Err(PageError::Forbidden(
            "Only reviewers change findings.".into(),
        ));
    }
    let finding = path.1.clone();
    let form = format!("finding-{finding}");
    let reviews = &on.viewer.state.reviews;
    if fields.close.as_deref() == Some("answer_changed") {
        let result = reviews.close_answer_changed(on.call(), finding).await;
        return on.outcome(result, "finding-closed", &form, None).await;
    }
    let kept = [
        ("owner", &fields.owner),
        ("remediation_due", &fields.remediation_due),
        ("resolution", &fields.resolution),
    ]
    .into_iter()
    .map(|(k, v)| {
        (
            k.to_owned(),
            serde_json::Value::from(v.clone().unwrap_or_default()),
        )
    })
    .collect();
    let mut errors = Vec::new();
    let remediation_due = date_field(fields.remediation_due.as_deref(), "remediation_due")
        .unwrap_or_else(|e| {
            errors.push(e);
            None
        });
    let patch = FindingPatch {
        state: fields.state.as_deref().and_then(FindingState::parse),
        severity: None,
        owner: fields.owner,
        remediation_due,
        resolution: fields.resolution,
    };
    if let Err(invalid) = patch.validate() {
        errors.extend(FieldError::from_validator(&invalid));
    }
    let result = if errors.is_empty() {
        reviews
            .update_finding(on.call(), finding, patch)
            .await
            .map(drop)
    } else {
        Err(ReviewError::Invalid(errors))
    };
    on.outcome(result, "finding", &form, Some(kept)).await
}
