//! HTTP routes of webhook subscriptions (admin).

use crate::http::telemetry::RequestId;
use actix_web::{HttpResponse, web};
use base64::Engine as _;
use diesel::prelude::*;

use super::{CreatedWebhook, EVENTS, NewWebhook, Webhook, WebhookRow};
use crate::audit::{self, Actor, Change};
use crate::auth::{Principal, Role};
use crate::http::AppState;
use crate::http::extract::{Page, ValidJson};
use crate::http::problem::{ApiError, Problem};
use crate::schema::webhooks;

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
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Not an admin", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Bad URL, secret or events", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn create_webhook(
    state: web::Data<AppState>,
    principal: Principal,
    request_id: RequestId,
    body: ValidJson<NewWebhook>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&[Role::Admin])?;
    let input = body.0;
    let secret = input.secret.unwrap_or_else(|| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
    });
    let events = input
        .events
        .unwrap_or_else(|| EVENTS.iter().map(|e| (*e).to_owned()).collect());
    let now = state.clock.now();
    let row = WebhookRow {
        id: uuid::Uuid::now_v7().to_string(),
        url: input.url.unwrap_or_default(),
        secret: secret.clone(),
        events: serde_json::to_string(&events).unwrap_or_else(|_| "[]".into()),
        created_by: principal.sub.clone(),
        created_at: now.naive_utc(),
    };
    let actor = Actor::person(&principal, Some(request_id.to_string()));
    let webhook = Webhook::from(&row);
    let logged = serde_json::to_value(&webhook).unwrap_or_default();
    state
        .store
        .write(move |conn| {
            diesel::insert_into(webhooks::table)
                .values(&row)
                .execute(conn)?;
            audit::append(
                conn,
                &actor,
                Change {
                    action: "webhook.created",
                    subject: format!("webhook/{}", row.id),
                    review_id: None,
                    before: None,
                    after: Some(logged),
                },
                now,
            )?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(HttpResponse::Created().json(CreatedWebhook { webhook, secret }))
}

/// List subscriptions.
///
/// Roles: `admin`.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    responses(
        (status = 200, description = "Every subscription", body = inline(Page<Webhook>)),
        (status = 403, description = "Not an admin", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn list_webhooks(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    principal.require(&[Role::Admin])?;
    let rows: Vec<WebhookRow> = state
        .store
        .run(|conn| {
            webhooks::table
                .select(WebhookRow::as_select())
                .order(webhooks::created_at.asc())
                .load(conn)
                .map_err(ApiError::from)
        })
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
        (status = 403, description = "Not an admin", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such subscription", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn delete_webhook(
    state: web::Data<AppState>,
    principal: Principal,
    request_id: RequestId,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&[Role::Admin])?;
    let id = path.into_inner();
    let actor = Actor::person(&principal, Some(request_id.to_string()));
    let now = state.clock.now();
    state
        .store
        .write(move |conn| {
            let deleted =
                diesel::delete(webhooks::table.filter(webhooks::id.eq(&id))).execute(conn)?;
            if deleted == 0 {
                return Err(ApiError::NotFound(format!("no webhook `{id}`")));
            }
            audit::append(
                conn,
                &actor,
                Change {
                    action: "webhook.deleted",
                    subject: format!("webhook/{id}"),
                    review_id: None,
                    before: None,
                    after: None,
                },
                now,
            )?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
