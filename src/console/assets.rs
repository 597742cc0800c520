//! The console's stylesheet and script, embedded in the binary and served
//! under names that carry a digest of their content, so a browser may keep
//! them for a year: a new build has new names.

use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// Where the pages find the assets.
#[derive(Debug, Clone)]
pub struct Links {
    pub css: &'static str,
    pub js: &'static str,
}

fn named(stem: &str, extension: &str, body: &str) -> String {
    let digest = hex::encode(&Sha256::digest(body.as_bytes())[..6]);
    format!("/assets/{stem}-{digest}.{extension}")
}

static LINKS: LazyLock<(String, String)> =
    LazyLock::new(|| (named("console", "css", CSS), named("console", "js", JS)));

pub fn links() -> Links {
    Links {
        css: LINKS.0.as_str(),
        js: LINKS.1.as_str(),
    }
}

/// `GET /assets/{name}`: the asset of that (digested) name.
pub async fn serve(req: HttpRequest) -> HttpResponse {
    let path = req.path();
    let (content_type, body) = if path == LINKS.0 {
        ("text/css; charset=utf-8", CSS)
    } else if path == LINKS.1 {
        ("text/javascript; charset=utf-8", JS)
    } else {
        let mut response = HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("no such asset");
        super::page::secure(&mut response);
        return response;
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}
