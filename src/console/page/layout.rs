//! The frame of every page: the response with its security headers, the
//! signed-in viewer (the extractor that sends everyone else to sign in, and
//! who the engine and the audit log see acting), the layout (navigation,
//! notices and what `?done=` says was done).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use serde::Deserialize;

use super::errors::PageError;
use crate::audit::Actor;
use crate::auth::Role;
use crate::console::session::{self, Session};
use crate::http::AppState;
use crate::workflow::engine::Caller;

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

/// The id the telemetry middleware gave this request, for audit events.
pub fn request_id(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(&crate::http::telemetry::HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The person looking at a page, signed in.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub session: Session,
    pub state: web::Data<AppState>,
    /// This request's id, which the audit events of its changes carry.
    pub request_id: Option<String>,
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

    /// Who the audit events of this viewer's changes name, under this
    /// request's id, as the API's do.
    pub fn actor(&self) -> Actor {
        Actor::person(&self.session.principal, self.request_id.clone())
    }

    /// Who the engine sees acting: a person with their roles.
    pub fn caller(&self) -> Caller {
        let principal = &self.session.principal;
        Caller::Person {
            id: principal.sub.clone(),
            roles: principal.roles.clone(),
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
        if self.has_any(crate::auth::roles::MANAGERS) {
            nav.push(NavItem::new("/intake", "Intake", current));
        }
        if self.has(Role::Admin) {
            nav.push(NavItem::new("/admin", "Admin", current));
        }
        Layout {
            title: title.into(),
            brand: Some("/".into()),
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
            assets: crate::console::assets::links(),
        }
    }
}

impl FromRequest for Viewer {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PageError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let id = session::id_of(req);
        let request_id = request_id(req);
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
            Ok(Viewer {
                session,
                state,
                request_id,
            })
        })
    }
}

/// The shared frame of every page.
#[derive(Debug, Clone)]
pub struct Layout {
    pub title: String,
    /// Where the name at the top leads; `None`: nowhere (a supplier's page
    /// without a page of theirs to lead to; never the staff's sign-in).
    pub brand: Option<String>,
    pub viewer: Option<ViewerInfo>,
    pub nav: Vec<NavItem>,
    pub notices: Vec<Notice>,
    /// Shown as a banner: nobody signs in through an identity provider.
    pub dev_sign_in: bool,
    pub assets: crate::console::assets::Links,
}

impl Layout {
    /// The frame of a page for someone not signed in.
    pub fn public(title: impl Into<String>, dev_sign_in: bool) -> Self {
        Layout {
            title: title.into(),
            brand: Some("/".into()),
            viewer: None,
            nav: Vec::new(),
            notices: Vec::new(),
            dev_sign_in,
            assets: crate::console::assets::links(),
        }
    }

    /// The frame of a supplier's page: the name at the top leads to `home`
    /// (their list of questionnaires), or nowhere.
    pub fn supplier(title: impl Into<String>, home: Option<String>) -> Self {
        Layout {
            brand: home,
            ..Layout::public(title, false)
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

/// What a page's `?done=` (and, after subscribing a webhook, `&secret=`)
/// says was just done, for the notice at its top.
#[derive(Debug, Deserialize)]
pub struct Done {
    pub done: Option<String>,
    pub secret: Option<String>,
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
