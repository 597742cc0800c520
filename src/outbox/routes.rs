//! Admin routes of the outbox: what waits, what died, retrying it, and
//! running the delivery job at once.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{MessageKind, MessageState, OutboxRow, RetryError};
use crate::auth::Principal;
use crate::auth::roles::ADMINS;
use crate::http::AppState;
use crate::http::auth::Admin;
use crate::http::extract::{Page, PageParams};
use crate::http::problem::{ApiError, Problem};
use crate::http::telemetry::without_tokens;
use crate::ids::MessageId;

impl From<RetryError> for ApiError {
    fn from(error: RetryError) -> Self {
        match error {
            RetryError::NotFound(_) => ApiError::NotFound(error.to_string()),
            RetryError::AlreadySent(_) => ApiError::Conflict(error.to_string()),
            RetryError::Store(e) => e.into(),
        }
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/admin/outbox").route(web::get().to(list_outbox)))
        .service(web::resource("/v1/admin/outbox/{id}/retry").route(web::post().to(retry)));
}

const PROBLEM: &str = "application/problem+json";

#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxMessage {
    pub id: MessageId,
    /// `email` or `webhook`.
    pub kind: MessageKind,
    pub state: MessageState,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub payload: serde_json::Value,
}

impl From<OutboxRow> for OutboxMessage {
    fn from(row: OutboxRow) -> Self {
        OutboxMessage {
            id: row.id,
            kind: row.kind,
            state: row.state,
            attempts: row.attempts,
            next_attempt_at: row.next_attempt_at.and_utc(),
            last_error: row.last_error,
            created_at: row.created_at.and_utc(),
            sent_at: row.sent_at.map(|s| s.and_utc()),
            payload: serde_json::from_str(&without_tokens(&row.payload)).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutboxQuery {
    /// `pending`, `sending`, `sent` or `dead`.
    pub state: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// Messages in the outbox, oldest first.
///
/// Roles: `admin`.
#[utoipa::path(get, path = "/v1/admin/outbox", tag = "operations", params(OutboxQuery),
    responses(
        (status = 200, description = "A page of messages", body = inline(Page<OutboxMessage>)),
        (status = 422, description = "Bad filter", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn list_outbox(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<OutboxQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(ADMINS)?;
    let wanted = match query.state.as_deref() {
        None => None,
        Some(text) => Some(MessageState::parse(text).ok_or_else(|| {
            let known: Vec<_> = MessageState::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::validation("state", format!("must be one of: {}", known.join(", ")))
        })?),
    };
    let page = PageParams {
        limit: query.limit.clone(),
        cursor: query.cursor.clone(),
    }
    .check()?;
    let limit = page.limit;
    let rows = state
        .store
        .run(move |conn| super::store::list(conn, wanted, &page).map_err(ApiError::from))
        .await?;
    let items: Vec<OutboxMessage> = rows.into_iter().map(OutboxMessage::from).collect();
    Ok(HttpResponse::Ok().json(Page::from_rows(items, limit, |m| m.id.to_string())))
}

/// Send a dead (or failing) message again, from a fresh count of attempts.
///
/// Roles: `admin`.
#[utoipa::path(post, path = "/v1/admin/outbox/{id}/retry", tag = "operations", params(("id" = String, Path)),
    responses(
        (status = 200, description = "Queued again", body = OutboxMessage),
        (status = 404, description = "No such message", body = Problem, content_type = PROBLEM),
        (status = 409, description = "Already sent", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn retry(
    state: web::Data<AppState>,
    Admin(actor): Admin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = super::retry(&state.work, actor, path.into_inner(), state.clock.now()).await?;
    Ok(HttpResponse::Ok().json(OutboxMessage::from(row)))
}
