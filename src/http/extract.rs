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
    // PostgreSQL cannot store a NUL character and SQLite can; no other
    // control character but tab and line breaks belongs in text either.
    // Refused here, the same on both backends, wherever it is in the body;
    // fields that are one line refuse tab and line breaks too.
    if let Some((field, c)) = control_at(bytes) {
        let message = if c == '\0' {
            "must not contain the NUL character (\\u0000)".to_owned()
        } else {
            format!(
                "must not contain control characters (holds U+{:04X})",
                c as u32
            )
        };
        return Err(ApiError::validation(field, message));
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

/// The path of the first string (or key) of a JSON body holding a control
/// character free text may not hold, and the character, if any.
fn control_at(bytes: &[u8]) -> Option<(String, char)> {
    // JSON carries a C0 control only escaped (`\u0001`, `\b`, `\f`; tab and
    // line breaks may stay), DEL and the C1 controls raw too. A body with
    // none of these (nearly every one) is not parsed again.
    let escaped = bytes
        .windows(2)
        .any(|w| w[0] == b'\\' && matches!(w[1], b'u' | b'b' | b'f'));
    let raw = bytes.contains(&0x7f)
        || bytes
            .windows(2)
            .any(|w| w[0] == 0xc2 && (0x80..=0x9f).contains(&w[1]));
    if !escaped && !raw {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let foreign = |text: &str| {
        text.chars()
            .find(|c| crate::validation::is_foreign_to_text(*c))
    };
    fn find(
        value: &serde_json::Value,
        path: &str,
        foreign: &dyn Fn(&str) -> Option<char>,
    ) -> Option<(String, char)> {
        match value {
            serde_json::Value::String(s) => foreign(s).map(|c| (path.to_owned(), c)),
            serde_json::Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, v)| find(v, &format!("{path}[{i}]"), foreign)),
            serde_json::Value::Object(fields) => fields.iter().find_map(|(k, v)| {
                if let Some(c) = foreign(k) {
                    return Some((path.to_owned(), c));
                }
                let at = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                find(v, &at, foreign)
            }),
            _ => None,
        }
    }
    find(&value, "", &foreign)
}

/// Refuses a query string whose parameters decode to a control character
/// (NUL among them: PostgreSQL cannot compare with one, SQLite can) or to
/// bytes that are not UTF-8, naming the parameter. No parameter of this
/// service is free text: each is one line (see [`crate::validation::line_fault`]).
pub async fn refuse_nul_in_query(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<
    actix_web::dev::ServiceResponse<actix_web::body::EitherBody<impl actix_web::body::MessageBody>>,
    actix_web::Error,
> {
    // A request line holds no raw control character; an encoded one needs `%`.
    if req.query_string().contains('%')
        && let Some(error) = query_fault(req.query_string())
    {
        let response = actix_web::ResponseError::error_response(&error);
        return Ok(req.into_response(response).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// The problem with a query string's parameters, if one has any.
fn query_fault(query: &str) -> Option<ApiError> {
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (key, value) = (form_decode(key.as_bytes()), form_decode(value.as_bytes()));
        let name = String::from_utf8_lossy(&key)
            .chars()
            .filter(|c| !crate::validation::is_foreign_to_line(*c))
            .take(80)
            .collect::<String>();
        let (Ok(key), Ok(value)) = (std::str::from_utf8(&key), std::str::from_utf8(&value)) else {
            return Some(ApiError::validation(name, "is not UTF-8 text"));
        };
        if let Some(message) =
            crate::validation::line_fault(key).or_else(|| crate::validation::line_fault(value))
        {
            return Some(ApiError::validation(name, message));
        }
    }
    None
}

/// The bytes of one `application/x-www-form-urlencoded` key or value (of
/// a query string or a console form), whether or not they are UTF-8.
pub fn form_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| char::from(*b).to_digit(16));
        match bytes[i] {
            b'%' => match (hex(i + 1), hex(i + 2)) {
                (Some(high), Some(low)) => {
                    // Two hex digits are at most 255.
                    out.push(u8::try_from(high * 16 + low).unwrap_or(u8::MAX));
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    out
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
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

pub use crate::db::PageRequest;

impl PageParams {
    pub fn check(&self) -> Result<PageRequest, ApiError> {
        let limit = match self.limit.as_deref() {
            // `limit=` is no number either: refused, as the document says.
            None => DEFAULT_PAGE_SIZE,
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
    fn control_characters_are_found_where_they_are_but_tab_and_line_breaks_are_text() {
        assert_eq!(control_at(br#"{"notes":"a\tb\r\nc"}"#), None);
        assert_eq!(control_at("{\"name\":\"caf\u{e9}\"}".as_bytes()), None);
        assert_eq!(
            control_at(br#"{"contacts":[{"name":"a\u0001"}]}"#),
            Some(("contacts[0].name".into(), '\u{1}'))
        );
        assert_eq!(
            control_at("{\"a\":{\"b\":\"x\u{85}\"}}".as_bytes()),
            Some(("a.b".into(), '\u{85}'))
        );
        assert_eq!(control_at(br#"{"x":"\b"}"#), Some(("x".into(), '\u{8}')));
    }

    #[test]
    fn query_parameters_are_one_line_of_utf8() {
        assert!(query_fault("next=%2Freviews&assignee=a%40b.example").is_none());
        for (query, field) in [
            ("assignee=a%0Ab", "assignee"),
            ("state=open&provider=%E2%80%AEx", "provider"),
            ("model=%FF%FE", "model"),
            ("a%00b=1", "ab"),
        ] {
            let Some(ApiError::Validation(errors)) = query_fault(query) else {
                panic!("{query} is refused");
            };
            assert_eq!(errors[0].field, field, "{query}");
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
