//! Answering an internal questionnaire (or a supplier's on their behalf).

use actix_web::{HttpResponse, web};

use super::*;
use crate::console::page::PageError;
use crate::console::questionnaire;
use crate::workflow::engine::Action;

/// The questionnaire form's button (its questions are read by
/// [`questionnaire::posted_answers`]).
#[derive(Debug, Deserialize)]
pub(super) struct AnswerFields {
    /// `save` or `submit`.
    action: Option<String>,
}

/// `POST /reviews/{id}/stages/{stage}/answers`: save (`action=save`) or
/// submit (`action=submit`) an internal questionnaire, or a supplier's on
/// their behalf.
pub(super) async fn answer(
    path: web::Path<(String, String)>,
    posted: Posted<AnswerFields>,
) -> Result<HttpResponse, PageError> {
    let expected = posted.revision();
    let Posted {
        viewer,
        fields,
        form,
    } = posted;
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
            call(&viewer, &id, expected),
            viewer.caller(),
            Action::SaveAnswers {
                stage: stage.clone(),
                answers: answers.clone(),
            },
        )
        .await;
    let submit = fields.action.as_deref() == Some("submit");
    let result = match saved {
        Ok(loaded) if submit => {
            reviews
                .act(
                    call(&viewer, &id, Some(loaded.row.version)),
                    viewer.caller(),
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
