//! HTTP routes of webhook subscriptions (admin).

use actix_web::{HttpResponse, web};

use super::{CreatedWebhook, NewWebhook, Webhook, WebhookError, store};
use crate::auth::Principal;
use crate::auth::roles::ADMINS;
use crate::http::AppState;
use crate::http::auth::Admin;
use crate::http::extract::{Page, ValidJson};
use crate::http::problem::{ApiError, Problem};

impl From<WebhookError> for ApiError {
    fn from(error: WebhookError) -> Self {
        match error {
            WebhookError::NotFound(_) => ApiError::NotFound(error.to_string()),
            WebhookError::Refused(why) => ApiError::validation("url", why),
            WebhookError::Store(e) => e.into(),
        }
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/webhooks")
            .route(web::get().to(list_webhooks))
            .route(web::post().to(create_webhook)),
    )
    .service(web::resource("/v1/webhooks/{id}").route(web::delete().to(delete_webhook)));
}

const PROBLEM: &str = "application/problem+json";

/// Subscribe a URL to events (`status.changed`).
///
/// Roles: `admin`. Each delivery is a POST with headers `Clearance-Event`,
/// `Clearance-Delivery` (a unique id to de-duplicate retries) and
/// `Clearance-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>`.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = NewWebhook,
    responses(
        (status = 201, description = "The subscription and its secret (shown once)", body = CreatedWebhook),
        (status = 422, description = "Bad URL, secret or events", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn create_webhook(
    state: web::Data<AppState>,
    Admin(actor): Admin,
    body: ValidJson<NewWebhook>,
) -> Result<HttpResponse, ApiError> {
    let created = super::subscribe(
        &state.work,
        actor,
        body.0,
        state.config.webhook_targets,
        state.clock.now(),
    )
    .await?;
    Ok(HttpResponse::Created().json(created))
}

/// List subscriptions.
///
/// Roles: `admin`.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    responses(
        (status = 200, description = "Every subscription", body = inline(Page<Webhook>)),
    ), security(("bearer" = [])))]
pub async fn list_webhooks(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    principal.require(ADMINS)?;
    let rows = state
        .store
        .run(|conn| store::all(conn).map_err(ApiError::from))
        .await?;
    Ok(HttpResponse::Ok().json(Page {
        items: rows.iter().map(Webhook::from).collect::<Vec<_>>(),
        next_cursor: None,
    }))
}

/// Delete a subscription; queued deliveries to it are dropped.
///
/// Roles: `admin`.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such subscription", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn delete_webhook(
    state: web::Data<AppState>,
    Admin(actor): Admin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    super::unsubscribe(&state.work, actor, path.into_inner(), state.clock.now()).await?;
    Ok(HttpResponse::NoContent().finish())
}
