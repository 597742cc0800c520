//! Reviews: the list, and a review's page — subject, workflow, tier and why,
//! the stages as a timeline with who acts next, answers by stage and section
//! (with controls and markers), decisions, findings, invitations and the
//! audit timeline — with every action as a form: start, answer, invite (and
//! revoke), assign, decide (with a conditions editor), raise the tier,
//! findings (their owner and due date, and closing one whose raising answer
//! changed), comments on single questions, withdraw, re-review, and the
//! evidence pack.
//!
//! Each action calls the review service the API calls. A refusal re-renders
//! the page with the service's reason in plain words where it happened; a
//! form rendered from an older revision is refused (412) with a reload link.

use std::collections::BTreeMap;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use super::page::{
    Form, NoFields, Notice, PageError, Posted, Viewer, forms, redirect, refusal_status,
};
use super::words;
use crate::auth::roles::STAFF;
use crate::ids::{ReviewId, StageKey};
use crate::reviews::scope::Scope;
use crate::reviews::service::{Call, Expected};
use crate::reviews::store::Loaded;
use crate::reviews::{ReviewDetail, ReviewError, ReviewSummary};
use crate::validation::FieldError;
use crate::workflow::engine::Action;
use serde::Deserialize;

mod answers;
mod comments;
mod evidence;
mod findings;
mod list;
mod page;

pub(crate) use page::candidates;
mod review_actions;
mod stage_actions;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/reviews")
            .get(list::list)
            .post(review_actions::start),
    )
    .service(web::resource("/reviews/{id}").get(page::review_page))
    .service(web::resource("/reviews/{id}/evidence").get(evidence::evidence))
    .service(web::resource("/reviews/{id}/re-review").post(review_actions::re_review))
    .service(web::resource("/reviews/{id}/tier").post(review_actions::raise_tier))
    .service(web::resource("/reviews/{id}/withdraw").post(review_actions::withdraw))
    .service(web::resource("/reviews/{id}/findings").post(findings::add_finding))
    .service(web::resource("/reviews/{id}/findings/{finding}").post(findings::update_finding))
    .service(
        web::resource("/reviews/{id}/invitations/{invitation}/revoke").post(stage_actions::revoke),
    )
    .service(web::resource("/reviews/{id}/stages/{stage}/answers").post(answers::answer))
    .service(web::resource("/reviews/{id}/stages/{stage}/invite").post(stage_actions::invite))
    .service(web::resource("/reviews/{id}/invite").post(stage_actions::invite_all))
    .service(web::resource("/reviews/{id}/stages/{stage}/assign").post(stage_actions::assign))
    .service(web::resource("/reviews/{id}/stages/{stage}/decide").post(stage_actions::decide))
    .service(
        web::resource("/reviews/{id}/stages/{stage}/questions/{question}/comments")
            .post(comments::comment),
    );
}

fn review_id(text: &str) -> Result<ReviewId, PageError> {
    ReviewId::parse(text).map_err(|_| PageError::NotFound(format!("There is no review `{text}`.")))
}

fn stage_key(text: &str) -> Result<StageKey, PageError> {
    StageKey::parse(text).map_err(|_| PageError::NotFound(format!("There is no stage `{text}`.")))
}

/// A form posted on a review (`/reviews/{id}/…`) or on one of its stages
/// (`/reviews/{id}/stages/{stage}/…`, an [`OnStage`]), read once: the post
/// checked as every post is ([`Posted`]), and what it acts on (a 404 when
/// the path names no review or stage).
pub(super) struct OnReview<T, S = ()> {
    on: Target<S>,
    fields: T,
    form: Form,
}

/// What a post acts on, and as whom: the viewer, the review (and stage)
/// its path names, and the revision the form was rendered from.
struct Target<S> {
    viewer: Viewer,
    id: ReviewId,
    /// The stage the path names, for a form on one stage.
    stage: S,
    /// The revision the form was rendered from (the page's `If-Match`).
    revision: Option<i64>,
    /// The token of what the form read (its `scope` field; see [`Scope`]).
    token: Option<String>,
    /// How many of the review's events the page showed (its `seen`
    /// field): those after are what changed while it was open.
    seen: Option<usize>,
}

impl<S: Within> Target<S> {
    /// What the form was rendered against: what it read of the review (a
    /// form on a stage, that stage's work; else the review's state and
    /// tier), or its revision.
    fn expected(&self, scope: Scope) -> Option<Expected> {
        Expected::of_form(scope, self.token.as_deref(), self.revision)
    }

    /// A review service call by the viewer on this review.
    fn call(&self) -> Call {
        call(&self.viewer, &self.id, self.expected(self.stage.scope()))
    }

    /// The viewer's `action` on this review.
    async fn act(&self, action: Action) -> Result<Loaded, ReviewError> {
        self.act_on(self.stage.scope(), action).await
    }

    /// The viewer's `action`, made against what the form read in `scope`.
    async fn act_on(&self, scope: Scope, action: Action) -> Result<Loaded, ReviewError> {
        act(&self.viewer, &self.id, self.expected(scope), action).await
    }

    /// After the action: see [`outcome`].
    async fn outcome<T>(
        &self,
        result: Result<T, ReviewError>,
        done: &str,
        form: &str,
        posted: Option<BTreeMap<String, serde_json::Value>>,
    ) -> Result<HttpResponse, PageError> {
        let anchor = self.stage.anchor(form);
        let refused = |failure: Failure| Failure {
            seen: self.seen,
            ..failure
        };
        match result {
            Ok(_) => Ok(redirect(&format!(
                "/reviews/{}?done={done}#{anchor}",
                self.id
            ))),
            Err(error) => {
                let failure = refusal(&self.id, error, form, posted)?;
                page::render(&self.viewer, &self.id, refused(failure), None).await
            }
        }
    }

    /// After a draft saved without the answers it `refused`: the page
    /// again, those answers beside their questions as they were typed.
    async fn kept(
        &self,
        refused: Vec<FieldError>,
        form: &str,
        posted: BTreeMap<String, serde_json::Value>,
    ) -> Result<HttpResponse, PageError> {
        let failure = Failure {
            notice: Some(words::draft_kept(refused.len())),
            errors: refused,
            form: form.to_owned(),
            posted: Some(posted),
            status: Some(StatusCode::UNPROCESSABLE_ENTITY),
            seen: None,
        };
        page::render(&self.viewer, &self.id, failure, None).await
    }
}

/// A form posted on one stage of a review.
pub(super) type OnStage<T> = OnReview<T, StageKey>;

/// The segments of a review's path, decoded as `web::Path` decodes them.
#[derive(Deserialize)]
struct Segments {
    id: String,
    stage: Option<String>,
}

/// What a review's path names besides the review: nothing, or a stage
/// (read from its `{stage}` segment).
pub(super) trait Within: Sized {
    fn read(stage: Option<&str>) -> Result<Self, PageError>;

    /// What a form on it reads.
    fn scope(&self) -> Scope;

    /// Where on the page the form's outcome is seen.
    fn anchor(&self, form: &str) -> String;
}

impl Within for () {
    fn read(_: Option<&str>) -> Result<Self, PageError> {
        Ok(())
    }

    fn scope(&self) -> Scope {
        Scope::Review
    }

    fn anchor(&self, form: &str) -> String {
        form.to_owned()
    }
}

impl Within for StageKey {
    fn read(stage: Option<&str>) -> Result<Self, PageError> {
        stage_key(stage.unwrap_or_default())
    }

    fn scope(&self) -> Scope {
        Scope::Work(self.clone())
    }

    fn anchor(&self, _: &str) -> String {
        format!("stage-{self}")
    }
}

impl<T: DeserializeOwned + 'static, S: Within + 'static> FromRequest for OnReview<T, S> {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let posted = Posted::<T>::from_request(req, payload);
        let segments = req.match_info().load::<Segments>();
        Box::pin(async move {
            let posted = posted.await?;
            let segments = segments.map_err(|e| {
                PageError::BadRequest(format!("The address could not be read: {e}."))
            })?;
            let on = Target {
                revision: posted.revision(),
                token: posted.form.get("scope").map(str::to_owned),
                seen: posted.form.get("seen").and_then(|n| n.parse().ok()),
                id: review_id(&segments.id)?,
                stage: S::read(segments.stage.as_deref())?,
                viewer: posted.viewer,
            };
            Ok(OnReview {
                on,
                fields: posted.fields,
                form: posted.form,
            })
        })
    }
}

fn reader(viewer: &Viewer) -> Result<(), PageError> {
    if viewer.has_any(STAFF) {
        Ok(())
    } else {
        Err(PageError::Forbidden(
            "Reviews are for vendor managers, reviewers, approvers and admins.".into(),
        ))
    }
}

fn subject_of(review: &ReviewSummary) -> String {
    match &review.model {
        Some(m) => format!("{}/{m}", review.provider),
        None => format!("{} (every model)", review.provider),
    }
}

fn review_failure(error: ReviewError) -> PageError {
    match error {
        ReviewError::NotFound(id) => PageError::NotFound(format!("There is no review `{id}`.")),
        other => {
            tracing::error!(error = %other, "reading a review failed");
            PageError::Internal
        }
    }
}

#[derive(Default)]
struct Failure {
    notice: Option<Notice>,
    errors: Vec<FieldError>,
    form: String,
    /// What the failed questionnaire form posted, to show it again.
    posted: Option<BTreeMap<String, serde_json::Value>>,
    status: Option<StatusCode>,
    /// How many of the review's events the refused form's page showed.
    seen: Option<usize>,
}

impl Failure {
    /// What the refused `form` posted in `field`, to show it again.
    fn kept(&self, form: &str, field: &str) -> Option<String> {
        kept_value(self.posted.as_ref(), &self.form, form, field)
    }
}

/// What `posted`, by the form `refused`, held in `field`, when `form` is
/// that form: a refused form's value, to show it again.
fn kept_value(
    posted: Option<&BTreeMap<String, serde_json::Value>>,
    refused: &str,
    form: &str,
    field: &str,
) -> Option<String> {
    posted
        .filter(|_| refused == form)
        .and_then(|p| p.get(field))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

/// The review and what the viewer may do to it now (the engine's answer).
async fn load_for(
    viewer: &Viewer,
    id: &ReviewId,
) -> Result<(ReviewDetail, crate::workflow::engine::Allowed), PageError> {
    let state = viewer.state.clone();
    let reviews = state.reviews.clone();
    let now = state.clock.now();
    let id = id.clone();
    let caller = viewer.caller();
    state
        .store
        .run(move |conn| reviews.detail_for(conn, &id, &caller, now))
        .await
        .map_err(review_failure)
}

async fn load(viewer: &Viewer, id: &ReviewId) -> Result<ReviewDetail, PageError> {
    let state = viewer.state.clone();
    let reviews = state.reviews.clone();
    let now = state.clock.now();
    let id = id.clone();
    state
        .store
        .run(move |conn| reviews.detail(conn, &id, now))
        .await
        .map_err(review_failure)
}

/// A review service call by the viewer, on the revision the form was
/// rendered from.
fn call(viewer: &Viewer, id: &ReviewId, expected: Option<Expected>) -> Call {
    Call {
        review_id: id.clone(),
        expected,
        actor: viewer.actor(),
        email: viewer.session.principal.email.clone(),
        now: viewer.state.clock.now(),
    }
}

/// The viewer's `action` on the review, on the revision the form was
/// rendered from.
async fn act(
    viewer: &Viewer,
    id: &ReviewId,
    expected: Option<Expected>,
    action: Action,
) -> Result<Loaded, ReviewError> {
    let call = call(viewer, id, expected);
    viewer
        .state
        .reviews
        .act(call, viewer.caller(), action)
        .await
}

/// A refused form, to show again: the service's reason in words, each
/// problem beside its field, with what was `posted`; a 404 when the review
/// is gone.
fn refusal(
    id: &ReviewId,
    error: ReviewError,
    form: &str,
    posted: Option<BTreeMap<String, serde_json::Value>>,
) -> Result<Failure, PageError> {
    if let ReviewError::NotFound(id) = error {
        return Err(PageError::NotFound(format!("There is no review `{id}`.")));
    }
    let (notice, errors) = words::review_refusal(&error, &format!("/reviews/{id}"));
    let status = refusal_status(error);
    Ok(Failure {
        notice: Some(notice),
        errors,
        form: form.to_owned(),
        posted,
        status: Some(status),
        seen: None,
    })
}
