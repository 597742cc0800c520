//! HTTP routes of the exports: the OPA bundle and the allowlists
//! (integrators and admins). Both answer from the status snapshot, with a
//! strong `ETag` so that pollers hear 304 while nothing changed.

use std::sync::{Arc, Mutex};

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use utoipa::IntoParams;

use super::allowlist::{self, Allowlist, Context, DEFAULT_ACCESS_GROUP, ExportFormat};
use super::bundle::{self, Bundle};
use crate::auth::Principal;
use crate::auth::roles::INTEGRATORS;
use crate::conditions::DataClass;
use crate::http::AppState;
use crate::http::problem::{ApiError, FieldError, Problem};
use crate::vocabulary::Vocabulary;

const PROBLEM: &str = "application/problem+json";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::Data::new(BundleCache::default()))
        .service(web::resource("/v1/exports/opa/bundle.tar.gz").route(web::get().to(opa_bundle)))
        .service(web::resource("/v1/exports/allowlist").route(web::get().to(export_allowlist)));
}

/// The last bundle built, by the status version (and the manual clock's
/// time) it was built at: OPA agents poll often, the clearances change
/// seldom.
#[derive(Debug, Default)]
pub struct BundleCache(Mutex<Option<(BundleKey, Arc<Bundle>)>>);

type BundleKey = (i64, Option<DateTime<Utc>>);

impl BundleCache {
    fn get(&self, key: &BundleKey) -> Option<Arc<Bundle>> {
        let cached = self.0.lock().unwrap_or_else(|e| e.into_inner());
        cached
            .as_ref()
            .filter(|(at, _)| at == key)
            .map(|(_, bundle)| bundle.clone())
    }

    fn put(&self, key: BundleKey, bundle: Arc<Bundle>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((key, bundle));
    }
}

/// Whether `If-None-Match` names `etag` (or `*`).
fn not_modified(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == etag || tag == "*" || tag.strip_prefix("W/") == Some(etag))
}

/// The answer to a poll: 304 when the poller holds `etag`, else `body`.
fn conditional(
    req: &HttpRequest,
    etag: &str,
    content_type: &'static str,
    body: impl Into<web::Bytes>,
) -> Result<HttpResponse, ApiError> {
    let etag =
        HeaderValue::from_str(etag).map_err(|e| ApiError::Internal(format!("entity tag: {e}")))?;
    let cache = (header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if not_modified(req, etag.to_str().unwrap_or_default()) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header(cache)
            .finish());
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag))
        .insert_header(cache)
        .content_type(content_type)
        .body(body.into()))
}

/// An OPA bundle of every model's clearance, with a Rego policy whose
/// `data.clearance.decision` for an input `{"provider", "model",
/// "use_case"?, "data_classes"?, "regions"?, "features"?}` is
/// `POST /v1/status/check`'s for that item: `{"allow", "status",
/// "reasons", "valid_until"}`, the same reason codes.
///
/// Roles: `integrator`, `admin`. Strong `ETag` (a digest of the bundle);
/// `If-None-Match` answers 304, as OPA's bundle polling sends it. An
/// approval lapses at its `valid_until` by OPA's clock, whatever the
/// bundle's age.
#[utoipa::path(get, path = "/v1/exports/opa/bundle.tar.gz", tag = "exports",
    params(("If-None-Match" = Option<String>, Header)),
    responses(
        (status = 200, description = "The bundle: `.manifest`, `data.json`, `clearance/policy.rego`", content_type = "application/gzip", body = Vec<u8>,
            headers(("ETag" = String))),
        (status = 304, description = "Unchanged since the ETag sent"),
    ), security(("bearer" = [])))]
pub async fn opa_bundle(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    cache: web::Data<BundleCache>,
) -> Result<HttpResponse, ApiError> {
    principal.require(INTEGRATORS)?;
    let snapshot = arc_swap::Guard::into_inner(state.status.snapshot());
    // A manual clock is the server's time (time-skipping mode), which the
    // bundle then carries: OPA's own clock would disagree with it.
    let manual_now = state.manual_clock.is_some().then(|| state.clock.now());
    let key = (snapshot.version, manual_now);
    let bundle = match cache.get(&key) {
        Some(bundle) => bundle,
        None => {
            let config = state.config.clone();
            let built =
                web::block(move || bundle::build(&snapshot, &config.vocabulary, manual_now))
                    .await
                    .map_err(|e| ApiError::Internal(e.to_string()))?
                    .map_err(|e| ApiError::Internal(format!("cannot build the bundle: {e}")))?;
            let built = Arc::new(built);
            cache.put(key, built.clone());
            built
        }
    };
    let mut response = conditional(&req, &bundle.etag, "application/gzip", bundle.body.clone())?;
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"clearance-bundle.tar.gz\""),
    );
    Ok(response)
}

/// The query of `GET /v1/exports/allowlist`. A list parameter repeats
/// (`region=eu&region=uk`) or separates its values with commas.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AllowlistParams {
    /// The use case, e.g. `support-chat`.
    pub use_case: Option<String>,
    /// A data class that will be sent.
    pub data_class: Option<Vec<DataClass>>,
    /// A region of use or processing.
    pub region: Option<Vec<String>>,
    /// A feature that will be turned on.
    pub feature: Option<Vec<String>>,
    /// `json` (the default), `csv` or `litellm`.
    pub format: Option<ExportFormat>,
    /// The LiteLLM access group the models are put in (default `cleared`).
    pub access_group: Option<String>,
}

/// What an allowlist was asked for, checked.
#[derive(Debug)]
struct AllowlistQuery {
    context: Context,
    format: ExportFormat,
    access_group: String,
}

const PARAMETERS: &str = "use_case, data_class, region, feature, format, access_group";

/// Reads the query string, refusing what a check would refuse (a region or
/// use case outside the vocabulary, an unknown data class) and anything
/// else it does not know.
fn parse_query(query: &str, vocabulary: &Vocabulary) -> Result<AllowlistQuery, ApiError> {
    let mut errors = Vec::new();
    let mut context = Context::default();
    let (mut format, mut access_group) = (None, None);
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let key = key.as_ref();
        let values: Vec<&str> = value.split(',').map(str::trim).collect();
        if values.iter().any(|v| v.is_empty()) {
            errors.push(FieldError::new(key, "must not be empty"));
            continue;
        }
        let mut single = |slot: &mut Option<String>| {
            if slot.is_some() {
                errors.push(FieldError::new(key, "may be given once"));
            }
            *slot = Some(value.to_string());
        };
        match key {
            "use_case" => single(&mut context.use_case),
            "format" => single(&mut format),
            "access_group" => single(&mut access_group),
            "data_class" => {
                let classes = context.data_classes.get_or_insert_with(Vec::new);
                for text in values {
                    match DataClass::parse(text) {
                        Some(class) => classes.push(class),
                        None => errors.push(FieldError::new(
                            key,
                            format!("unknown data class `{text}`; known: public, internal, confidential, personal, special_category"),
                        )),
                    }
                }
            }
            "region" => {
                for text in &values {
                    if !vocabulary.knows_region(text) {
                        errors.push(FieldError::new(key, vocabulary.unknown_region(text)));
                    }
                }
                let regions = context.regions.get_or_insert_with(Vec::new);
                regions.extend(values.into_iter().map(str::to_owned));
            }
            "feature" => {
                let features = context.features.get_or_insert_with(Vec::new);
                features.extend(values.into_iter().map(str::to_owned));
            }
            other => errors.push(FieldError::new(
                other,
                format!("unknown parameter; known: {PARAMETERS}"),
            )),
        }
    }
    if let Some(use_case) = &context.use_case
        && !vocabulary.knows_use_case(use_case)
    {
        errors.push(FieldError::new(
            "use_case",
            vocabulary.unknown_use_case(use_case),
        ));
    }
    let format = match format.as_deref() {
        None => ExportFormat::Json,
        Some(text) => ExportFormat::parse(text).unwrap_or_else(|| {
            errors.push(FieldError::new(
                "format",
                format!("`{text}` is not json, csv or litellm"),
            ));
            ExportFormat::Json
        }),
    };
    let access_group = access_group.unwrap_or_else(|| DEFAULT_ACCESS_GROUP.to_owned());
    let group_ok = access_group.len() <= 64
        && access_group
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if !group_ok {
        errors.push(FieldError::new(
            "access_group",
            "must be 1 to 64 of [A-Za-z0-9_.:-]",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(AllowlistQuery {
        context,
        format,
        access_group,
    })
}

/// The models a context may use: those `POST /v1/status/check` would allow
/// for the context, for gateways that can only read a list. `format=json`
/// (the default) answers the list, `csv` one line per model
/// (`provider,model,status,valid_until`), `litellm` a LiteLLM proxy
/// `model_list` (JSON, which is YAML too: paste it into `config.yaml`)
/// with every model in `access_group`, for keys and teams to be granted.
///
/// Roles: `integrator`, `admin`. A condition the context does not state
/// (`data_class` for a model approved for some data classes only) leaves
/// the model out, as the check denies it. Strong `ETag`; `If-None-Match`
/// answers 304.
#[utoipa::path(get, path = "/v1/exports/allowlist", tag = "exports", params(AllowlistParams),
    responses(
        (status = 200, description = "The allowed models", headers(("ETag" = String)),
            content((Allowlist = "application/json"), (String = "text/csv"), (Object = "application/yaml"))),
        (status = 304, description = "Unchanged since the ETag sent"),
        (status = 422, description = "An unknown parameter, format, data class, or a region or use case outside the vocabulary", body = Problem, content_type = PROBLEM),
    ), security(("bearer" = [])))]
pub async fn export_allowlist(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    principal.require(INTEGRATORS)?;
    let query = parse_query(req.query_string(), &state.config.vocabulary)?;
    let list: Allowlist =
        allowlist::list(&state.status.snapshot(), query.context, state.clock.now());
    let (body, content_type) = allowlist::render(&list, query.format, &query.access_group)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&body)[..16]));
    conditional(&req, &etag, content_type, body)
}
