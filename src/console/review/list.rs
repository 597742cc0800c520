//! `GET /reviews`: the list, filtered by state, overdue and mine.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::*;
use crate::console::page::{self, Layout, PageError, Viewer};
use crate::console::words;
use crate::ids::ReviewId;
use crate::reviews::store::ReviewFilter;
use crate::workflow::engine::ReviewState;

struct ListLine {
    href: String,
    subject: String,
    state: String,
    badge: String,
    tier: String,
    open: String,
    started: String,
}

#[derive(Template)]
#[template(path = "console/reviews.html")]
struct ListPage {
    layout: Layout,
    lines: Vec<ListLine>,
    state: String,
    overdue: bool,
    mine: bool,
    next: Option<String>,
    states: Vec<(&'static str, String)>,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    state: Option<String>,
    overdue: Option<String>,
    mine: Option<String>,
    after: Option<String>,
}

/// `GET /reviews`.
pub(super) async fn list(
    viewer: Viewer,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    reader(&viewer)?;
    let state_filter = query
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(ReviewState::parse);
    let overdue = query.overdue.as_deref() == Some("true");
    let mine = query.mine.as_deref() == Some("true");
    let filter = ReviewFilter {
        state: state_filter,
        overdue,
        started_by: mine.then(|| viewer.sub().to_owned()),
        ..ReviewFilter::default()
    };
    let state = viewer.state.clone();
    let catalog = state.reviews.catalog.clone();
    let now = state.clock.now();
    let after = query.after.clone().filter(|a| ReviewId::parse(a).is_ok());
    let reviews = state
        .store
        .run(move |conn| {
            crate::reviews::store::list(conn, &catalog, &filter, after.as_deref(), 50, now)
        })
        .await
        .map_err(review_failure)?;
    let more = reviews.len() > 50;
    let lines: Vec<ListLine> = reviews
        .iter()
        .take(50)
        .map(|r| ListLine {
            href: format!("/reviews/{}", r.id),
            subject: subject_of(r),
            state: words::label(r.state.as_str()),
            badge: r.state.as_str().to_owned(),
            tier: r.tier.as_str().to_owned(),
            open: r
                .stages
                .iter()
                .filter(|s| s.state.is_open())
                .map(|s| {
                    if s.overdue {
                        format!("{} (overdue)", s.title)
                    } else {
                        s.title.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(", "),
            started: words::day(r.created_at),
        })
        .collect();
    let state_text = state_filter
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default();
    let next = more.then(|| {
        let mut url = url::form_urlencoded::Serializer::for_suffix(String::from("/reviews?"), 9);
        if !state_text.is_empty() {
            url.append_pair("state", &state_text);
        }
        if overdue {
            url.append_pair("overdue", "true");
        }
        if mine {
            url.append_pair("mine", "true");
        }
        if let Some(last) = reviews.get(49) {
            url.append_pair("after", last.id.as_str());
        }
        url.finish()
    });
    Ok(page::html(
        StatusCode::OK,
        &ListPage {
            layout: viewer.layout("Reviews", "/reviews"),
            lines,
            state: state_text,
            overdue,
            mine,
            next,
            states: ReviewState::ALL
                .iter()
                .map(|s| (s.as_str(), words::label(s.as_str())))
                .collect(),
        },
    ))
}
