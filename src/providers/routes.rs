//! HTTP routes of providers and models.

use crate::http::telemetry::RequestId;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{
    CatalogueError, Model, ModelPatch, NewModel, NewProvider, Provider, ProviderPatch,
    ProviderView, service, store,
};
use crate::audit::Actor;
use crate::auth::Principal;
use crate::auth::roles::{EVERYONE, MANAGERS};
use crate::http::AppState;
use crate::http::extract::{Page, PageParams, ValidJson, etag, if_match_version};
use crate::http::problem::{ApiError, Problem};
use crate::ids::{ModelSlug, ProviderSlug};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/providers")
            .route(web::get().to(list_providers))
            .route(web::post().to(create_provider)),
    )
    .service(
        web::resource("/v1/providers/{provider}")
            .route(web::get().to(get_provider))
            .route(web::patch().to(update_provider)),
    )
    .service(
        web::resource("/v1/providers/{provider}/models")
            .route(web::get().to(list_models))
            .route(web::post().to(create_model)),
    )
    .service(
        web::resource("/v1/providers/{provider}/models/{model}")
            .route(web::get().to(get_model))
            .route(web::patch().to(update_model)),
    );
}

impl From<CatalogueError> for ApiError {
    fn from(error: CatalogueError) -> Self {
        match error {
            CatalogueError::ProviderNotFound(_) | CatalogueError::ModelNotFound(..) => {
                ApiError::NotFound(error.to_string())
            }
            CatalogueError::Duplicate(_) => ApiError::Conflict(error.to_string()),
            CatalogueError::Stale { .. } => ApiError::PreconditionFailed(error.to_string()),
            CatalogueError::Invalid(errors) => ApiError::Validation(errors),
            CatalogueError::Store(e) => e.into(),
        }
    }
}

fn actor(principal: &Principal, request_id: RequestId) -> Actor {
    Actor::person(principal, Some(request_id.to_string()))
}

fn provider_response(status: actix_web::http::StatusCode, provider: &Provider) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response.insert_header((header::ETAG, etag(provider.revision)));
    if status == actix_web::http::StatusCode::CREATED {
        response.insert_header((header::LOCATION, format!("/v1/providers/{}", provider.slug)));
    }
    response.json(provider)
}

/// Answers `provider` as the caller may see it (integrators: by name).
fn provider_seen(principal: &Principal, provider: Provider) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response.insert_header((header::ETAG, etag(provider.revision)));
    response.json(provider.seen(principal.is_staff()))
}

fn model_response(status: actix_web::http::StatusCode, model: &Model) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response.insert_header((header::ETAG, etag(model.revision)));
    if status == actix_web::http::StatusCode::CREATED {
        response.insert_header((
            header::LOCATION,
            format!("/v1/providers/{}/models/{}", model.provider, model.slug),
        ));
    }
    response.json(model)
}

/// List providers, by slug.
///
/// Roles: every role; integrators read each provider's name alone.
#[utoipa::path(
    get, path = "/v1/providers", tag = "providers",
    params(PageParams),
    responses(
        (status = 200, description = "A page of providers (integrators: names alone)", body = inline(Page<ProviderView>)),
        (status = 422, description = "Bad `limit` or `cursor`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_providers(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    principal.require(EVERYONE)?;
    let page = query.check()?;
    let limit = page.limit;
    let rows = state
        .store
        .run(move |conn| store::list_providers(conn, &page).map_err(ApiError::from))
        .await?;
    let whole = principal.is_staff();
    let providers: Vec<ProviderView> = rows
        .iter()
        .map(|row| row.to_provider().seen(whole))
        .collect();
    Ok(
        HttpResponse::Ok().json(Page::from_rows(providers, limit, |p| match p {
            ProviderView::Whole(p) => p.slug.to_string(),
            ProviderView::Name(p) => p.slug.to_string(),
        })),
    )
}

/// Register a provider.
///
/// Roles: `vendor_manager`, `admin`.
#[utoipa::path(
    post, path = "/v1/providers", tag = "providers",
    request_body = NewProvider,
    responses(
        (status = 201, description = "Created", body = Provider, headers(("ETag" = String), ("Location" = String))),
        (status = 409, description = "The slug is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input, one error per field", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_provider(
    state: web::Data<AppState>,
    principal: Principal,
    request_id: RequestId,
    body: ValidJson<NewProvider>,
) -> Result<HttpResponse, ApiError> {
    principal.require(MANAGERS)?;
    let actor = actor(&principal, request_id);
    let now = state.clock.now();
    let provider = service::create_provider(&state.work, actor, body.0, now).await?;
    Ok(provider_response(
        actix_web::http::StatusCode::CREATED,
        &provider,
    ))
}

/// Read a provider.
///
/// Roles: every role; integrators read its name alone (`slug`, `name`,
/// `suspended`), never its contacts or notes.
#[utoipa::path(
    get, path = "/v1/providers/{provider}", tag = "providers",
    params(("provider" = String, Path, description = "Provider slug")),
    responses(
        (status = 200, description = "The provider (integrators: its name alone)", body = ProviderView, headers(("ETag" = String))),
        (status = 404, description = "No such provider", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_provider(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<ProviderSlug>,
) -> Result<HttpResponse, ApiError> {
    principal.require(EVERYONE)?;
    let slug = path.into_inner();
    let provider = state
        .store
        .run(move |conn| service::provider(conn, &slug).map(|row| row.to_provider()))
        .await?;
    Ok(provider_seen(&principal, provider))
}

/// Change a provider. Absent fields stay; `null` clears an optional one.
///
/// Roles: `vendor_manager`, `admin`. Send `If-Match` with the `ETag` to
/// refuse a change made meanwhile by someone else (412).
#[utoipa::path(
    patch, path = "/v1/providers/{provider}", tag = "providers",
    params(("provider" = String, Path, description = "Provider slug"), ("If-Match" = Option<String>, Header, description = "ETag of the revision being changed")),
    request_body = ProviderPatch,
    responses(
        (status = 200, description = "The changed provider", body = Provider, headers(("ETag" = String))),
        (status = 404, description = "No such provider", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn update_provider(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    request_id: RequestId,
    path: web::Path<ProviderSlug>,
    body: ValidJson<ProviderPatch>,
) -> Result<HttpResponse, ApiError> {
    principal.require(MANAGERS)?;
    let expected = if_match_version(&req)?;
    let actor = actor(&principal, request_id);
    let now = state.clock.now();
    let provider =
        service::update_provider(&state.work, actor, path.into_inner(), body.0, expected, now)
            .await?;
    Ok(provider_response(
        actix_web::http::StatusCode::OK,
        &provider,
    ))
}

/// List a provider's models, by slug.
///
/// Roles: every role.
#[utoipa::path(
    get, path = "/v1/providers/{provider}/models", tag = "providers",
    params(("provider" = String, Path, description = "Provider slug"), PageParams),
    responses(
        (status = 200, description = "A page of models", body = inline(Page<Model>)),
        (status = 404, description = "No such provider", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad `limit` or `cursor`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_models(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<ProviderSlug>,
    query: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    principal.require(EVERYONE)?;
    let page = query.check()?;
    let limit = page.limit;
    let slug = path.into_inner();
    let models = state
        .store
        .run(move |conn| {
            let provider = service::provider(conn, &slug)?;
            let rows = store::list_models(conn, &provider.id, &page)?;
            Ok::<_, CatalogueError>(rows.iter().map(|m| m.to_model(&slug)).collect::<Vec<_>>())
        })
        .await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(models, limit, |m| m.slug.to_string())))
}

/// Register a model of a provider.
///
/// Roles: `vendor_manager`, `admin`.
#[utoipa::path(
    post, path = "/v1/providers/{provider}/models", tag = "providers",
    params(("provider" = String, Path, description = "Provider slug")),
    request_body = NewModel,
    responses(
        (status = 201, description = "Created", body = Model, headers(("ETag" = String), ("Location" = String))),
        (status = 404, description = "No such provider", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The slug is taken for this provider", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input, one error per field", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_model(
    state: web::Data<AppState>,
    principal: Principal,
    request_id: RequestId,
    path: web::Path<ProviderSlug>,
    body: ValidJson<NewModel>,
) -> Result<HttpResponse, ApiError> {
    principal.require(MANAGERS)?;
    let actor = actor(&principal, request_id);
    let now = state.clock.now();
    let model = service::create_model(&state.work, actor, path.into_inner(), body.0, now).await?;
    Ok(model_response(actix_web::http::StatusCode::CREATED, &model))
}

/// Read a model.
///
/// Roles: every role.
#[utoipa::path(
    get, path = "/v1/providers/{provider}/models/{model}", tag = "providers",
    params(("provider" = String, Path, description = "Provider slug"), ("model" = String, Path, description = "Model slug")),
    responses(
        (status = 200, description = "The model", body = Model, headers(("ETag" = String))),
        (status = 404, description = "No such provider or model", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_model(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(ProviderSlug, ModelSlug)>,
) -> Result<HttpResponse, ApiError> {
    principal.require(EVERYONE)?;
    let (provider, slug) = path.into_inner();
    let model = state
        .store
        .run(move |conn| service::model(conn, &provider, &slug).map(|(_, m)| m.to_model(&provider)))
        .await?;
    Ok(model_response(actix_web::http::StatusCode::OK, &model))
}

/// Change a model. Absent fields stay; `null` clears an optional one.
///
/// Roles: `vendor_manager`, `admin`. Honours `If-Match` (412 when stale).
#[utoipa::path(
    patch, path = "/v1/providers/{provider}/models/{model}", tag = "providers",
    params(("provider" = String, Path, description = "Provider slug"), ("model" = String, Path, description = "Model slug"), ("If-Match" = Option<String>, Header, description = "ETag of the revision being changed")),
    request_body = ModelPatch,
    responses(
        (status = 200, description = "The changed model", body = Model, headers(("ETag" = String))),
        (status = 404, description = "No such provider or model", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn update_model(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    request_id: RequestId,
    path: web::Path<(ProviderSlug, ModelSlug)>,
    body: ValidJson<ModelPatch>,
) -> Result<HttpResponse, ApiError> {
    principal.require(MANAGERS)?;
    let expected = if_match_version(&req)?;
    let actor = actor(&principal, request_id);
    let now = state.clock.now();
    let model =
        service::update_model(&state.work, actor, path.into_inner(), body.0, expected, now).await?;
    Ok(model_response(actix_web::http::StatusCode::OK, &model))
}
