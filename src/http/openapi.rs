//! The OpenAPI 3.1 document: every endpoint documents itself (roles in its
//! description, error responses as problem documents) and is listed here.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::http::problem::{FieldError, Problem};
use crate::providers::{self, routes as providers_routes};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Clearance",
        description = "Due-diligence reviews of third-party AI model providers, and the clearance status of each model.\n\nAuthenticate with `Authorization: Bearer <JWT>`. Each operation names the roles it admits: a missing or invalid token gets 401, a token without the role 403. Errors are `application/problem+json` (RFC 9457).",
    ),
    paths(
        super::healthz,
        super::readyz,
        providers_routes::list_providers,
        providers_routes::create_provider,
        providers_routes::get_provider,
        providers_routes::update_provider,
        providers_routes::list_models,
        providers_routes::create_model,
        providers_routes::get_model,
        providers_routes::update_model,
    ),
    components(schemas(
        Problem, FieldError, super::Health,
        providers::Provider, providers::Contact, providers::Model, providers::Modality, providers::Hosting,
        providers::NewProvider, providers::ProviderPatch, providers::NewModel, providers::ModelPatch,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "providers", description = "Providers and their models"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
