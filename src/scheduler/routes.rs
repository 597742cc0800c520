//! Admin routes of the scheduler: run a job now, and move the manual clock.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Job, JobReport};
use crate::auth::Principal;
use crate::auth::roles::ADMINS;
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
        (status = 404, description = "No such job", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn run_job(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(ADMINS)?;
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
    /// How far to move forward, e.g. `3d`, `2h 30m` (ISO 8601 such as `P3D`
    /// is read too); at most a hundred years.
    #[schema(example = "3d")]
    pub advance: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClockView {
    pub now: DateTime<Utc>,
}

/// How far to move the clock: a duration in the one format (`3d`, see
/// [`crate::duration`]), or, as this endpoint first took it, ISO 8601 (`P3D`;
/// years count 365 days and months 30). At most a hundred years at a time.
pub fn advance_by(text: &str) -> Result<TimeDelta, String> {
    let delta = match crate::duration::parse(text) {
        Ok(delta) => delta,
        Err(error) if !text.trim_start().starts_with('P') => return Err(error.to_string()),
        Err(_) => iso8601_duration(text)?,
    };
    if delta <= TimeDelta::zero() {
        return Err("must move time forward".into());
    }
    if delta > TimeDelta::days(100 * 365) {
        return Err("must be at most a hundred years".into());
    }
    Ok(delta)
}

fn iso8601_duration(text: &str) -> Result<TimeDelta, String> {
    let unreadable = || format!("`{text}` is not a duration such as 3d, 2h or P3D");
    let duration = iso8601::duration(text.trim()).map_err(|_| unreadable())?;
    let seconds: i128 = match duration {
        iso8601::Duration::Weeks(w) => i128::from(w) * 7 * 86_400,
        iso8601::Duration::YMDHMS {
            year,
            month,
            day,
            hour,
            minute,
            second,
            millisecond,
        } => {
            (i128::from(year) * 365 + i128::from(month) * 30 + i128::from(day)) * 86_400
                + i128::from(hour) * 3600
                + i128::from(minute) * 60
                + i128::from(second)
                + i128::from(millisecond / 1000)
        }
    };
    i64::try_from(seconds)
        .ok()
        .and_then(TimeDelta::try_seconds)
        .ok_or_else(|| "must be at most a hundred years".to_owned())
}

/// Move the clock forward (time-skipping mode only).
///
/// Roles: `admin`. Answers 404 unless the service runs with
/// `CLEARANCE_CLOCK=manual`. Scheduled jobs whose time has come run within
/// a second; run them at once with `POST /v1/admin/jobs/{job}/run`.
#[utoipa::path(post, path = "/v1/admin/clock", tag = "operations", request_body = ClockInput,
    responses(
        (status = 200, description = "The new time", body = ClockView),
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
    principal.require(ADMINS)?;
    let by = advance_by(&body.0.advance).map_err(|m| ApiError::validation("advance", m))?;
    let now = clock.advance(by);
    tracing::info!(%now, by = %body.0.advance, "clock moved forward");
    Ok(HttpResponse::Ok().json(ClockView { now }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_move_the_clock_forward_within_bounds() {
        assert_eq!(advance_by("3d").unwrap(), TimeDelta::days(3));
        assert_eq!(advance_by("P3D").unwrap(), TimeDelta::days(3));
        assert_eq!(advance_by("PT2H30M").unwrap(), TimeDelta::minutes(150));
        assert_eq!(advance_by("P2W").unwrap(), TimeDelta::days(14));
        assert!(advance_by("three days").is_err());
        assert!(advance_by("P0D").is_err());
        assert!(advance_by("0s").is_err());
        assert!(advance_by("P300000Y").is_err());
        assert!(advance_by("99999999999d").is_err());
    }
}
