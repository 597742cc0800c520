//! Answering an internal questionnaire (or a supplier's on their behalf).

use actix_web::HttpResponse;

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
pub(super) async fn answer(posted: OnStage<AnswerFields>) -> Result<HttpResponse, PageError> {
    let OnReview { on, fields, form } = posted;
    let detail = load(&on.viewer, &on.id).await?;
    let workflow = crate::reviews::store::pinned_workflow_of(
        &on.viewer.state.reviews.catalog,
        &detail.review.workflow.digest,
    )
    .ok_or(PageError::Internal)?;
    let definition = workflow
        .workflow
        .stage(&on.stage)
        .ok_or_else(|| PageError::NotFound(format!("There is no stage `{}`.", on.stage)))?;
    let answers = questionnaire::posted_answers(&definition.questionnaire, &form);
    let (saved, refused) = questionnaire::save_draft(&answers, |answers| {
        on.act(Action::SaveAnswers {
            stage: on.stage.clone(),
            answers,
        })
    })
    .await;
    if saved.is_ok() && !refused.is_empty() {
        return on.kept(refused, &on.stage, answers).await;
    }
    let submit = fields.action.as_deref() == Some("submit");
    let result = match saved {
        Ok(loaded) if submit => {
            let submit = Action::Submit {
                stage: on.stage.clone(),
            };
            act(
                &on.viewer,
                &on.id,
                Some(Expected::Version(loaded.row.version)),
                submit,
            )
            .await
        }
        other => other,
    };
    let done = if submit { "submitted" } else { "saved" };
    on.outcome(result, done, &on.stage, Some(answers)).await
}
