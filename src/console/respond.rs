//! The supplier's page, `/respond/{token}`: the questionnaire the emailed
//! link admits, in the console's look, rendered on the server. Save a
//! draft, submit; each problem is shown next to its question; conditional
//! questions appear and vanish as they are answered (with the script; without
//! it every question shows). The token in the link is the only credential:
//! it admits this one stage and nothing else, and the page never shows what
//! the supplier need not see (assignees, approvers).

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::page::{self, Form, Layout, Notice, PageError};
use super::questionnaire::{self, SectionBlock};
use super::words;
use crate::audit::Actor;
use crate::auth::Principal;
use crate::http::AppState;
use crate::ids::{ReviewId, StageKey};
use crate::reviews::ReviewError;
use crate::reviews::invite::ALL_STAGES;
use crate::reviews::scope::Scope;
use crate::reviews::service::{Call, Expected};
use crate::workflow::engine::{Action, Caller, StageState};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/respond/{token}").get(show).post(post));
}

/// A questionnaire's link followed from the list of every questionnaire
/// carries the list's token (`?hub=`), so that its pages lead back there.
#[derive(Debug, serde::Deserialize)]
struct FromHub {
    hub: Option<String>,
}

#[derive(Template)]
#[template(path = "console/respond.html")]
struct RespondPage {
    layout: Layout,
    subject: String,
    stage: String,
    state: String,
    open: bool,
    due: Option<String>,
    revision: i64,
    /// What the form read of the stage (see [`Scope`]).
    scope: String,
    /// The reviewer's comment, when they asked for changes.
    changes_requested: Option<String>,
    sections: Vec<SectionBlock>,
    /// The supplier's list of every questionnaire, when they came from it.
    hub: Option<String>,
}

#[derive(Template)]
#[template(path = "console/respond_all.html")]
struct RespondAllPage {
    layout: Layout,
    subject: String,
    questionnaires: Vec<Listed>,
}

/// One questionnaire on the page of an invitation to several.
struct Listed {
    title: String,
    state: String,
    /// "3 of 12 questions answered".
    progress: String,
    due: Option<String>,
    /// The questionnaire's own link, while it can be opened.
    link: Option<String>,
}

/// What a link admits: one stage of one review, or (`None`) the list of
/// every questionnaire of the review its contact was invited to.
type Admitted = (Principal, ReviewId, Option<StageKey>);

/// The whole page of a link to a withdrawn review: nothing of the review.
fn withdrawn() -> PageError {
    PageError::Gone("This review was withdrawn. Nothing more is needed from you.".into())
}

fn refused() -> PageError {
    PageError::Forbidden(
        "This link does not work. Ask the person who sent it for a new one.".into(),
    )
}

/// Who the link admits (each use counted against the client's limit).
fn admitted(state: &AppState, req: &HttpRequest, token: &str) -> Result<Admitted, PageError> {
    state.limits.supplier(req)?;
    let principal = state.authenticator.verify(token).map_err(|_| refused())?;
    let scope = principal.respondent.clone().ok_or_else(refused)?;
    let review = ReviewId::parse(&scope.review).map_err(|_| refused())?;
    if scope.stage == ALL_STAGES {
        return Ok((principal, review, None));
    }
    let stage = StageKey::parse(&scope.stage).map_err(|_| refused())?;
    Ok((principal, review, Some(stage)))
}

/// Who a questionnaire's own link admits: a respondent to one stage.
fn respondent(
    state: &AppState,
    req: &HttpRequest,
    token: &str,
) -> Result<(Principal, ReviewId, StageKey), PageError> {
    match admitted(state, req, token)? {
        (principal, review, Some(stage)) => Ok((principal, review, stage)),
        _ => Err(refused()),
    }
}

/// The list of every questionnaire that `hub` (a `?hub=` token) leads to,
/// when it is a working link of the same person to the same review; else
/// none (a page never leads to someone else's list).
fn hub_of(
    state: &AppState,
    principal: &Principal,
    review: &ReviewId,
    hub: Option<&str>,
) -> Option<String> {
    let hub = hub?;
    let listed = state.authenticator.verify(hub).ok()?;
    let scope = listed.respondent.as_ref()?;
    let same_person = match (&listed.email, &principal.email) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    };
    (scope.stage == ALL_STAGES && scope.review == review.as_str() && same_person)
        .then(|| format!("/respond/{hub}"))
}

/// The questionnaire's page afresh, from its list when it came from it.
fn reload(path: &str, query: &FromHub, from_hub: bool) -> String {
    match query.hub.as_deref().filter(|_| from_hub) {
        Some(hub) => url::form_urlencoded::Serializer::for_suffix(
            format!("/respond/{path}?"),
            path.len() + 10,
        )
        .append_pair("hub", hub)
        .finish(),
        None => format!("/respond/{path}"),
    }
}

/// The page of an invitation to several questionnaires: each with its
/// state and, once open, its own link.
async fn list_page(
    state: &AppState,
    (principal, review): (Principal, ReviewId),
    token: &str,
) -> Result<HttpResponse, PageError> {
    let email = principal.email.clone().ok_or_else(refused)?;
    let reviews = state.reviews.clone();
    let now = state.clock.now();
    let (subject, listed) = state
        .store
        .run(move |conn| reviews.invited_to(conn, &review, &email, now))
        .await
        .map_err(|error| match error {
            ReviewError::NotFound(_) => {
                PageError::NotFound("These questionnaires no longer exist.".into())
            }
            ReviewError::Withdrawn => withdrawn(),
            other => {
                tracing::error!(error = %other, "the supplier's list page failed");
                PageError::Internal
            }
        })?;
    if listed.is_empty() {
        return Err(PageError::Forbidden(
            "This link no longer admits any questionnaire: it expired or was withdrawn. Ask the person who sent it for a new one.".into(),
        ));
    }
    let hub: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("hub", token)
        .finish();
    let questionnaires = listed
        .into_iter()
        .map(|q| Listed {
            progress: {
                let sections = questionnaire::blocks(&q.questionnaire, &q.answers, None, &[]);
                let progress = questionnaire::progress(&sections);
                format!(
                    "{} of {} questions answered",
                    progress.answered, progress.shown
                )
            },
            title: q.title,
            state: match q.state {
                StageState::Blocked => "opens when our earlier review steps are done".into(),
                StageState::AwaitingAnswers => "open for your answers".into(),
                StageState::InReview => "submitted, with our reviewers".into(),
                other => words::label(other.as_str()),
            },
            due: q
                .due_at
                .filter(|_| q.state == StageState::AwaitingAnswers)
                .map(|d| format!("{} ({})", words::day(d), words::due(d, now))),
            link: q.link.map(|link| format!("{link}?{hub}")),
        })
        .collect();
    Ok(page::html(
        StatusCode::OK,
        &RespondAllPage {
            layout: Layout::supplier("Questionnaires", Some(format!("/respond/{token}"))),
            subject,
            questionnaires,
        },
    ))
}

fn caller(principal: &Principal, stage: &StageKey) -> Caller {
    Caller::Respondent {
        id: principal
            .respondent
            .as_ref()
            .map(|scope| scope.actor_id())
            .unwrap_or_default(),
        stage: stage.clone(),
    }
}

/// What the page shows besides the questionnaire: a notice, problems next
/// to their questions, what a refused form posted, and the status.
struct Shown {
    notice: Option<Notice>,
    errors: Vec<crate::validation::FieldError>,
    posted: Option<BTreeMap<String, serde_json::Value>>,
    status: StatusCode,
    /// The supplier's list of every questionnaire, when they came from it.
    hub: Option<String>,
}

impl Shown {
    fn plain(hub: Option<String>) -> Self {
        Shown {
            notice: None,
            errors: Vec::new(),
            posted: None,
            status: StatusCode::OK,
            hub,
        }
    }
}

async fn render(
    state: &AppState,
    principal: &Principal,
    review: &ReviewId,
    stage: &StageKey,
    shown: Shown,
) -> Result<HttpResponse, PageError> {
    let reviews = state.reviews.clone();
    let now = state.clock.now();
    let who = caller(principal, stage);
    let (review_id, key) = (review.clone(), stage.clone());
    let view = state
        .store
        .run(move |conn| reviews.stage_view(conn, &review_id, &key, &who, now))
        .await
        .map_err(|error| match error {
            ReviewError::Unauthorized(message) => PageError::Forbidden(format!(
                "{}. Ask the person who sent it for a new one.",
                words::label(&message)
                    .replacen("this", "This", 1)
                    .trim_end_matches('.')
            )),
            ReviewError::NotFound(_) => {
                PageError::NotFound("This questionnaire no longer exists.".into())
            }
            ReviewError::Withdrawn => withdrawn(),
            other => {
                tracing::error!(error = %other, "the supplier's page failed");
                PageError::Internal
            }
        })?;
    let Shown {
        notice,
        errors,
        posted,
        status,
        hub,
    } = shown;
    let answers = questionnaire::merged(&view.answers, posted.as_ref());
    let mut sections = questionnaire::blocks(&view.questionnaire, &answers, None, &errors);
    questionnaire::add_comments(&mut sections, &view.comments);
    let open = view.stage.state == StageState::AwaitingAnswers;
    let mut layout = Layout::supplier(format!("Questionnaire: {}", view.stage.title), hub.clone());
    let back = |notice: Notice| match &hub {
        Some(hub) => notice.with_link(hub, "Back to all your questionnaires"),
        None => notice,
    };
    if let Some(notice) = notice {
        layout = layout.notice(if notice.kind == "ok" {
            back(notice)
        } else {
            notice
        });
    } else if !open {
        layout = layout.notice(back(Notice::ok(
            "Thank you: these answers are with the reviewers. Nothing more is needed from you now.",
        )));
    }
    Ok(page::html(
        status,
        &RespondPage {
            layout,
            subject: view.named.clone(),
            stage: view.stage.title.clone(),
            state: words::label(view.stage.state.as_str()),
            open,
            due: view
                .stage
                .due_at
                .filter(|_| open)
                .map(|d| format!("{} ({})", words::day(d), words::due(d, now))),
            revision: view.version,
            scope: Scope::Work(view.stage.key.clone()).of_stage(&view.stage, &view.answers),
            changes_requested: view.changes_requested.clone().filter(|_| open),
            sections,
            hub,
        },
    ))
}

/// `GET /respond/{token}`; what goes wrong is a supplier's page too.
async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<FromHub>,
) -> HttpResponse {
    shown(&state, &req, &path, &query)
        .await
        .unwrap_or_else(|error| error.for_supplier())
}

async fn shown(
    state: &AppState,
    req: &HttpRequest,
    path: &str,
    query: &FromHub,
) -> Result<HttpResponse, PageError> {
    match admitted(state, req, path)? {
        (principal, review, Some(stage)) => {
            let hub = hub_of(state, &principal, &review, query.hub.as_deref());
            render(state, &principal, &review, &stage, Shown::plain(hub)).await
        }
        (principal, review, None) => list_page(state, (principal, review), path).await,
    }
}

/// The questionnaire form's button: `save` or `submit` (its questions,
/// named by the workflow, are read from the form as posted).
#[derive(Debug, serde::Deserialize)]
struct Button {
    action: Option<String>,
}

/// `POST /respond/{token}`: `action=save` keeps a draft, `action=submit`
/// sends the answers to review. The link is the credential (and, being in
/// the path, the form's protection against forgery: another site cannot
/// know it).
async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<FromHub>,
    form: Result<Form, PageError>,
) -> HttpResponse {
    let answered = match form {
        Ok(form) => answer(&state, &req, &path, &query, form).await,
        Err(error) => Err(error),
    };
    answered.unwrap_or_else(|error| error.for_supplier())
}

async fn answer(
    state: &AppState,
    req: &HttpRequest,
    path: &str,
    query: &FromHub,
    form: Form,
) -> Result<HttpResponse, PageError> {
    let (principal, review, stage) = respondent(state, req, path)?;
    let hub = hub_of(state, &principal, &review, query.hub.as_deref());
    let reviews = state.reviews.clone();
    let now = state.clock.now();
    let (id, key, who) = (review.clone(), stage.clone(), caller(&principal, &stage));
    let view = state
        .store
        .run(move |conn| reviews.stage_view(conn, &id, &key, &who, now))
        .await
        .map_err(|error| match error {
            ReviewError::Withdrawn => withdrawn(),
            _ => PageError::Forbidden("This link does not work any more.".into()),
        })?;
    let answers = questionnaire::posted_answers(&view.questionnaire, &form);
    let submit = form.fields::<Button>()?.action.as_deref() == Some("submit");
    let actor = Actor::person(&principal, page::layout::request_id(req));
    let call = |expected| Call {
        review_id: review.clone(),
        expected,
        actor: actor.clone(),
        email: principal.email.clone(),
        now,
    };
    let (saved, refused) = questionnaire::save_draft(&answers, |answers| {
        state.reviews.act(
            call(Expected::of_form(
                Scope::Work(stage.clone()),
                form.get("scope"),
                form.revision(),
            )),
            caller(&principal, &stage),
            Action::SaveAnswers {
                stage: stage.clone(),
                answers,
            },
        )
    })
    .await;
    if saved.is_ok() && !refused.is_empty() {
        let shown = Shown {
            notice: Some(words::draft_kept(refused.len())),
            errors: refused,
            posted: Some(answers),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            hub,
        };
        return render(state, &principal, &review, &stage, shown).await;
    }
    let result = match saved {
        Ok(loaded) if submit => {
            state
                .reviews
                .act(
                    call(Some(Expected::Version(loaded.row.version))),
                    caller(&principal, &stage),
                    Action::Submit {
                        stage: stage.clone(),
                    },
                )
                .await
        }
        other => other,
    };
    let shown = match result {
        Ok(_) if submit => Shown::plain(hub),
        Ok(_) => Shown {
            notice: Some(Notice::ok(
                "Your answers are saved. Submit them when they are complete.",
            )),
            ..Shown::plain(hub)
        },
        Err(error) => {
            let (notice, errors) =
                words::review_refusal(&error, &reload(path, query, hub.is_some()));
            let status = page::refusal_status(error);
            Shown {
                notice: Some(notice),
                errors,
                posted: Some(answers),
                status,
                hub,
            }
        }
    };
    render(state, &principal, &review, &stage, shown).await
}
