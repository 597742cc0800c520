//! Answering an internal questionnaire (or a supplier's on their behalf).

use actix_web::{HttpResponse, web};

use super::*;
use crate::console::page::{Form, PageError, Viewer};
use crate::console::questionnaire::{self};
use crate::workflow::engine::Action;

/// `POST /reviews/{id}/stages/{stage}/answers`: save (`action=save`) or
/// submit (`action=submit`) an internal questionnaire, or a supplier's on
/// their behalf.
pub(super) async fn answer(
    viewer: Viewer,
    path: web::Path<(String, String)>,
    form: Form,
) -> Result<HttpResponse, PageError> {
    viewer.check_csrf(form.get("csrf"))?;
    let (id, stage) = (review_id(&path.0)?, stage_key(&path.1)?);
    let detail = load(&viewer, &id).await?;
    let workflow = crate::reviews::store::pinned_workflow_of(
        &viewer.state.reviews.catalog,
        &detail.review.workflow.digest,
    )
    .ok_or(PageError::Internal)?;
    let definition = workflow
        .workflow
        .stage(&stage)
        .ok_or_else(|| PageError::NotFound(format!("There is no stage `{stage}`.")))?;
    let answers = questionnaire::posted_answers(&definition.questionnaire, &form);
    let reviews = &viewer.state.reviews;
    let saved = reviews
        .act(
            call(&viewer, &id, &form),
            caller(&viewer),
            Action::SaveAnswers {
                stage: stage.clone(),
                answers: answers.clone(),
            },
        )
        .await;
    let submit = form.get("action") == Some("submit");
    let result = match saved {
        Ok(loaded) if submit => {
            let mut next = call(&viewer, &id, &form);
            next.expected = Some(loaded.row.version);
            reviews
                .act(
                    next,
                    caller(&viewer),
                    Action::Submit {
                        stage: stage.clone(),
                    },
                )
                .await
        }
        other => other,
    };
    let done = if submit { "submitted" } else { "saved" };
    outcome(&viewer, &id, result, done, &stage, Some(answers)).await
}
