//! My work: the stages waiting for the person signed in (overdue first, with
//! due dates), the reviews they started, and the invitations whose
//! suppliers have yet to answer.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::page::{self, Layout, PageError, Viewer};
use super::words;
use crate::reviews::work::{self, MyWork};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").get(home));
}

/// A line of the page, its words already chosen.
struct Line {
    href: String,
    subject: String,
    what: String,
    badge: &'static str,
    state: String,
    due: String,
}

struct Started {
    href: String,
    subject: String,
    tier: String,
    open: String,
}

struct Waiting {
    href: String,
    subject: String,
    stage: String,
    email: String,
    due: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "console/home.html")]
struct Home {
    layout: Layout,
    to_do: Vec<Line>,
    overdue: usize,
    started: Vec<Started>,
    waiting: Vec<Waiting>,
    /// With nothing on the page: what to do next, and where.
    next_step: Option<NextStep>,
}

/// What someone with an empty list does next.
struct NextStep {
    text: &'static str,
    link: Option<(&'static str, &'static str)>,
}

impl NextStep {
    /// For a vendor manager, the start of a review; for a reviewer, where
    /// work will come from.
    fn for_viewer(viewer: &Viewer) -> Self {
        if viewer.has_any(crate::auth::roles::MANAGERS) {
            NextStep {
                text: "To review a model, register its provider and the model, then start a review from the model's page.",
                link: Some(("/providers/new", "Register a provider")),
            }
        } else if viewer.has_any(crate::auth::roles::STAFF) {
            NextStep {
                text: "When a stage your role answers or decides is ready, you get an email and it appears here. Meanwhile every review is listed under Reviews.",
                link: Some(("/reviews", "See every review")),
            }
        } else {
            NextStep {
                text: "Your roles give you nothing to review here; ask an admin if you expected otherwise.",
                link: None,
            }
        }
    }
}

async fn home(viewer: Viewer) -> Result<HttpResponse, PageError> {
    let state = viewer.state.clone();
    let now = state.clock.now();
    let catalog = state.reviews.catalog.clone();
    let who = viewer.session.principal.clone();
    let mine: MyWork = state
        .store
        .run(move |conn| work::my_work(conn, &catalog, &who, now))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "my work");
            PageError::Internal
        })?;
    let to_do: Vec<Line> = mine
        .to_do
        .iter()
        .map(|item| Line {
            href: format!("/reviews/{}#stage-{}", item.review_id, item.stage),
            subject: item.subject.clone(),
            what: format!("{}: {}", item.stage_title, item.why.as_str()),
            badge: if item.overdue {
                "overdue"
            } else {
                item.state.as_str()
            },
            state: words::label(item.state.as_str()),
            due: item
                .due_at
                .map(|d| words::due(d, now))
                .unwrap_or_else(|| "no due date".into()),
        })
        .collect();
    let overdue = mine.to_do.iter().filter(|i| i.overdue).count();
    let started = mine
        .started
        .iter()
        .map(|r| Started {
            href: format!("/reviews/{}", r.id),
            subject: match &r.model {
                Some(m) => format!("{}/{m}", r.provider),
                None => r.provider.to_string(),
            },
            tier: r.tier.as_str().to_owned(),
            open: r
                .stages
                .iter()
                .filter(|s| s.state.is_open())
                .map(|s| format!("{} ({})", s.title, words::label(s.state.as_str())))
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect();
    let waiting = mine
        .waiting_on_suppliers
        .iter()
        .map(|i| Waiting {
            href: format!("/reviews/{}#stage-{}", i.review_id, i.stage_key),
            subject: match &i.model {
                Some(m) => format!("{}/{m}", i.provider),
                None => i.provider.to_string(),
            },
            stage: words::label(&i.stage_key),
            email: i.email.clone(),
            due: i
                .due_at
                .map(|d| words::due(d.and_utc(), now))
                .unwrap_or_else(|| "no due date".into()),
            expires: words::day(i.expires_at.and_utc()),
        })
        .collect();
    let next_step =
        (to_do.is_empty() && mine.started.is_empty()).then(|| NextStep::for_viewer(&viewer));
    Ok(page::html(
        StatusCode::OK,
        &Home {
            next_step,
            layout: viewer.layout("My work", "/"),
            to_do,
            overdue,
            started,
            waiting,
        },
    ))
}
