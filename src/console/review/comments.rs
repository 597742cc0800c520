//! A reviewer's comment on one question of a stage, from the review page.

use actix_web::{HttpResponse, web};

use super::*;
use crate::console::page::PageError;
use crate::reviews::CommentInput;

/// The comment form beside a question.
#[derive(Debug, Deserialize)]
pub(super) struct CommentFields {
    #[serde(default, deserialize_with = "forms::text")]
    text: Option<String>,
}

/// `POST /reviews/{id}/stages/{stage}/questions/{question}/comments`.
pub(super) async fn comment(
    path: web::Path<(String, String, String)>,
    posted: OnStage<CommentFields>,
) -> Result<HttpResponse, PageError> {
    let OnReview { on, fields, .. } = posted;
    let question = path.into_inner().2;
    let form = comment_form(&on.stage, &question);
    let kept = BTreeMap::from([(
        "text".to_owned(),
        serde_json::Value::from(fields.text.clone().unwrap_or_default()),
    )]);
    let result = on
        .viewer
        .state
        .reviews
        .comment(
            on.call(),
            on.viewer.caller(),
            on.stage.clone(),
            question,
            CommentInput { text: fields.text },
        )
        .await;
    on.outcome(result, "commented", &form, Some(kept)).await
}

/// The name (and anchor) of the comment form of a question.
pub(super) fn comment_form(stage: &str, question: &str) -> String {
    format!("comment-{stage}-{question}")
}
