//! The intake page, `/intake`: the models integrators asked about that
//! nobody reviewed (who asked, how often, for which use cases, first and
//! last asked), each with "Start a review" and "Dismiss" for vendor
//! managers and admins. It calls the intake's service, as `/v1/intake`
//! does; a refusal is shown beside the request it concerns, with what was
//! typed kept.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::catalogue::{WorkflowChoice, workflow_choices};
use super::page::{self, Layout, Notice, PageError, Posted, Viewer, forms};
use super::words;
use crate::auth::roles::MANAGERS;
use crate::ids::{ModelSlug, ProviderSlug};
use crate::intake::service::{self, IntakeError};
use crate::intake::{After, IntakeRequest, IntakeState, OverBound};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/intake").get(show))
        .service(web::resource("/intake/{provider}/{model}/review").post(start))
        .service(web::resource("/intake/{provider}/{model}/dismiss").post(dismiss));
}

/// Requests one page lists.
const PAGE: u32 = 50;

/// The longest dismissal reason (as the API's).
const REASON_MAX: usize = 2000;

fn managers(viewer: &Viewer) -> Result<(), PageError> {
    if viewer.has_any(MANAGERS) {
        Ok(())
    } else {
        Err(PageError::Forbidden(
            "The intake is for vendor managers and admins.".into(),
        ))
    }
}

/// One request as the page shows it.
struct RequestView {
    /// `provider/model`, as integrators ask for it.
    name: String,
    /// The element id of its panel.
    anchor: String,
    /// Where its forms post: `/intake/{provider}/{model}`.
    action: String,
    state: &'static str,
    open: bool,
    asked: String,
    askers: String,
    use_cases: String,
    first: String,
    last: String,
    /// Why it was dismissed, by whom and when.
    dismissed: Option<String>,
    /// The review started from it.
    review: Option<String>,
    /// The refusal of what was just tried on it, beside it.
    error: Option<String>,
    /// The reason typed, kept when the dismissal was refused.
    reason: String,
}

/// One asker past the bound of new models a day.
struct OverLine {
    text: String,
}

/// A state the list can show, as a link.
struct Tab {
    href: &'static str,
    label: &'static str,
    current: bool,
}

#[derive(Template)]
#[template(path = "console/intake.html")]
struct IntakePage {
    layout: Layout,
    csrf: String,
    tabs: Vec<Tab>,
    /// What the state shown is called in "No … request".
    shown: &'static str,
    requests: Vec<RequestView>,
    over: Vec<OverLine>,
    next: Option<String>,
    /// The workflows to choose from, when there is more than one.
    workflows: Vec<WorkflowChoice>,
}

#[derive(Debug, Deserialize)]
pub struct IntakeQuery {
    state: Option<String>,
    after: Option<String>,
    done: Option<String>,
}

/// The states the page lists, by their query value.
const STATES: [(&str, &str, Option<IntakeState>); 4] = [
    ("open", "Open", Some(IntakeState::Open)),
    ("started", "Started", Some(IntakeState::Started)),
    ("dismissed", "Dismissed", Some(IntakeState::Dismissed)),
    ("all", "All", None),
];

/// What went wrong with the request a form was about, kept for the page.
struct Refused {
    provider: String,
    model: String,
    message: String,
    reason: String,
    status: StatusCode,
}

/// `GET /intake`.
async fn show(viewer: Viewer, query: web::Query<IntakeQuery>) -> Result<HttpResponse, PageError> {
    managers(&viewer)?;
    let query = query.into_inner();
    let notice = match query.done.as_deref() {
        Some("dismissed") => Some(Notice::ok(
            "Dismissed. It stays listed under Dismissed; later asks still count.",
        )),
        _ => None,
    };
    render(&viewer, &query, notice, None).await
}

async fn render(
    viewer: &Viewer,
    query: &IntakeQuery,
    notice: Option<Notice>,
    refused: Option<Refused>,
) -> Result<HttpResponse, PageError> {
    let chosen = query.state.as_deref().unwrap_or("open");
    let (key, shown, wanted) = STATES
        .iter()
        .find(|(key, ..)| *key == chosen)
        .copied()
        .unwrap_or(STATES[0]);
    let after = query.after.as_deref().and_then(After::parse);
    let state = &viewer.state;
    let (mut items, over) = service::requests(
        (&state.intake, &state.store),
        wanted,
        (after, PAGE),
        state.clock.now(),
    )
    .await?;
    let next = (items.len() > PAGE as usize).then(|| {
        items.truncate(PAGE as usize);
        let last = items.last().map(After::key).unwrap_or_default();
        url::form_urlencoded::Serializer::for_suffix(String::from("/intake?"), 8)
            .append_pair("state", key)
            .append_pair("after", &last)
            .finish()
    });
    let mut requests: Vec<RequestView> = items.iter().map(view).collect();
    let status = match &refused {
        Some(r) => r.status,
        None => StatusCode::OK,
    };
    if let Some(refused) = refused {
        match requests
            .iter_mut()
            .find(|r| r.name == format!("{}/{}", refused.provider, refused.model))
        {
            Some(request) => {
                request.error = Some(refused.message);
                request.reason = refused.reason;
            }
            None => {
                return Err(PageError::Refused(refused.message, "/intake".into()));
            }
        }
    }
    let mut layout = viewer.layout("Intake", "/intake");
    if let Some(notice) = notice {
        layout = layout.notice(notice);
    }
    Ok(page::html(
        status,
        &IntakePage {
            layout,
            csrf: viewer.session.csrf.clone(),
            tabs: STATES
                .iter()
                .map(|(k, label, _)| Tab {
                    href: match *k {
                        "open" => "/intake",
                        "started" => "/intake?state=started",
                        "dismissed" => "/intake?state=dismissed",
                        _ => "/intake?state=all",
                    },
                    label,
                    current: *k == key,
                })
                .collect(),
            shown: match key {
                "all" => "",
                _ => shown,
            },
            requests,
            over: over.iter().map(over_line).collect(),
            next,
            workflows: Some(workflow_choices(viewer))
                .filter(|w| w.len() > 1)
                .unwrap_or_default(),
        },
    ))
}

fn view(request: &IntakeRequest) -> RequestView {
    let name = format!("{}/{}", request.provider, request.model);
    let times = |n: i64| match n {
        1 => "once".to_owned(),
        2 => "twice".to_owned(),
        n => format!("{n} times"),
    };
    let askers: Vec<String> = request
        .requested_by
        .iter()
        .map(|a| format!("{} ({})", a.sub, times(a.asked)))
        .collect();
    let by = match (&request.decided_by, request.decided_at) {
        (Some(who), Some(at)) => format!(" by {who} on {}", words::day(at)),
        _ => String::new(),
    };
    RequestView {
        anchor: format!("intake-{}-{}", request.provider, request.model),
        action: format!("/intake/{}/{}", request.provider, request.model),
        state: match request.state {
            IntakeState::Open => "open",
            IntakeState::Started => "review started",
            IntakeState::Dismissed => "dismissed",
        },
        open: request.state == IntakeState::Open,
        asked: times(request.asked),
        askers: askers.join(", "),
        use_cases: if request.use_cases.is_empty() {
            "none named".into()
        } else {
            request
                .use_cases
                .iter()
                .map(|c| words::label(c))
                .collect::<Vec<_>>()
                .join(", ")
        },
        first: words::when(request.first_seen),
        last: words::when(request.last_seen),
        dismissed: (request.state == IntakeState::Dismissed).then(|| {
            format!(
                "Dismissed{by}: {}",
                request.reason.clone().unwrap_or_default()
            )
        }),
        review: request
            .review_id
            .as_ref()
            .map(|id| format!("/reviews/{id}")),
        error: None,
        reason: String::new(),
        name,
    }
}

fn over_line(over: &OverBound) -> OverLine {
    OverLine {
        text: format!(
            "{} asked about {} more models on {} ({} asks), past the number of new models one asker may add a day; they are counted, not listed.",
            over.sub,
            over.names,
            words::day(over.day),
            over.asked
        ),
    }
}

/// The model a form's path names, or why no request can have it.
fn subject(path: &(String, String)) -> Result<(ProviderSlug, ModelSlug), PageError> {
    let not_found = || PageError::NotFound(format!("Nobody asked about {}/{}.", path.0, path.1));
    let provider = ProviderSlug::parse(&path.0).map_err(|_| not_found())?;
    let model = ModelSlug::parse(&path.1).map_err(|_| not_found())?;
    Ok((provider, model))
}

/// The page again, the refusal beside the request it was about.
async fn refused(
    viewer: &Viewer,
    path: &(String, String),
    error: IntakeError,
    reason: String,
) -> Result<HttpResponse, PageError> {
    let (message, status) = match error {
        IntakeError::NotAsked(..) => (
            format!("Nobody asked about {}/{}.", path.0, path.1),
            StatusCode::NOT_FOUND,
        ),
        IntakeError::Review(e) => (
            words::review_refusal(&e, "/intake").0.text,
            page::refusal_status(e),
        ),
        IntakeError::Catalogue(e) => (
            words::catalogue_refusal(&e).0.text,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        IntakeError::Store(error) => {
            tracing::error!(%error, "an intake action failed");
            return Err(PageError::Internal);
        }
    };
    let refused = Refused {
        provider: path.0.clone(),
        model: path.1.clone(),
        message,
        reason,
        status,
    };
    again(viewer, refused).await
}

/// The open requests again (where the forms are), with `refused` beside
/// its request; on a page of its own when that is not listed there.
async fn again(viewer: &Viewer, refused: Refused) -> Result<HttpResponse, PageError> {
    let query = IntakeQuery {
        state: None,
        after: None,
        done: None,
    };
    render(viewer, &query, None, Some(refused)).await
}

/// The start form: the workflow, when there was a choice.
#[derive(Debug, Deserialize)]
struct StartFields {
    #[serde(default, deserialize_with = "forms::text")]
    workflow: Option<String>,
}

/// `POST /intake/{provider}/{model}/review`: starts a review of the model
/// (registering it when new) and goes to the review's page.
async fn start(
    path: web::Path<(String, String)>,
    posted: Posted<StartFields>,
) -> Result<HttpResponse, PageError> {
    let Posted { viewer, fields, .. } = posted;
    managers(&viewer)?;
    let subject = subject(&path)?;
    let state = &viewer.state;
    let started = service::start_review(
        (&state.intake, &state.work),
        &state.reviews,
        viewer.actor(),
        viewer.session.principal.email.clone(),
        subject,
        fields.workflow,
        state.clock.now(),
    )
    .await;
    match started {
        Ok(summary) => Ok(page::redirect(&format!(
            "/reviews/{}?done=started",
            summary.id
        ))),
        Err(error) => refused(&viewer, &path, error, String::new()).await,
    }
}

/// The dismissal form.
#[derive(Debug, Deserialize)]
struct DismissFields {
    #[serde(default, deserialize_with = "forms::trimmed")]
    reason: String,
}

/// `POST /intake/{provider}/{model}/dismiss`.
async fn dismiss(
    path: web::Path<(String, String)>,
    posted: Posted<DismissFields>,
) -> Result<HttpResponse, PageError> {
    let Posted { viewer, fields, .. } = posted;
    managers(&viewer)?;
    let subject = subject(&path)?;
    let reason = fields.reason;
    let problem = if reason.is_empty() {
        Some("Say why it is dismissed: the reason is shown to the other vendor managers.")
    } else if reason.chars().count() > REASON_MAX {
        Some("The reason is longer than 2,000 characters; shorten it.")
    } else if reason.contains(['\n', '\r']) {
        Some("The reason is one line; remove the line breaks.")
    } else {
        None
    };
    if let Some(problem) = problem {
        let refused = Refused {
            provider: path.0.clone(),
            model: path.1.clone(),
            message: problem.into(),
            reason,
            status: StatusCode::UNPROCESSABLE_ENTITY,
        };
        return again(&viewer, refused).await;
    }
    let state = &viewer.state;
    let dismissed = service::dismiss(
        (&state.intake, &state.work),
        viewer.actor(),
        subject,
        reason.clone(),
        state.clock.now(),
    )
    .await;
    match dismissed {
        Ok(_) => Ok(page::redirect("/intake?done=dismissed")),
        Err(error) => refused(&viewer, &path, error, reason).await,
    }
}
