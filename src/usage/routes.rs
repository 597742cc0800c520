//! `GET /v1/models/{provider}/{model}/usage`: who asked about a model, for
//! which use cases, and how the answers went, per hour.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Integrator, floor_hour};
use crate::audit::routes::{check_period, parse_time};
use crate::auth::Principal;
use crate::auth::roles::MANAGERS;
use crate::http::AppState;
use crate::http::extract::{Page, PageParams};
use crate::http::problem::{ApiError, Problem};
use crate::ids::{ModelSlug, ProviderSlug};
use crate::providers::service as catalogue;
use crate::validation::FieldError;

/// The longest period one answer covers.
const PERIOD_MAX: TimeDelta = TimeDelta::days(31);

/// The period when none is asked for.
const PERIOD_DEFAULT: TimeDelta = TimeDelta::days(7);

const PROBLEM: &str = "application/problem+json";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/models/{provider}/{model}/usage").route(web::get().to(model_usage)),
    );
}

/// The period of `GET /v1/models/{provider}/{model}/usage`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// Hours from this RFC 3339 time (rounded down to the hour); default
    /// seven days before `to`.
    pub from: Option<String>,
    /// Hours starting before this RFC 3339 time; default the end of the
    /// current hour. At most 31 days after `from`.
    pub to: Option<String>,
    /// Hours per page, 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One hour's answers to one asker for one use case.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HourUsage {
    /// The hour's start.
    pub hour: DateTime<Utc>,
    pub sub: String,
    /// `null` when the ask named none (a lookup, or a check item without one).
    pub use_case: Option<String>,
    pub allowed: i64,
    pub denied: i64,
}

/// A model's usage over a period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UsageReport {
    #[schema(value_type = String)]
    pub provider: ProviderSlug,
    #[schema(value_type = String)]
    pub model: ModelSlug,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Answers in the period that allowed the use, and that denied it.
    pub allowed: i64,
    pub denied: i64,
    /// Who asked, most answers first.
    pub integrators: Vec<Integrator>,
    /// By hour, then asker and use case: one page of them.
    pub hours: Vec<HourUsage>,
    /// The cursor of the next page of `hours` (the same period), or `null`.
    pub next_cursor: Option<String>,
}

/// The usage of a model, per hour: which integrators asked (lookups and
/// check items), for which use cases, and how many answers allowed and
/// denied its use. A lookup counts as allowed when the model's clearance is
/// an approval in force.
///
/// Roles: `vendor_manager`, `admin`. Answers are written every
/// `CLEARANCE_INTAKE_FLUSH_MS` (this instance's before it answers); hours
/// are kept 90 days. The totals and integrators cover the whole period;
/// `hours` is paginated (`limit`, `cursor`).
#[utoipa::path(get, path = "/v1/models/{provider}/{model}/usage", tag = "status",
    params(("provider" = String, Path), ("model" = String, Path), UsageQuery),
    responses(
        (status = 200, description = "The usage", body = UsageReport),
        (status = 404, description = "No such provider or model", body = Problem, content_type = PROBLEM),
        (status = 422, description = "A bad `from`, `to`, `limit` or `cursor`, or a period longer than 31 days", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn model_usage(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(String, String)>,
    query: web::Query<UsageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(MANAGERS)?;
    let not_found = || ApiError::NotFound(format!("no model `{}/{}`", path.0, path.1));
    let provider = ProviderSlug::parse(&path.0).map_err(|_| not_found())?;
    let model = ModelSlug::parse(&path.1).map_err(|_| not_found())?;
    let (from, to) = period(&query, state.clock.now())?;
    let page = PageParams {
        limit: query.limit.clone(),
        cursor: query.cursor.clone(),
    }
    .check()?;
    let after =
        match page.after.as_deref() {
            None => None,
            Some(text) => Some(serde_json::from_str::<HourKey>(text).map_err(|_| {
                ApiError::validation("cursor", "is not a cursor this service issued")
            })?),
        };
    super::write_now(&state).await;
    let (p, m) = (provider.clone(), model.clone());
    let (mut rows, integrators) = state
        .store
        .run(move |conn| {
            catalogue::model(conn, &p, &m)?;
            let rows = super::rows(conn, p.as_str(), Some(m.as_str()), (from, to))?;
            let integrators = super::integrators(conn, &rows)?;
            Ok::<_, ApiError>((rows, integrators))
        })
        .await?;
    let (allowed, denied) = (
        rows.iter().map(|r| r.allowed).sum(),
        rows.iter().map(|r| r.denied).sum(),
    );
    // In this service's own order, so that a cursor compares the same on
    // every backend and collation.
    rows.sort_by_cached_key(HourKey::of);
    let rest: Vec<HourUsage> = rows
        .into_iter()
        .filter(|row| after.as_ref().is_none_or(|a| HourKey::of(row) > *a))
        .take(page.limit as usize + 1)
        .map(|row| HourUsage {
            hour: row.hour,
            sub: row.sub,
            use_case: Some(row.use_case).filter(|u| !u.is_empty()),
            allowed: row.allowed,
            denied: row.denied,
        })
        .collect();
    let Page {
        items: hours,
        next_cursor,
    } = Page::from_rows(rest, page.limit, |h| {
        serde_json::to_string(&HourKey::of_hour(h)).unwrap_or_default()
    });
    let report = UsageReport {
        provider,
        model,
        from,
        to,
        allowed,
        denied,
        integrators,
        hours,
        next_cursor,
    };
    Ok(HttpResponse::Ok().json(report))
}

/// Where a row of `hours` sorts: hour (microseconds), asker, use case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct HourKey(i64, String, String);

impl HourKey {
    fn of(row: &super::Row) -> Self {
        Self(
            row.hour.timestamp_micros(),
            row.sub.clone(),
            row.use_case.clone(),
        )
    }

    fn of_hour(hour: &HourUsage) -> Self {
        Self(
            hour.hour.timestamp_micros(),
            hour.sub.clone(),
            hour.use_case.clone().unwrap_or_default(),
        )
    }
}

/// The period asked for, on whole hours: `from` rounded down, `to` as given
/// (the end of the current hour by default).
fn period(
    query: &UsageQuery,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let mut errors = Vec::new();
    let from = parse_time("from", query.from.as_deref(), &mut errors);
    let to = parse_time("to", query.to.as_deref(), &mut errors);
    check_period(from, to, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let to = to.unwrap_or_else(|| floor_hour(now) + TimeDelta::hours(1));
    let from = floor_hour(from.unwrap_or_else(|| {
        to.checked_sub_signed(PERIOD_DEFAULT)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }));
    if to - from > PERIOD_MAX {
        return Err(ApiError::Validation(vec![FieldError::new(
            "to",
            "must be at most 31 days after `from`",
        )]));
    }
    Ok((from, to))
}
