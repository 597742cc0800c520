//! HTTP routes of evidence: a review's evidence pack.

use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType};
use actix_web::{HttpResponse, web};

use super::{Evidence, pack};
use crate::auth::Principal;
use crate::db::in_snapshot;
use crate::http::AppState;
use crate::http::problem::{ApiError, Problem};
use crate::reviews::routes::REVIEW_READERS;
use crate::reviews::store::pinned_workflow;

const PROBLEM: &str = "application/problem+json";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/reviews/{id}/evidence").route(web::get().to(evidence_pack)));
}

impl From<pack::PackError> for ApiError {
    fn from(error: pack::PackError) -> Self {
        ApiError::Internal(error.to_string())
    }
}

/// A pack and its file name.
struct Pack {
    file_name: String,
    bytes: Vec<u8>,
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
/// names the audit chain's head at that moment.
#[utoipa::path(get, path = "/v1/reviews/{id}/evidence", tag = "evidence", params(("id" = String, Path)),
    responses(
        (status = 200, description = "The evidence pack", content_type = "application/zip", body = Vec<u8>,
            headers(("Content-Disposition" = String, description = "attachment; filename=\"evidence-<provider>-<model or provider>-<review id>.zip\""))),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = PROBLEM),
        (status = 403, description = "The token lacks the role", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such review", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn evidence_pack(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(REVIEW_READERS)?;
    let id = path.into_inner();
    let now = state.clock.now();
    let reviews = state.reviews.clone();
    let pack = state
        .store
        .run(move |conn| {
            in_snapshot(conn, |conn| {
                let detail = reviews.detail(conn, &id, now)?;
                let workflow =
                    pinned_workflow(conn, &reviews.catalog, &detail.review.workflow.digest)?;
                let head = crate::audit::store::head(conn)?;
                let evidence = Evidence::build(&detail, &workflow.workflow, &head, now);
                Ok::<_, ApiError>(Pack {
                    file_name: pack::file_name(&evidence),
                    bytes: pack::zip(&evidence, now)?,
                })
            })
        })
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(pack.file_name)],
        })
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(pack.bytes))
}
