//! Raising a finding and resolving, accepting or reopening one.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use validator::Validate;

use super::*;
use crate::console::page::{Form, PageError, Viewer};
use crate::ids::StageKey;
use crate::reviews::{FindingPatch, FindingState, NewFinding, READERS, ReviewError};
use crate::validation::FieldError;
use crate::workflow::Severity;

/// A date field (`2026-06-01`) as the end of that day, UTC.
fn date_field(form: &Form, key: &str) -> Result<Option<DateTime<Utc>>, FieldError> {
    match form.text(key) {
        None => Ok(None),
        Some(text) => chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(23, 59, 59))
            .map(|d| Some(d.and_utc()))
            .ok_or_else(|| FieldError::new(key, "is not a date such as 2026-06-01")),
    }
}

/// `POST /reviews/{id}/findings`.
pub(super) async fn add_finding(
    viewer: Viewer,
    path: web::Path<String>,
    form: Form,
) -> Result<HttpResponse, PageError> {
    viewer.check_csrf(form.get("csrf"))?;
    let id = review_id(&path)?;
    if !viewer.has_any(READERS) {
        return Err(PageError::Forbidden(
            "Only reviewers raise findings.".into(),
        ));
    }
    let mut errors = Vec::new();
    let severity = form.get("severity").and_then(Severity::parse);
    if severity.is_none() {
        errors.push(FieldError::new("severity", "is required"));
    }
    let remediation_due = date_field(&form, "remediation_due").unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    let stage = form.text("stage").and_then(|s| StageKey::parse(&s).ok());
    let input = NewFinding {
        severity,
        text: form.text("text"),
        stage,
        owner: form.text("owner"),
        remediation_due,
    };
    if let Err(invalid) = input.validate() {
        errors.extend(FieldError::from_validator(&invalid));
    }
    let result = if errors.is_empty() {
        viewer
            .state
            .reviews
            .add_finding(call(&viewer, &id, &form), input)
            .await
            .map(drop)
    } else {
        Err(ReviewError::Invalid(errors))
    };
    outcome(&viewer, &id, result, "finding", "finding", None).await
}

/// `POST /reviews/{id}/findings/{finding}`: resolve, accept or reopen.
pub(super) async fn update_finding(
    viewer: Viewer,
    path: web::Path<(String, String)>,
    form: Form,
) -> Result<HttpResponse, PageError> {
    viewer.check_csrf(form.get("csrf"))?;
    let id = review_id(&path.0)?;
    if !viewer.has_any(READERS) {
        return Err(PageError::Forbidden(
            "Only reviewers change findings.".into(),
        ));
    }
    let mut errors = Vec::new();
    let remediation_due = date_field(&form, "remediation_due").unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    let patch = FindingPatch {
        state: form.get("state").and_then(FindingState::parse),
        severity: None,
        owner: form.text("owner"),
        remediation_due,
        resolution: form.text("resolution"),
    };
    let result = if errors.is_empty() {
        viewer
            .state
            .reviews
            .update_finding(call(&viewer, &id, &form), path.1.clone(), patch)
            .await
            .map(drop)
    } else {
        Err(ReviewError::Invalid(errors))
    };
    outcome(&viewer, &id, result, "finding", "findings", None).await
}
