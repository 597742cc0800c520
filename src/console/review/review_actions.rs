//! Actions on a whole review: start, raise the tier, withdraw, re-review.

use actix_web::HttpResponse;

use super::*;
use crate::auth::roles::MANAGERS;
use crate::console::page::{self, PageError};
use crate::console::words;
use crate::reviews::{NewReview, ReviewError};
use crate::validation::FieldError;
use crate::workflow::Tier;
use crate::workflow::engine::{Action, Duty};

/// The start form: what to review, under which workflow; optionally the
/// supplier's contact to invite to every questionnaire, and who answers
/// and who decides each stage (`answer.<stage>`, `decide.<stage>`, read
/// from the form as posted).
#[derive(Debug, Deserialize)]
pub(super) struct StartFields {
    #[serde(default, deserialize_with = "forms::text")]
    provider: Option<String>,
    #[serde(default, deserialize_with = "forms::text")]
    model: Option<String>,
    #[serde(default, deserialize_with = "forms::text")]
    workflow: Option<String>,
    #[serde(default, deserialize_with = "forms::text")]
    email: Option<String>,
    #[serde(default, deserialize_with = "forms::text")]
    expires_in: Option<String>,
}

/// `POST /reviews`: start a review of a provider or model, and with it
/// invite the supplier's contact and assign its stages: one form. What
/// cannot be done once the review has started (someone who may not be
/// assigned) is shown on the review's page, beside its field.
pub(super) async fn start(posted: Posted<StartFields>) -> Result<HttpResponse, PageError> {
    let Posted {
        viewer,
        fields,
        form,
    } = posted;
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
        (Some(p), Some(m)) => format!("/providers/{p}/models/{m}#start-review"),
        (Some(p), None) => format!("/providers/{p}"),
        _ => "/providers".to_owned(),
    };
    let refused = |error: &ReviewError| {
        let (notice, errors) = words::review_refusal(error, &back);
        let details: Vec<String> = errors
            .iter()
            .map(|e| words::beside(&words::label(&e.field), &e.message))
            .collect();
        let text = if details.is_empty() {
            notice.text
        } else {
            details.join(" ")
        };
        PageError::Refused(text, back.clone())
    };
    // The invitation is checked before anything starts.
    let invitation = match fields.email {
        Some(email) => {
            let fields = stage_actions::InviteFields::new(email, fields.expires_in);
            match stage_actions::invitation_form(fields) {
                Ok(parsed) => Some(parsed),
                Err(errors) => return Err(refused(&ReviewError::Invalid(errors))),
            }
        }
        None => None,
    };
    let state = &viewer.state;
    let principal = &viewer.session.principal;
    let summary = state
        .reviews
        .start(
            viewer.actor(),
            principal.email.clone(),
            input,
            state.clock.now(),
        )
        .await
        .map_err(|error| refused(&error))?;
    let call = || call(&viewer, &summary.id, None);
    if let Some((email, lifetime)) = invitation {
        let invited = state
            .reviews
            .invite_all(call(), email, None, lifetime)
            .await;
        if let Err(error) = invited {
            let failure = refusal(&summary.id, error, "invite-all", None)?;
            return super::page::render(&viewer, &summary.id, failure, None).await;
        }
    }
    for stage in &summary.stages {
        for duty in [Duty::Answer, Duty::Decide] {
            let Some(who) = form
                .get(&format!("{duty}.{}", stage.key))
                .map(str::trim)
                .filter(|w| !w.is_empty())
            else {
                continue;
            };
            let action = Action::Assign {
                stage: stage.key.clone(),
                duty: Some(duty),
                assignee: Some(who.to_owned()),
            };
            if let Err(error) = act(&viewer, &summary.id, None, action).await {
                let typed = BTreeMap::from([("assignee".to_owned(), who.into())]);
                let form = format!("assign-{duty}-{}", stage.key);
                let failure = refusal(&summary.id, error, &form, Some(typed))?;
                return super::page::render(&viewer, &summary.id, failure, None).await;
            }
        }
    }
    Ok(started(&summary))
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
    let OnReview { on, fields, form } = posted;
    let typed = Some(form.typed());
    let Some(tier) = fields.tier.as_deref().and_then(Tier::parse) else {
        let result: Result<(), ReviewError> = Err(ReviewError::Invalid(vec![FieldError::new(
            "tier",
            "is required",
        )]));
        return on.outcome(result, "tier", "tier", typed).await;
    };
    let action = Action::RaiseTier {
        tier,
        reason: fields.reason.unwrap_or_default(),
    };
    let result = on.act(action).await;
    on.outcome(result, "tier", "tier", typed).await
}

/// A form that gives only a reason.
#[derive(Debug, Deserialize)]
pub(super) struct ReasonFields {
    #[serde(default, deserialize_with = "forms::text")]
    reason: Option<String>,
}

/// `POST /reviews/{id}/withdraw`.
pub(super) async fn withdraw(posted: OnReview<ReasonFields>) -> Result<HttpResponse, PageError> {
    let OnReview { on, fields, form } = posted;
    let action = Action::Withdraw {
        reason: fields.reason.unwrap_or_default(),
    };
    let result = on.act(action).await;
    on.outcome(result, "withdrawn", "withdraw", Some(form.typed()))
        .await
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
