//! HTTP routes of evidence: a review's evidence pack, and the summary of
//! reviews over a period.

use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType};
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::summary::{self, PeriodSummary};
use crate::audit::Actor;
use crate::audit::routes::{check_period, parse_time};
use crate::auth::Principal;
use crate::auth::roles::{ADMINS, STAFF};
use crate::http::AppState;
use crate::http::problem::{ApiError, FieldError, Problem};
use crate::http::telemetry::RequestId;
use crate::ids::ReviewId;

const PROBLEM: &str = "application/problem+json";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/reviews/{id}/evidence").route(web::get().to(evidence_pack)))
        .service(web::resource("/v1/evidence").route(web::get().to(period_summary)));
}

/// Download a review's evidence pack: a zip for auditors.
///
/// Roles: `vendor_manager`, the reviewer roles, `approver`, `admin`.
///
/// The zip holds `report.html` (one self-contained page: the subject, the
/// workflow's id, version and digest, tier and reason, every answer by stage
/// and section, decisions, findings, the control mapping and the timeline),
/// `review.json` (exactly what `GET /v1/reviews/{id}` returns), `answers.csv`
/// and `controls.csv`. Everything is read from one snapshot, and the report
/// names the audit chain's head at that moment. Each download is audited
/// (`evidence.exported`, naming that head).
#[utoipa::path(get, path = "/v1/reviews/{id}/evidence", tag = "evidence", params(("id" = String, Path)),
    responses(
        (status = 200, description = "The evidence pack", content_type = "application/zip", body = Vec<u8>,
            headers(("Content-Disposition" = String, description = "attachment; filename=\"evidence-<provider>-<model or provider>-<review id>.zip\""))),
        (status = 404, description = "No such review", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn evidence_pack(
    state: web::Data<AppState>,
    principal: Principal,
    request_id: RequestId,
    path: web::Path<ReviewId>,
) -> Result<HttpResponse, ApiError> {
    principal.require(STAFF)?;
    let actor = Actor::person(&principal, Some(request_id.to_string()));
    let pack = super::export(&state.reviews, actor, path.into_inner(), state.clock.now()).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(pack.file_name)],
        })
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(pack.bytes))
}

/// The period of `GET /v1/evidence`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// Start of the period (inclusive), RFC 3339.
    #[param(required = true)]
    pub from: Option<String>,
    /// End of the period (exclusive), RFC 3339.
    #[param(required = true)]
    pub to: Option<String>,
}

/// Summarize reviews over a period, for an audit or a management review.
///
/// Roles: `admin`.
///
/// Counts, each in total and by risk tier: reviews `started` in the period;
/// reviews `decided` in it, also by outcome (approved, approved with
/// conditions, rejected, withdrawn); reviews `overdue` now (in progress with
/// an open stage past its due time); and approvals `expired` (their
/// `valid_until` in the period and passed, with no later approval of the same
/// subject before it).
#[utoipa::path(get, path = "/v1/evidence", tag = "evidence", params(PeriodQuery),
    responses(
        (status = 200, description = "The summary", body = PeriodSummary),
        (status = 422, description = "A missing or bad `from` or `to`", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn period_summary(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<PeriodQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(ADMINS)?;
    let mut errors = Vec::new();
    let from = parse_time("from", query.from.as_deref(), &mut errors);
    let to = parse_time("to", query.to.as_deref(), &mut errors);
    for (field, value) in [("from", &query.from), ("to", &query.to)] {
        if value.as_deref().is_none_or(str::is_empty) {
            errors.push(FieldError::new(field, "is required"));
        }
    }
    check_period(from, to, &mut errors);
    let (Some(from), Some(to), true) = (from, to, errors.is_empty()) else {
        errors.sort_by(|a, b| a.field.cmp(&b.field));
        return Err(ApiError::Validation(errors));
    };
    let now = state.clock.now();
    let summary = state
        .store
        .run(move |conn| {
            crate::db::in_snapshot(conn, |conn| summary::summarize(conn, from, to, now))
                .map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(summary))
}
