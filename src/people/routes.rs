//! Admin routes of the directory: the people who have signed in, and the
//! shared mailbox of each role.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::auth::roles::ADMINS;
use crate::auth::{Principal, Role};
use crate::http::AppState;
use crate::http::auth::Admin;
use crate::http::extract::ValidJson;
use crate::http::problem::{ApiError, Problem};
use crate::people::Person;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/admin/people").route(web::get().to(list_people)))
        .service(
            web::resource("/v1/admin/roles/{role}/mailbox")
                .route(web::get().to(get_mailbox))
                .route(web::put().to(put_mailbox)),
        );
}

const PROBLEM: &str = "application/problem+json";

/// Everyone who has signed in, with the address and roles of their last token.
///
/// Roles: `admin`.
#[utoipa::path(get, path = "/v1/admin/people", tag = "operations",
    responses(
        (status = 200, description = "The directory", body = [Person]),
    ), security(("bearer" = [])))]
pub async fn list_people(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    principal.require(ADMINS)?;
    let people = state
        .store
        .run(|conn| crate::people::everyone(conn).map_err(ApiError::from))
        .await?;
    Ok(HttpResponse::Ok().json(people))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MailboxInput {
    /// Addresses that receive notices to the role; `[]` removes the mailbox
    /// (notices then go to every known person with the role).
    #[validate(length(max = 50))]
    pub emails: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MailboxView {
    pub role: Role,
    /// The mailbox in force: set here, else configured, else empty.
    pub emails: Vec<String>,
    /// `api`, `configuration` or `none` (notices go to the people with the role).
    pub source: String,
}

fn parse_role(text: &str) -> Result<Role, ApiError> {
    Role::named(text).map_err(|e| ApiError::NotFound(format!("no role `{text}`: {e}")))
}

async fn view(state: &AppState, role: Role) -> Result<MailboxView, ApiError> {
    let stored = state
        .store
        .run(move |conn| crate::people::stored_mailbox(conn, role).map_err(ApiError::from))
        .await?
        .filter(|e| !e.is_empty());
    Ok(match stored {
        Some(emails) => MailboxView {
            role,
            emails,
            source: "api".into(),
        },
        None => match state.config.mailboxes.get(&role) {
            Some(emails) => MailboxView {
                role,
                emails: emails.clone(),
                source: "configuration".into(),
            },
            None => MailboxView {
                role,
                emails: Vec::new(),
                source: "none".into(),
            },
        },
    })
}

/// The mailbox that notices to a role go to.
///
/// Roles: `admin`.
#[utoipa::path(get, path = "/v1/admin/roles/{role}/mailbox", tag = "operations", params(("role" = String, Path)),
    responses(
        (status = 200, description = "The mailbox in force", body = MailboxView),
        (status = 404, description = "No such role", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn get_mailbox(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(ADMINS)?;
    let role = parse_role(&path)?;
    Ok(HttpResponse::Ok().json(view(&state, role).await?))
}

/// Set the mailbox that notices to a role go to (overrides the configured one).
///
/// Roles: `admin`.
#[utoipa::path(put, path = "/v1/admin/roles/{role}/mailbox", tag = "operations", params(("role" = String, Path)),
    request_body = MailboxInput,
    responses(
        (status = 200, description = "The mailbox in force", body = MailboxView),
        (status = 404, description = "No such role", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Not an email address", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn put_mailbox(
    state: web::Data<AppState>,
    Admin(actor): Admin,
    path: web::Path<String>,
    body: ValidJson<MailboxInput>,
) -> Result<HttpResponse, ApiError> {
    let role = parse_role(&path)?;
    let mut emails = Vec::new();
    for (i, email) in body.0.emails.iter().enumerate() {
        let email = email.trim();
        if email.parse::<lettre::message::Mailbox>().is_err()
            || !email.contains('@')
            || crate::validation::line_fault(email).is_some()
        {
            return Err(ApiError::validation(
                format!("emails[{i}]"),
                format!("`{email}` is not an email address"),
            ));
        }
        emails.push(email.to_owned());
    }
    crate::people::set_mailbox(&state.work, actor, role, emails, state.clock.now()).await?;
    Ok(HttpResponse::Ok().json(view(&state, role).await?))
}
