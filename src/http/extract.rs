//! Request extractors that report bad input as problems: a JSON body checked
//! by serde (with the path of a wrongly typed field) and then by validator,
//! query strings, pagination and `If-Match`.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::problem::ApiError;
use base64::Engine as _;

/// A JSON body that has been parsed and validated.
#[derive(Debug)]
pub struct ValidJson<T>(pub T);

impl<T> FromRequest for ValidJson<T>
where
    T: DeserializeOwned + Validate + 'static,
{
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = JsonBody::from_request(req, payload);
        Box::pin(async move {
            let JsonBody(bytes) = body.await?;
            let value: T = parse_json(&bytes)?;
            value.validate()?;
            Ok(ValidJson(value))
        })
    }
}

/// The unparsed bytes of a body sent as JSON, for handlers that parse it
/// into types borrowing from it (with [`parse_json`] to explain a failure).
#[derive(Debug)]
pub struct JsonBody(pub web::Bytes);

impl FromRequest for JsonBody {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type_ok = is_json_content_type(req);
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !content_type_ok {
                return Err(ApiError::UnsupportedMediaType(
                    "send the body as application/json".into(),
                ));
            }
            let bytes = body.await.map_err(|e| {
                if e.as_response_error().status_code() == 413 {
                    ApiError::PayloadTooLarge(e.to_string())
                } else {
                    ApiError::BadRequest(format!("could not read the body: {e}"))
                }
            })?;
            Ok(JsonBody(bytes))
        })
    }
}

fn is_json_content_type(req: &HttpRequest) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        // A client that sends JSON without saying so is common; accept it.
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses JSON, naming the field of a type error and keeping syntax errors apart.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => {
            return Err(ApiError::MalformedJson(
                "the body is empty; send a JSON object".into(),
            ));
        }
        Some(b'{') => {}
        Some(_) if serde_json::from_slice::<serde_json::Value>(bytes).is_err() => {
            return Err(ApiError::MalformedJson("the body is not valid JSON".into()));
        }
        Some(_) => return Err(ApiError::validation("", "the body must be a JSON object")),
    }
    // PostgreSQL cannot store a NUL character and SQLite can: refused here,
    // the same on both, wherever it is in the body.
    if let Some(field) = nul_at(bytes) {
        return Err(ApiError::validation(
            field,
            "must not contain the NUL character (\\u0000)",
        ));
    }
    // The fast path: most bodies are valid. Only a failure is parsed again
    // to learn the path of the field at fault.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let inner = error.inner();
        if inner.is_syntax() || inner.is_eof() || inner.is_io() {
            return ApiError::MalformedJson(format!("the body is not valid JSON: {inner}"));
        }
        let path = error.path().to_string();
        let message = strip_position(&inner.to_string());
        // serde reports a missing field at the enclosing object; name the field itself.
        if let Some(name) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'))
        {
            let field = if path == "." {
                name.to_owned()
            } else {
                format!("{path}.{name}")
            };
            return ApiError::validation(field, "is required");
        }
        let field = if path == "." { String::new() } else { path };
        ApiError::validation(field, message)
    })
}

/// The path of the first string of a JSON body holding a NUL character
/// (written `\u0000`, the only way JSON can carry one), if any.
fn nul_at(bytes: &[u8]) -> Option<String> {
    let escaped = bytes
        .windows(6)
        .any(|w| w[0] == b'\\' && w[1] == b'u' && &w[2..] == b"0000");
    if !escaped {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    fn find(value: &serde_json::Value, path: &str) -> Option<String> {
        match value {
            serde_json::Value::String(s) if s.contains('\0') => Some(path.to_owned()),
            serde_json::Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, v)| find(v, &format!("{path}[{i}]"))),
            serde_json::Value::Object(fields) => fields.iter().find_map(|(k, v)| {
                if k.contains('\0') {
                    return Some(path.to_owned());
                }
                let at = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                find(v, &at)
            }),
            _ => None,
        }
    }
    find(&value, "")
}

/// Refuses a query string that decodes to a NUL character, naming the
/// parameter (PostgreSQL cannot compare with one; SQLite can).
pub async fn refuse_nul_in_query(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<
    actix_web::dev::ServiceResponse<actix_web::body::EitherBody<impl actix_web::body::MessageBody>>,
    actix_web::Error,
> {
    let query = req.query_string();
    if query.contains("%00") || query.contains('\0') {
        let field = url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, v)| k.contains('\0') || v.contains('\0'))
            .map(|(k, _)| k.into_owned())
            .unwrap_or_default();
        let error = ApiError::validation(field, "must not contain the NUL character (%00)");
        let response = actix_web::ResponseError::error_response(&error);
        return Ok(req.into_response(response).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// Drops serde_json's " at line 1 column 12" suffix, which means nothing to a client.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

/// Query parameters, with their errors as problems.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error, _req| {
        ApiError::BadRequest(format!("invalid query string: {error}")).into()
    })
}

/// Path segments, with their errors as problems.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|error, _req| {
        ApiError::NotFound(format!("no such resource: {error}")).into()
    })
}

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 200;

/// `?limit=&cursor=` of every list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1 to 200 (default 50).
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

pub use crate::db::PageRequest;

impl PageParams {
    pub fn check(&self) -> Result<PageRequest, ApiError> {
        let limit = match self.limit.as_deref() {
            None | Some("") => DEFAULT_PAGE_SIZE,
            Some(text) => text
                .parse()
                .ok()
                .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                .ok_or_else(|| {
                    ApiError::validation(
                        "limit",
                        format!("must be a whole number from 1 to {MAX_PAGE_SIZE}"),
                    )
                })?,
        };
        let after = match self.cursor.as_deref().filter(|c| !c.is_empty()) {
            None => None,
            Some(cursor) => Some(decode_cursor(cursor).ok_or_else(|| {
                ApiError::validation("cursor", "is not a cursor this service issued")
            })?),
        };
        Ok(PageRequest { limit, after })
    }
}

pub fn encode_cursor(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

fn decode_cursor(cursor: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows: the extra row only says that
    /// another page exists.
    pub fn from_rows(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> String) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last().map(|last| encode_cursor(&key(last)))
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
        }
    }
}

/// The strong entity tag of a versioned resource.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// The version an `If-Match` header asks for: `None` when absent or `*`.
pub fn if_match_version(req: &HttpRequest) -> Result<Option<i64>, ApiError> {
    let Some(value) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::BadRequest("If-Match is not readable text".into()))?
        .trim();
    if value == "*" {
        return Ok(None);
    }
    value
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .map(Some)
        .map_err(|_| {
            ApiError::PreconditionFailed(format!(
                "If-Match `{value}` is not an entity tag this service issued"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[expect(dead_code, reason = "fields exist to be deserialized")]
    struct Sample {
        name: String,
        nested: Option<Inner>,
    }
    #[derive(Debug, Deserialize)]
    #[expect(dead_code, reason = "fields exist to be deserialized")]
    struct Inner {
        count: u32,
    }

    #[test]
    fn type_errors_name_the_field_path() {
        let err = parse_json::<Sample>(br#"{"name":"x","nested":{"count":"three"}}"#).unwrap_err();
        let ApiError::Validation(errors) = err else {
            panic!("{err:?}")
        };
        assert_eq!(errors[0].field, "nested.count");
        assert!(!errors[0].message.contains("line"), "{}", errors[0].message);
    }

    #[test]
    fn missing_fields_are_named() {
        let err = parse_json::<Sample>(br#"{}"#).unwrap_err();
        let ApiError::Validation(errors) = err else {
            panic!("{err:?}")
        };
        assert_eq!(errors[0].field, "name");
        assert_eq!(errors[0].message, "is required");
    }

    #[test]
    fn syntax_errors_are_malformed_json() {
        for body in [&b"{"[..], b"not json", b"", b"{\"name\": }"] {
            assert!(matches!(
                parse_json::<Sample>(body),
                Err(ApiError::MalformedJson(_))
            ));
        }
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let page = PageParams {
            limit: Some("10".into()),
            cursor: Some(encode_cursor("abc")),
        };
        assert_eq!(page.check().unwrap().after.as_deref(), Some("abc"));
        let bad = PageParams {
            limit: None,
            cursor: Some("***".into()),
        };
        assert!(bad.check().is_err());
        let too_big = PageParams {
            limit: Some("201".into()),
            cursor: None,
        };
        assert!(too_big.check().is_err());
    }
}
