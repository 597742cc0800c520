//! Who calls, at the HTTP edge: the [`Principal`] extractor reads the bearer
//! token, [`caller`] notes its holder in the people directory (for the
//! extractor and the status lane alike), and the refusals of
//! [`crate::auth`] become 401 and 403 problems.

use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};

use super::limits::Limited;
use super::problem::ApiError;
use crate::auth::{AuthError, Authenticator, MissingRole, Principal};
use crate::people::Directory;

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        ApiError::Unauthorized(error.to_string())
    }
}

impl From<MissingRole> for ApiError {
    fn from(error: MissingRole) -> Self {
        ApiError::Forbidden(error.to_string())
    }
}

/// The verified caller of a request; a missing or bad token is a 401.
impl FromRequest for Principal {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        std::future::ready(authenticate(req))
    }
}

/// The verified caller of a request, as the [`Principal`] extractor finds it.
pub fn authenticate(req: &HttpRequest) -> Result<Principal, ApiError> {
    let authenticator = req
        .app_data::<web::Data<Arc<Authenticator>>>()
        .ok_or_else(|| ApiError::Internal("authenticator is not configured".into()))?;
    let directory = req
        .app_data::<web::Data<super::AppState>>()
        .map(|state| &state.directory);
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    let caller = caller(authenticator, directory, authorization);
    let Some(limits) = req
        .app_data::<web::Data<super::AppState>>()
        .map(|state| &state.limits)
    else {
        return Ok(caller?);
    };
    match caller {
        Ok(principal) if principal.respondent.is_some() => {
            limits.supplier(req).map_err(too_many)?;
            Ok(principal)
        }
        Ok(principal) => Ok(principal),
        Err(error) => {
            limits.failed_auth(req).map_err(too_many)?;
            Err(error.into())
        }
    }
}

/// The caller an `Authorization` header's value names, noted in `directory`
/// (which notes each holder at most so often): the one place a request's
/// caller is recorded.
pub fn caller(
    authenticator: &Authenticator,
    directory: Option<&Directory>,
    authorization: Option<&[u8]>,
) -> Result<Principal, AuthError> {
    let principal = authenticator.caller(authorization)?;
    if let Some(directory) = directory {
        directory.seen(&principal);
    }
    Ok(principal)
}

/// The refusal of a client over its limit.
pub fn too_many(limited: Limited) -> ApiError {
    ApiError::TooManyRequests {
        detail: format!(
            "too many requests from this address; try again in {} s",
            limited.seconds()
        ),
        retry_after: limited.seconds(),
    }
}

/// An admin's request: the caller verified and holding `admin`, as the
/// actor of the change it makes (401 without a valid token, 403 without the
/// role).
#[derive(Debug)]
pub struct Admin(pub crate::audit::Actor);

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let admin = || {
            let principal = authenticate(req)?;
            principal.require(crate::auth::roles::ADMINS)?;
            let request_id = req
                .headers()
                .get(&super::telemetry::HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            Ok(Admin(crate::audit::Actor::person(&principal, request_id)))
        };
        std::future::ready(admin())
    }
}
