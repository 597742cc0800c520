//! HTTP routes of workflow definitions: what a client needs to render and
//! answer every questionnaire without reading files.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::Workflow;
use crate::auth::Principal;
use crate::auth::roles::STAFF;
use crate::http::AppState;
use crate::http::extract::Page;
use crate::http::problem::{ApiError, Problem};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/workflows").route(web::get().to(list_workflows)))
        .service(web::resource("/v1/workflows/{id}").route(web::get().to(get_workflow)));
}

/// A workflow as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowListing {
    pub id: String,
    pub version: i64,
    pub title: String,
    pub description: Option<String>,
    pub digest: String,
    pub stages: Vec<String>,
}

/// A workflow with every stage and question inline.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowDocument {
    #[serde(flatten)]
    pub workflow: Workflow,
    /// SHA-256 of the definition's text; reviews pin it.
    pub digest: String,
}

/// List the workflows new reviews can follow.
///
/// Roles: `vendor_manager`, the reviewer roles, `approver`, `admin`.
#[utoipa::path(get, path = "/v1/workflows", tag = "workflows",
    responses(
        (status = 200, description = "Every workflow", body = inline(Page<WorkflowListing>)),
    ), security(("bearer" = [])))]
pub async fn list_workflows(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    principal.require(STAFF)?;
    let items: Vec<WorkflowListing> = state
        .reviews
        .catalog
        .all()
        .map(|w| WorkflowListing {
            id: w.workflow.id.clone(),
            version: w.workflow.version,
            title: w.workflow.title.clone(),
            description: w.workflow.description.clone(),
            digest: w.digest.clone(),
            stages: w
                .workflow
                .stages
                .iter()
                .map(|s| s.key.to_string())
                .collect(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(Page {
        items,
        next_cursor: None,
    }))
}

/// A workflow: stages (dependencies, who answers, who approves, approvals per
/// tier, tiers, SLA, escalation) and each stage's questionnaire.
///
/// Roles: `vendor_manager`, the reviewer roles, `approver`, `admin`.
#[utoipa::path(get, path = "/v1/workflows/{id}", tag = "workflows", params(("id" = String, Path)),
    responses(
        (status = 200, description = "The workflow", body = WorkflowDocument),
        (status = 404, description = "No such workflow", body = Problem, content_type = "application/problem+json"),
    ), security(("bearer" = [])))]
pub async fn get_workflow(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(STAFF)?;
    let id = path.into_inner();
    let loaded = state
        .reviews
        .catalog
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no workflow `{id}`")))?;
    Ok(HttpResponse::Ok().json(WorkflowDocument {
        workflow: loaded.workflow.clone(),
        digest: loaded.digest.clone(),
    }))
}
