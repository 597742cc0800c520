//! What every page shares: the signed-in viewer (the extractor that sends
//! everyone else to sign in), the layout (navigation, notices), the response
//! with its security headers, CSRF checks on forms, and errors shown as
//! pages in plain words.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;

use super::session::{self, Session};
use crate::auth::Role;
use crate::http::AppState;

/// The Content-Security-Policy of every page: no inline script or style, no
/// framing, forms post only here.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Sets the headers every console response carries.
pub fn secure(response: &mut HttpResponse) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        // A supplier's link carries its token in the path: never send it on.
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// A page: the template rendered, as HTML with the console's headers.
pub fn html<T: Template>(status: StatusCode, page: &T) -> HttpResponse {
    match page.render() {
        Ok(body) => {
            let mut response = HttpResponse::build(status)
                .content_type("text/html; charset=utf-8")
                .body(body);
            secure(&mut response);
            response
        }
        Err(error) => {
            tracing::error!(%error, "a page did not render");
            PageError::Internal.error_response()
        }
    }
}

/// See other: where a form sends the browser after it did its work.
pub fn redirect(to: &str) -> HttpResponse {
    let mut response = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish();
    secure(&mut response);
    response
}

/// The person looking at a page, signed in.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub session: Session,
    pub state: web::Data<AppState>,
}

impl Viewer {
    pub fn sub(&self) -> &str {
        &self.session.principal.sub
    }

    pub fn has(&self, role: Role) -> bool {
        self.session.principal.has(role)
    }

    pub fn has_any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.has(*r))
    }

    /// Refuses a form without this session's CSRF token.
    pub fn check_csrf(&self, token: Option<&str>) -> Result<(), PageError> {
        match token {
            Some(token) if self.session.csrf_matches(token) => Ok(()),
            _ => Err(PageError::Csrf),
        }
    }

    /// The layout of a page titled `title`, with `current` the navigation
    /// entry it belongs to.
    pub fn layout(&self, title: impl Into<String>, current: &str) -> Layout {
        let principal = &self.session.principal;
        let roles: Vec<&str> = principal.roles.iter().map(|r| r.as_str()).collect();
        let mut nav = vec![
            NavItem::new("/", "My work", current),
            NavItem::new("/portfolio", "Portfolio", current),
            NavItem::new("/providers", "Providers", current),
            NavItem::new("/reviews", "Reviews", current),
        ];
        if self.has(Role::Admin) {
            nav.push(NavItem::new("/admin", "Admin", current));
        }
        Layout {
            title: title.into(),
            viewer: Some(ViewerInfo {
                name: self.session.name.clone(),
                roles: if roles.is_empty() {
                    "no roles".into()
                } else {
                    roles.join(", ").replace('_', " ")
                },
                csrf: self.session.csrf.clone(),
            }),
            nav,
            notices: Vec::new(),
            dev_sign_in: self.state.console.oidc.is_none(),
            assets: super::assets::links(),
        }
    }
}

impl FromRequest for Viewer {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PageError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let id = session::id_of(req);
        let next = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into());
        Box::pin(async move {
            let state = state.ok_or(PageError::Internal)?;
            let Some(id) = id else {
                return Err(PageError::SignIn(next));
            };
            let lifetimes = state.console.lifetimes;
            let now = chrono::Utc::now();
            let found = state
                .store
                .run(move |conn| {
                    session::find(conn, &id, lifetimes, now).map_err(crate::db::StoreError::from)
                })
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "cannot read a session");
                    PageError::Internal
                })?;
            let Some(session) = found else {
                return Err(PageError::SignIn(next));
            };
            state.directory.seen(&session.principal);
            Ok(Viewer { session, state })
        })
    }
}

/// The shared frame of every page.
#[derive(Debug, Clone)]
pub struct Layout {
    pub title: String,
    pub viewer: Option<ViewerInfo>,
    pub nav: Vec<NavItem>,
    pub notices: Vec<Notice>,
    /// Shown as a banner: nobody signs in through an identity provider.
    pub dev_sign_in: bool,
    pub assets: super::assets::Links,
}

impl Layout {
    /// The frame of a page for someone not signed in.
    pub fn public(title: impl Into<String>, dev_sign_in: bool) -> Self {
        Layout {
            title: title.into(),
            viewer: None,
            nav: Vec::new(),
            notices: Vec::new(),
            dev_sign_in,
            assets: super::assets::links(),
        }
    }

    pub fn notice(mut self, notice: Notice) -> Self {
        self.notices.push(notice);
        self
    }
}

#[derive(Debug, Clone)]
pub struct ViewerInfo {
    pub name: String,
    pub roles: String,
    pub csrf: String,
}

#[derive(Debug, Clone)]
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

impl NavItem {
    fn new(href: &'static str, label: &'static str, current: &str) -> Self {
        NavItem {
            href,
            label,
            current: href == current,
        }
    }
}

/// A message at the top of a page: `ok`, `info`, `warn` or `bad`.
#[derive(Debug, Clone)]
pub struct Notice {
    pub kind: &'static str,
    pub text: String,
    pub link: Option<Link>,
}

#[derive(Debug, Clone)]
pub struct Link {
    pub href: String,
    pub label: String,
}

impl Notice {
    pub fn ok(text: impl Into<String>) -> Self {
        Notice {
            kind: "ok",
            text: text.into(),
            link: None,
        }
    }

    pub fn bad(text: impl Into<String>) -> Self {
        Notice {
            kind: "bad",
            text: text.into(),
            link: None,
        }
    }

    pub fn warn(text: impl Into<String>) -> Self {
        Notice {
            kind: "warn",
            text: text.into(),
            link: None,
        }
    }

    pub fn with_link(mut self, href: impl Into<String>, label: impl Into<String>) -> Self {
        self.link = Some(Link {
            href: href.into(),
            label: label.into(),
        });
        self
    }
}

/// What went wrong with a page request, shown as a page.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("sign in first")]
    SignIn(String),
    #[error("This form has expired or did not come from this site. Reload the page and try again.")]
    Csrf,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The service refused; the page to go back to.
    #[error("{0}")]
    Refused(String, String),
    /// What a link led to is no more (a withdrawn review).
    #[error("{0}")]
    Gone(String),
    /// A form that cannot be read (not UTF-8, not a form).
    #[error("{0}")]
    BadRequest(String),
    /// A form larger than the service accepts.
    #[error("{0}")]
    TooLarge(String),
    /// A form holding what no input may hold (control characters).
    #[error("{0}")]
    Invalid(String),
    #[error("Something went wrong on our side. The request id is in the server's logs.")]
    Internal,
    #[error("Too many tries from your address. Wait {} seconds and try again.", .0.seconds())]
    TooMany(crate::http::limits::Limited),
}

impl From<crate::http::limits::Limited> for PageError {
    fn from(limited: crate::http::limits::Limited) -> Self {
        Self::TooMany(limited)
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    layout: Layout,
    heading: &'static str,
    message: String,
    back: String,
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::SignIn(_) => StatusCode::SEE_OTHER,
            PageError::Csrf | PageError::Forbidden(_) => StatusCode::FORBIDDEN,
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::Refused(..) => StatusCode::CONFLICT,
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::Gone(_) => StatusCode::GONE,
            PageError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            PageError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            PageError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            PageError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let PageError::SignIn(next) = self {
            let target = url::form_urlencoded::Serializer::for_suffix(String::from("/signin?"), 8)
                .append_pair("next", next)
                .finish();
            return redirect(&target);
        }
        let heading = match self {
            PageError::Csrf => "This form has expired",
            PageError::Forbidden(_) => "Not allowed",
            PageError::NotFound(_) => "Not found",
            PageError::Refused(..) | PageError::Invalid(_) => "Not done",
            PageError::BadRequest(_) => "This form could not be read",
            PageError::Gone(_) => "No longer open",
            PageError::TooLarge(_) => "This form is too large",
            PageError::TooMany(_) => "Too many tries",
            _ => "Something went wrong",
        };
        let back = match self {
            PageError::Refused(_, back) => back.clone(),
            _ => "/".to_owned(),
        };
        let page = ErrorPage {
            layout: Layout::public(heading, false),
            heading,
            message: self.to_string(),
            back,
        };
        let mut response = HttpResponse::build(self.status_code())
            .content_type("text/html; charset=utf-8")
            .body(page.render().unwrap_or_else(|_| self.to_string()));
        secure(&mut response);
        if let PageError::TooMany(limited) = self {
            response.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                limited.seconds().into(),
            );
        }
        response
    }
}

impl From<crate::db::StoreError> for PageError {
    fn from(error: crate::db::StoreError) -> Self {
        tracing::error!(%error, "a page's database work failed");
        PageError::Internal
    }
}

impl From<diesel::result::Error> for PageError {
    fn from(error: diesel::result::Error) -> Self {
        tracing::error!(%error, "a page's query failed");
        PageError::Internal
    }
}

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
            let (key, value) = (text(key)?, text(value)?);
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

    /// The first value of `key`, trimmed, `None` when empty.
    pub fn text(&self, key: &str) -> Option<String> {
        self.get(key)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
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
}

/// One key or value of a form body, decoded, if it is UTF-8.
fn text(encoded: &[u8]) -> Result<String, PageError> {
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
