//! Actions on a whole review: start, raise the tier, withdraw, re-review.

use actix_web::{HttpResponse, web};

use super::*;
use crate::audit::Actor;
use crate::console::page::{self, Form, PageError, Viewer};
use crate::console::words;
use crate::reviews::{NewReview, ReviewError, STARTERS};
use crate::validation::FieldError;
use crate::workflow::Tier;
use crate::workflow::engine::Action;

/// `POST /reviews`: start a review of a provider or model.
pub(super) async fn start(viewer: Viewer, form: Form) -> Result<HttpResponse, PageError> {
    viewer.check_csrf(form.get("csrf"))?;
    if !viewer.has_any(STARTERS) {
        return Err(PageError::Forbidden(
            "Only a vendor manager or an admin starts a review.".into(),
        ));
    }
    let input = NewReview {
        provider: form.text("provider"),
        model: form.text("model"),
        workflow: form.text("workflow"),
    };
    let back = match (&input.provider, &input.model) {
        (Some(p), Some(m)) => format!("/providers/{p}/models/{m}"),
        (Some(p), None) => format!("/providers/{p}"),
        _ => "/providers".to_owned(),
    };
    let state = &viewer.state;
    let principal = &viewer.session.principal;
    let result = state
        .reviews
        .start(
            Actor::person(principal, None),
            principal.email.clone(),
            input,
            state.clock.now(),
        )
        .await;
    match result {
        Ok(summary) => Ok(page::redirect(&format!(
            "/reviews/{}?done=started",
            summary.id
        ))),
        Err(error) => {
            let (notice, _) = words::review_refusal(&error, &back);
            Err(PageError::Refused(notice.text, back))
        }
    }
}

/// `POST /reviews/{id}/tier`.
pub(super) async fn raise_tier(
    viewer: Viewer,
    path: web::Path<String>,
    form: Form,
) -> Result<HttpResponse, PageError> {
    viewer.check_csrf(form.get("csrf"))?;
    let id = review_id(&path)?;
    let Some(tier) = form.get("tier").and_then(Tier::parse) else {
        let result: Result<(), ReviewError> = Err(ReviewError::Invalid(vec![FieldError::new(
            "tier",
            "is required",
        )]));
        return outcome(&viewer, &id, result, "tier", "tier", None).await;
    };
    let action = Action::RaiseTier {
        tier,
        reason: form.text("reason").unwrap_or_default(),
    };
    let result = viewer
        .state
        .reviews
        .act(call(&viewer, &id, &form), caller(&viewer), action)
        .await;
    outcome(&viewer, &id, result, "tier", "tier", None).await
}

/// `POST /reviews/{id}/withdraw`.
pub(super) async fn withdraw(
    viewer: Viewer,
    path: web::Path<String>,
    form: Form,
) -> Result<HttpResponse, PageError> {
    viewer.check_csrf(form.get("csrf"))?;
    let id = review_id(&path)?;
    let action = Action::Withdraw {
        reason: form.text("reason").unwrap_or_default(),
    };
    let result = viewer
        .state
        .reviews
        .act(call(&viewer, &id, &form), caller(&viewer), action)
        .await;
    outcome(&viewer, &id, result, "withdrawn", "withdraw", None).await
}

/// `POST /reviews/{id}/re-review`.
pub(super) async fn re_review(
    viewer: Viewer,
    path: web::Path<String>,
    form: Form,
) -> Result<HttpResponse, PageError> {
    viewer.check_csrf(form.get("csrf"))?;
    let id = review_id(&path)?;
    if !viewer.has_any(STARTERS) {
        return Err(PageError::Forbidden(
            "Only a vendor manager or an admin opens a re-review.".into(),
        ));
    }
    let state = &viewer.state;
    let result = state
        .reviews
        .re_review(
            id.clone(),
            Actor::person(&viewer.session.principal, None),
            state.clock.now(),
            None,
        )
        .await;
    match result {
        Ok(summary) => Ok(page::redirect(&format!(
            "/reviews/{}?done=started",
            summary.id
        ))),
        Err(error) => outcome::<()>(&viewer, &id, Err(error), "started", "re-review", None).await,
    }
}
