//! Forms: a post read by the API's text rules from this site only
//! ([`Form`]), and the signed-in viewer's post checked and typed once
//! ([`Posted`]), with the field readers its serde structs use.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};

use serde::de::{Deserialize, DeserializeOwned, Deserializer};

use super::errors::PageError;
use super::layout::Viewer;
use crate::http::AppState;

/// The fields of a form post, in order (a key may come more than once).
#[derive(Debug, Default, Clone)]
pub struct Form(pub Vec<(String, String)>);

impl Form {
    /// Reads an `application/x-www-form-urlencoded` body by the rules the
    /// API's JSON bodies follow: UTF-8 only (a 400, rather than a value
    /// quietly changed to U+FFFD), and every key and value text without
    /// control characters but tab and line breaks (a 422; NUL among them,
    /// which PostgreSQL cannot store). Fields that are one line (names,
    /// addresses) refuse line breaks too, when the handler validates its
    /// input as the API does.
    pub fn parse(body: &[u8]) -> Result<Self, PageError> {
        let mut fields = Vec::new();
        for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (key, value) = match pair.iter().position(|b| *b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &b""[..]),
            };
            let (key, value) = (decoded(key)?, decoded(value)?);
            let foreign = key
                .chars()
                .chain(value.chars())
                .find(|c| crate::validation::is_foreign_to_text(*c));
            if let Some(c) = foreign {
                let name: String = key
                    .chars()
                    .filter(|c| !crate::validation::is_foreign_to_line(*c))
                    .take(80)
                    .collect();
                return Err(PageError::Invalid(format!(
                    "The field “{name}” holds a control character (U+{:04X}), which text may not hold. Remove it and try again.",
                    c as u32
                )));
            }
            fields.push((key, value));
        }
        Ok(Form(fields))
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The `revision` the form was rendered from (`If-Match`).
    pub fn revision(&self) -> Option<i64> {
        self.get("revision").and_then(|r| r.parse().ok())
    }

    /// What was typed, to show again: each field but the form's own
    /// (`csrf`, `revision`, `scope`, `seen`), a field sent more than once
    /// (the boxes of a list) as a list.
    pub fn typed(&self) -> std::collections::BTreeMap<String, serde_json::Value> {
        use serde_json::Value;
        let mut typed = std::collections::BTreeMap::new();
        for (key, value) in &self.0 {
            if matches!(key.as_str(), "csrf" | "revision" | "scope" | "seen") {
                continue;
            }
            let value = Value::from(value.as_str());
            match typed.entry(key.clone()) {
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                std::collections::btree_map::Entry::Occupied(mut slot) => match slot.get_mut() {
                    Value::Array(list) => list.push(value),
                    first => *first = Value::Array(vec![first.take(), value]),
                },
            }
        }
        typed
    }
}

/// One key or value of a form body, decoded, if it is UTF-8.
fn decoded(encoded: &[u8]) -> Result<String, PageError> {
    String::from_utf8(crate::http::extract::form_decode(encoded)).map_err(|_| {
        PageError::BadRequest(
            "The form holds text that is not UTF-8. Send it again from the page.".into(),
        )
    })
}

/// Whether a form post comes from this site, by its `Origin`: the public
/// URL's origin or the host the request was sent to. Browsers send
/// `Origin` with every cross-site post; a post without one (a client that
/// is no browser) is judged by its CSRF token alone, and so is one whose
/// `Origin` is `null` — what browsers send for the console's own forms,
/// since its pages ask for `Referrer-Policy: no-referrer`.
fn same_origin(req: &HttpRequest) -> bool {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .filter(|o| o.as_bytes() != b"null")
    else {
        return true;
    };
    let Some(origin) = origin.to_str().ok().and_then(|o| url::Url::parse(o).ok()) else {
        return false;
    };
    let public = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|state| state.config.public_url.origin() == origin.origin());
    let Some(host) = origin.host_str() else {
        return false;
    };
    let authority = match origin.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    public
        || req
            .connection_info()
            .host()
            .eq_ignore_ascii_case(&authority)
}

impl FromRequest for Form {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PageError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let foreign = !same_origin(req);
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map_or(0, |state| state.config.max_body_bytes);
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if foreign {
                return Err(PageError::Csrf);
            }
            let bytes = body.await.map_err(|e| {
                if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
                    PageError::TooLarge(format!(
                        "The form is larger than this service accepts ({limit} bytes at most). Shorten it and try again."
                    ))
                } else {
                    PageError::BadRequest(format!("The form could not be read: {e}."))
                }
            })?;
            Form::parse(&bytes)
        })
    }
}

impl Form {
    /// The fields as `T`: each named field of `T` read from the first
    /// value of its key; keys `T` does not name are left to [`Form::all`].
    pub fn fields<T: DeserializeOwned>(&self) -> Result<T, PageError> {
        let mut encoded = url::form_urlencoded::Serializer::new(String::new());
        let mut seen = std::collections::HashSet::new();
        for (key, value) in &self.0 {
            if seen.insert(key.as_str()) {
                encoded.append_pair(key, value);
            }
        }
        serde_urlencoded::from_str(&encoded.finish())
            .map_err(|e| PageError::BadRequest(format!("The form could not be read: {e}.")))
    }
}

/// A form the signed-in viewer posted, refused the same way everywhere
/// before a handler sees it: a viewer not signed in is sent to sign in; a
/// post from another site or without this session's CSRF token is a 403;
/// too large a 413; not UTF-8 or not readable as `T` a 400; holding control
/// characters a 422.
#[derive(Debug)]
pub struct Posted<T> {
    pub viewer: Viewer,
    pub fields: T,
    /// Every field as posted, for keys that come more than once (the
    /// checkboxes of a list) or that are named at run time (a
    /// questionnaire's questions).
    pub form: Form,
}

impl<T> Posted<T> {
    /// The `revision` the form was rendered from (the page's `If-Match`),
    /// which the service compares with the record's.
    pub fn revision(&self) -> Option<i64> {
        self.form.revision()
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Posted<T> {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PageError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let viewer = Viewer::from_request(req, &mut Payload::None);
        let form = Form::from_request(req, payload);
        Box::pin(async move {
            let viewer = viewer.await?;
            let form = form.await?;
            match form.get("csrf") {
                Some(token) if viewer.session.csrf_matches(token) => {}
                _ => return Err(PageError::Csrf),
            }
            let fields = form.fields()?;
            Ok(Posted {
                viewer,
                fields,
                form,
            })
        })
    }
}

/// A form with no fields but its token (a button).
#[derive(Debug, serde::Deserialize)]
pub struct NoFields {}

/// A text field trimmed, `None` when empty or not sent.
pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<String>::deserialize(d)?;
    Ok(value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()))
}

/// A text field trimmed, empty when not sent.
pub fn trimmed<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(text(d)?.unwrap_or_default())
}
