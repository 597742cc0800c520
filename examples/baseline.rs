//! The benchmark's yardstick: the smallest actix-web handler that answers a
//! JSON body of a given size, to compare Clearance's status lookups against.
//!
//! `cargo run --release --example baseline -- 127.0.0.1:18081 300`

use actix_web::{App, HttpResponse, HttpServer, web};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let bind = args.next().unwrap_or_else(|| "127.0.0.1:18081".into());
    let size: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(300);
    // A JSON object whose serialized size is `size` bytes.
    let padding = "x".repeat(size.saturating_sub(14));
    let body = web::Bytes::from(format!("{{\"padding\":\"{padding}\"}}"));
    HttpServer::new(move || {
        let body = body.clone();
        App::new().default_service(web::to(move || {
            let body = body.clone();
            async move {
                HttpResponse::Ok()
                    .content_type("application/json")
                    .body(body)
            }
        }))
    })
    .bind(bind)?
    .run()
    .await
}
