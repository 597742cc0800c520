//! `GET /reviews/{id}/evidence`: the evidence pack.

use actix_web::http::header::{ContentDisposition, DispositionParam, DispositionType};
use actix_web::{HttpResponse, web};

use super::*;
use crate::console::page::{self, PageError, Viewer};

pub(super) async fn evidence(
    viewer: Viewer,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    reader(&viewer)?;
    let id = review_id(&path)?;
    let state = &viewer.state;
    let pack = crate::evidence::export(&state.reviews, viewer.actor(), id, state.clock.now())
        .await
        .map_err(review_failure)?;
    let mut response = HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(pack.file_name)],
        })
        .body(pack.bytes);
    page::secure(&mut response);
    Ok(response)
}
