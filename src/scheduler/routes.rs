//! Admin routes of the scheduler: run a job now, and move the manual clock.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Job, JobReport};
use crate::auth::{Principal, Role};
use crate::http::AppState;
use crate::http::problem::{ApiError, Problem};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/admin/jobs/{job}/run").route(web::post().to(run_job)))
        .service(web::resource("/v1/admin/clock").route(web::post().to(advance_clock)));
}

const PROBLEM: &str = "application/problem+json";

/// Run a job now and return when it has finished, with what it did.
///
/// Roles: `admin`. Jobs: `sla-sweep` (reminders and escalations of overdue
/// stages), `re-review-sweep` (open re-reviews, record lapsed approvals),
/// `digest` (each person's daily summary), `outbox` (deliver due emails and
/// webhooks).
#[utoipa::path(post, path = "/v1/admin/jobs/{job}/run", tag = "operations", params(("job" = String, Path)),
    responses(
        (status = 200, description = "What the job did", body = JobReport),
        (status = 403, description = "Not an admin", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such job", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn run_job(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&[Role::Admin])?;
    let name = path.into_inner();
    let Some(job) = Job::parse(&name) else {
        let known: Vec<_> = Job::ALL.iter().map(|j| j.as_str()).collect();
        return Err(ApiError::NotFound(format!(
            "no job `{name}` (jobs: {})",
            known.join(", ")
        )));
    };
    let report = state.scheduler.run(job).await?;
    Ok(HttpResponse::Ok().json(report))
}

#[derive(Debug, Deserialize, validator::Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockInput {
    /// An ISO 8601 duration to move forward by, e.g. `P3D`, `PT2H30M`.
    #[schema(example = "P3D")]
    pub advance: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClockView {
    pub now: DateTime<Utc>,
}

/// Reads an ISO 8601 duration; years count 365 days and months 30.
pub fn parse_duration(text: &str) -> Result<TimeDelta, String> {
    let duration = iso8601::duration(text.trim())
        .map_err(|_| format!("`{text}` is not an ISO 8601 duration such as P3D or PT2H"))?;
    let delta = match duration {
        iso8601::Duration::Weeks(w) => TimeDelta::weeks(i64::from(w)),
        iso8601::Duration::YMDHMS {
            year,
            month,
            day,
            hour,
            minute,
            second,
            millisecond,
        } => {
            TimeDelta::days(i64::from(year) * 365 + i64::from(month) * 30 + i64::from(day))
                + TimeDelta::hours(i64::from(hour))
                + TimeDelta::minutes(i64::from(minute))
                + TimeDelta::seconds(i64::from(second))
                + TimeDelta::milliseconds(i64::from(millisecond))
        }
    };
    if delta <= TimeDelta::zero() {
        return Err("must move time forward".into());
    }
    Ok(delta)
}

/// Move the clock forward (time-skipping mode only).
///
/// Roles: `admin`. Answers 404 unless the service runs with
/// `CLEARANCE_CLOCK=manual`. Scheduled jobs whose time has come run within
/// a second; run them at once with `POST /v1/admin/jobs/{job}/run`.
#[utoipa::path(post, path = "/v1/admin/clock", tag = "operations", request_body = ClockInput,
    responses(
        (status = 200, description = "The new time", body = ClockView),
        (status = 403, description = "Not an admin", body = Problem, content_type = PROBLEM),
        (status = 404, description = "Not in time-skipping mode", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Not a forward ISO 8601 duration", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn advance_clock(
    state: web::Data<AppState>,
    principal: Principal,
    body: crate::http::extract::ValidJson<ClockInput>,
) -> Result<HttpResponse, ApiError> {
    let Some(clock) = &state.manual_clock else {
        return Err(ApiError::NotFound(
            "the clock can be moved only with CLEARANCE_CLOCK=manual".into(),
        ));
    };
    principal.require(&[Role::Admin])?;
    let by = parse_duration(&body.0.advance).map_err(|m| ApiError::validation("advance", m))?;
    let now = clock.advance(by);
    tracing::info!(%now, by = %body.0.advance, "clock moved forward");
    Ok(HttpResponse::Ok().json(ClockView { now }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_durations_become_deltas() {
        assert_eq!(parse_duration("P3D").unwrap(), TimeDelta::days(3));
        assert_eq!(parse_duration("PT2H30M").unwrap(), TimeDelta::minutes(150));
        assert_eq!(parse_duration("P2W").unwrap(), TimeDelta::days(14));
        assert!(parse_duration("3 days").is_err());
        assert!(parse_duration("P0D").is_err());
    }
}
