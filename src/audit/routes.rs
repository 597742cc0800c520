//! HTTP routes of the audit log: reading it (admins all of it, people who
//! work on reviews one review's events) and verifying its chain.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use super::AuditEvent;
use super::store::{self, AuditFilter};
use super::verify::Verification;
use crate::auth::roles::{ADMINS, STAFF};
use crate::auth::{Principal, Role};
use crate::http::AppState;
use crate::http::extract::{Page, PageParams};
use crate::http::problem::{ApiError, FieldError, Problem};

const PROBLEM: &str = "application/problem+json";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/audit").route(web::get().to(list_events)))
        .service(web::resource("/v1/audit/verify").route(web::get().to(verify_chain)));
}

/// Filters of `GET /v1/audit`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// The event with this seq, e.g. to compare a published head hash.
    #[param(value_type = Option<i64>, minimum = 1)]
    pub seq: Option<String>,
    /// Events about this subject, e.g. `provider/anthropic` or `review/<id>`.
    pub subject: Option<String>,
    /// Events by this actor (`sub`, `system:<job>`, `respondent:<invitation>`).
    pub actor: Option<String>,
    /// Events of this action, e.g. `stage.decided`.
    pub action: Option<String>,
    /// Events of this review (id). Required for every role but `admin`.
    pub review: Option<String>,
    /// Events at or after this RFC 3339 time.
    pub from: Option<String>,
    /// Events before this RFC 3339 time.
    pub to: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// An RFC 3339 time of a query, with a validation error naming `field`.
pub fn parse_time(
    field: &str,
    text: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<DateTime<Utc>> {
    let text = text.filter(|t| !t.is_empty())?;
    match DateTime::parse_from_rfc3339(text) {
        Ok(at) => Some(at.to_utc()),
        Err(_) => {
            errors.push(FieldError::new(
                field,
                "must be an RFC 3339 time such as 2026-03-01T00:00:00Z",
            ));
            None
        }
    }
}

/// Checks that `to` comes after `from`, when both are given.
pub fn check_period(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    errors: &mut Vec<FieldError>,
) {
    if let (Some(from), Some(to)) = (from, to)
        && to <= from
    {
        errors.push(FieldError::new("to", "must be later than `from`"));
    }
}

impl AuditQuery {
    fn filter(&self) -> Result<AuditFilter, ApiError> {
        let text = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
        let mut errors = Vec::new();
        let from = parse_time("from", self.from.as_deref(), &mut errors);
        let to = parse_time("to", self.to.as_deref(), &mut errors);
        check_period(from, to, &mut errors);
        let seq = match self.seq.as_deref() {
            None => None,
            Some(text) => match text.parse::<i64>() {
                Ok(seq) if seq >= 1 => Some(seq),
                _ => {
                    errors.push(FieldError::new("seq", "must be a whole number from 1"));
                    None
                }
            },
        };
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(AuditFilter {
            seq,
            subject: text(&self.subject),
            actor: text(&self.actor),
            action: text(&self.action),
            review: text(&self.review),
            from,
            to,
        })
    }

    fn page(&self) -> Result<(u32, Option<i64>), ApiError> {
        let page = PageParams {
            limit: self.limit.clone(),
            cursor: self.cursor.clone(),
        }
        .check()?;
        let after = page
            .after
            .map(|seq| {
                seq.parse::<i64>().map_err(|_| {
                    ApiError::validation("cursor", "is not a cursor this service issued")
                })
            })
            .transpose()?;
        Ok((page.limit, after))
    }
}

/// Read the audit log in chain order (oldest first), filtered.
///
/// Roles: `admin` reads every event. `vendor_manager`, the reviewer roles and
/// `approver` read the events of one review, and must pass `review=<id>`
/// (403 otherwise). `from` is inclusive, `to` exclusive. Each event carries
/// `prev_hash` and `hash`, so a reader may recompute the chain itself.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditQuery),
    responses(
        (status = 200, description = "A page of events", body = inline(Page<AuditEvent>)),
        (status = 403, description = "The token lacks the role, or a non-admin did not pass `review`", body = Problem, content_type = PROBLEM),
        (status = 422, description = "A bad filter, limit or cursor, named in `errors`", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn list_events(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(STAFF)?;
    let one_review = query.review.as_deref().is_some_and(|r| !r.is_empty());
    if !one_review && !principal.has(Role::Admin) {
        return Err(ApiError::Forbidden(
            "only an admin reads the whole audit log; pass `review=<id>` to read the events \
             of one review"
                .into(),
        ));
    }
    let (filter, (limit, after)) = match (query.filter(), query.page()) {
        (Ok(filter), Ok(page)) => (filter, page),
        (Err(ApiError::Validation(mut errors)), Err(ApiError::Validation(more))) => {
            errors.extend(more);
            return Err(ApiError::Validation(errors));
        }
        (Err(error), _) | (_, Err(error)) => return Err(error),
    };
    let rows = state
        .store
        .run(move |conn| store::list(conn, &filter, after, limit).map_err(ApiError::from))
        .await?;
    let events: Vec<AuditEvent> = rows.into_iter().map(AuditEvent::from).collect();
    Ok(HttpResponse::Ok().json(Page::from_rows(events, limit, |e| e.seq.to_string())))
}

/// Recompute the audit chain and compare it with its recorded head.
///
/// Roles: `admin`. Answers 200 either way: `{"ok": true, "events", "head"}`,
/// or `{"ok": false, "events", "first_bad": {"seq", "id", "problem"}}` naming
/// the first event that does not fit (edited, deleted, reordered, or a
/// truncated tail). Publish `head` outside the service to detect a rewrite of
/// the whole chain later.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit",
    responses(
        (status = 200, description = "The verification", body = Verification),
    ), security(("bearer" = [])))]
pub async fn verify_chain(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    principal.require(ADMINS)?;
    let verification = state
        .store
        .run(|conn| store::verify_chain(conn).map_err(ApiError::from))
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(verification))
}
