//! Actions on a whole review: start, raise the tier, withdraw, re-review.

use actix_web::HttpResponse;

use super::*;
use crate::auth::roles::MANAGERS;
use crate::console::page::{self, PageError};
use crate::console::words;
use crate::reviews::{NewReview, ReviewError};
use crate::validation::FieldError;
use crate::workflow::Tier;
use crate::workflow::engine::Action;

/// The start form: what to review, under which workflow.
#[derive(Debug, Deserialize)]
pub(super) struct StartFields {
    #[serde(default, deserialize_with = "forms::text")]
    provider: Option<String>,
    #[serde(default, deserialize_with = "forms::text")]
    model: Option<String>,
    #[serde(default, deserialize_with = "forms::text")]
    workflow: Option<String>,
}

/// `POST /reviews`: start a review of a provider or model.
pub(super) async fn start(posted: Posted<StartFields>) -> Result<HttpResponse, PageError> {
    let Posted { viewer, fields, .. } = posted;
    if !viewer.has_any(MANAGERS) {
        return Err(PageError::Forbidden(
            "Only a vendor manager or an admin starts a review.".into(),
        ));
    }
    let input = NewReview {
        provider: fields.provider,
        model: fields.model,
        workflow: fields.workflow,
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
            viewer.actor(),
            principal.email.clone(),
            input,
            state.clock.now(),
        )
        .await;
    match result {
        Ok(summary) => Ok(started(&summary)),
        Err(error) => {
            let (notice, _) = words::review_refusal(&error, &back);
            Err(PageError::Refused(notice.text, back))
        }
    }
}

/// On to the page of a review just started.
fn started(summary: &ReviewSummary) -> HttpResponse {
    page::redirect(&format!("/reviews/{}?done=started", summary.id))
}

/// The tier form.
#[derive(Debug, Deserialize)]
pub(super) struct TierFields {
    tier: Option<String>,
    #[serde(default, deserialize_with = "forms::text")]
    reason: Option<String>,
}

/// `POST /reviews/{id}/tier`.
pub(super) async fn raise_tier(posted: OnReview<TierFields>) -> Result<HttpResponse, PageError> {
    let OnReview { on, fields, .. } = posted;
    let Some(tier) = fields.tier.as_deref().and_then(Tier::parse) else {
        let result: Result<(), ReviewError> = Err(ReviewError::Invalid(vec![FieldError::new(
            "tier",
            "is required",
        )]));
        return on.outcome(result, "tier", "tier", None).await;
    };
    let action = Action::RaiseTier {
        tier,
        reason: fields.reason.unwrap_or_default(),
    };
    let result = on.act(action).await;
    on.outcome(result, "tier", "tier", None).await
}

/// A form that gives only a reason.
#[derive(Debug, Deserialize)]
pub(super) struct ReasonFields {
    #[serde(default, deserialize_with = "forms::text")]
    reason: Option<String>,
}

/// `POST /reviews/{id}/withdraw`.
pub(super) async fn withdraw(posted: OnReview<ReasonFields>) -> Result<HttpResponse, PageError> {
    let OnReview { on, fields, .. } = posted;
    let action = Action::Withdraw {
        reason: fields.reason.unwrap_or_default(),
    };
    let result = on.act(action).await;
    on.outcome(result, "withdrawn", "withdraw", None).await
}

/// `POST /reviews/{id}/re-review`.
pub(super) async fn re_review(posted: OnReview<NoFields>) -> Result<HttpResponse, PageError> {
    let OnReview { on, .. } = posted;
    if !on.viewer.has_any(MANAGERS) {
        return Err(PageError::Forbidden(
            "Only a vendor manager or an admin opens a re-review.".into(),
        ));
    }
    let state = &on.viewer.state;
    let result = state
        .reviews
        .re_review(on.id.clone(), on.viewer.actor(), state.clock.now(), None)
        .await;
    match result {
        Ok(summary) => Ok(started(&summary)),
        Err(error) => {
            on.outcome::<()>(Err(error), "started", "re-review", None)
                .await
        }
    }
}
