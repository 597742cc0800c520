//! Signing in and out. With an identity provider configured, `/signin`
//! sends people there (OpenID Connect, see [`super::oidc`]) and
//! `/signin/callback` brings them back into a new session. Without one, the
//! only way in is a one-time development link printed by
//! `clearance signin-link`, plainly labelled, and refused whenever a provider
//! is configured. Sign-in and sign-out are audited.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::page::{self, Form, Layout, NoFields, Notice, PageError, Posted};
use super::session::{self, SignedIn};
use crate::audit::{self, Actor, Change};
use crate::http::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/signin").get(sign_in_page))
        .service(web::resource("/signin/start").get(start))
        .service(web::resource("/signin/callback").get(callback))
        .service(
            web::resource("/signin/link/{token}")
                .get(link_page)
                .post(use_link),
        )
        .service(web::resource("/signout").post(sign_out));
}

/// Where to go after signing in: a path on this site, never elsewhere.
/// Browsers drop tabs and line breaks from a URL and read `\` as `/`, so a
/// path holding any of them (or a space, or any control character) is
/// refused whole, not cleaned: `/\t/evil.example` must not become
/// `//evil.example`.
pub fn local(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/signin")
                && !path.starts_with("/signout")
                && !path
                    .chars()
                    .any(|c| c == '\\' || c.is_whitespace() || c.is_control())
                && path.len() <= 2000 =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[derive(Debug, Deserialize)]
pub struct Next {
    next: Option<String>,
    signed_out: Option<String>,
}

#[derive(Template)]
#[template(path = "console/signin.html")]
struct SignInPage {
    layout: Layout,
    provider: Option<String>,
    start: String,
    /// The page a development link will lead on to.
    next: Option<String>,
}

/// `GET /signin`. Without an identity provider, the page asked for is
/// kept in a cookie for the development link that will be opened next.
async fn sign_in_page(state: web::Data<AppState>, query: web::Query<Next>) -> HttpResponse {
    let next = local(query.next.as_deref());
    let keep = state.console.oidc.is_none() && next != "/";
    let provider = state.console.oidc.as_ref().map(|o| o.provider_name());
    let mut layout = Layout::public("Sign in", provider.is_none());
    if query.signed_out.is_some() {
        layout = layout.notice(Notice::ok("You have signed out."));
    }
    let start = url::form_urlencoded::Serializer::for_suffix(String::from("/signin/start?"), 14)
        .append_pair("next", &next)
        .finish();
    let mut response = page::html(
        StatusCode::OK,
        &SignInPage {
            layout,
            provider,
            start,
            next: keep.then(|| next.clone()),
        },
    );
    if keep {
        let cookie = session::return_cookie(&next, state.console.secure_cookies);
        if response.add_cookie(&cookie).is_err() {
            tracing::warn!("cannot keep the page asked for while signing in");
        }
    }
    response
}

/// `GET /signin/start`: off to the identity provider.
async fn start(
    state: web::Data<AppState>,
    query: web::Query<Next>,
) -> Result<HttpResponse, PageError> {
    let Some(oidc) = &state.console.oidc else {
        return Err(PageError::NotFound(
            "No identity provider is configured; use a development sign-in link.".into(),
        ));
    };
    let next = local(query.next.as_deref());
    let (url, row) = oidc
        .start(next, Utc::now())
        .await
        .map_err(|e| PageError::Forbidden(e.to_string()))?;
    state
        .store
        .run(move |conn| session::begin_sign_in(conn, &row).map_err(crate::db::StoreError::from))
        .await
        .map_err(PageError::from)?;
    Ok(page::redirect(url.as_str()))
}

#[derive(Debug, Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /signin/callback`: back from the identity provider.
async fn callback(
    state: web::Data<AppState>,
    query: web::Query<Callback>,
) -> Result<HttpResponse, PageError> {
    let Some(oidc) = &state.console.oidc else {
        return Err(PageError::NotFound(
            "No identity provider is configured.".into(),
        ));
    };
    if let Some(error) = &query.error {
        let detail = query.error_description.as_deref().unwrap_or(error);
        return Err(PageError::Forbidden(format!(
            "The identity provider did not sign you in: {detail}"
        )));
    }
    let (Some(code), Some(sign_in_state)) = (query.code.clone(), query.state.clone()) else {
        return Err(PageError::Forbidden(
            "The identity provider sent you back without a sign-in.".into(),
        ));
    };
    let now = Utc::now();
    let started = state
        .store
        .run(move |conn| {
            session::take_sign_in(conn, &sign_in_state, now).map_err(crate::db::StoreError::from)
        })
        .await?
        .ok_or_else(|| PageError::Forbidden(super::oidc::SignInError::UnknownState.to_string()))?;
    let who = oidc
        .finish(code, &started)
        .await
        .map_err(|e| PageError::Forbidden(e.to_string()))?;
    open_session(&state, who, "oidc", &started.return_to).await
}

/// Opens a session for `who`, audited, and sends them on to `next`.
async fn open_session(
    state: &AppState,
    who: SignedIn,
    via: &'static str,
    next: &str,
) -> Result<HttpResponse, PageError> {
    let lifetimes = state.console.lifetimes;
    let actor = Actor::signing_in(&who.sub, who.roles.iter().copied());
    let id = state
        .work
        .run(actor, state.clock.now(), move |tx| {
            // Sessions that ended, and sign-ins never finished, go now.
            session::sweep(tx.conn(), lifetimes.idle, Utc::now())?;
            let opened = session::open(tx.conn(), &who, lifetimes, Utc::now())?;
            audit::append(
                tx,
                Change {
                    action: crate::audit::Action::SessionSignedIn,
                    subject: audit::Subject::person(&who.sub),
                    review_id: None,
                    before: None,
                    after: Some(json!({"via": via, "email": who.email, "roles": who.roles})),
                },
            )?;
            Ok::<_, crate::db::StoreError>(opened)
        })
        .await?;
    // The directory notes them on the page they land on (the `Viewer`).
    let mut response = page::redirect(next);
    response
        .add_cookie(&session::cookie(id, state.console.secure_cookies))
        .map_err(|_| PageError::Internal)?;
    Ok(response)
}

#[derive(Template)]
#[template(path = "console/signin_link.html")]
struct LinkPage {
    layout: Layout,
    token: String,
    sub: String,
    roles: String,
    /// The page asked for before signing in, gone on to after.
    next: Option<String>,
    /// The form's token, the value of this browser's sign-in cookie.
    csrf: String,
}

/// `GET /signin/link/{token}`: asks before the one-time link is used, so
/// that a mail client's preview does not spend it; gives this browser the
/// sign-in cookie its form must match.
async fn link_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let token = path.into_inner();
    let (who, _) = check_link(&state, &req, &token)?;
    let roles: Vec<&str> = who.roles.iter().map(|r| r.as_str()).collect();
    // Kept when present: two links opened in two tabs both work.
    let csrf = session::sign_in_of(&req).unwrap_or_else(session::random_token);
    let mut response = page::html(
        StatusCode::OK,
        &LinkPage {
            layout: Layout::public("Development sign-in", true),
            token,
            sub: who.sub,
            roles: roles.join(", "),
            csrf: csrf.clone(),
            next: session::return_of(&req)
                .map(|next| local(Some(&next)))
                .filter(|next| next != "/"),
        },
    );
    response
        .add_cookie(&session::sign_in_cookie(csrf, state.console.secure_cookies))
        .map_err(|_| PageError::Internal)?;
    Ok(response)
}

/// The link's person and id; a link that does not work counts against the
/// client's limit of failed sign-ins.
fn check_link(
    state: &AppState,
    req: &HttpRequest,
    token: &str,
) -> Result<(SignedIn, String), PageError> {
    if state.console.oidc.is_some() {
        return Err(PageError::Forbidden(
            "Development sign-in is off: this service signs people in through its identity provider."
                .into(),
        ));
    }
    match state.console.links.verify(token) {
        Ok(signed) => Ok(signed),
        Err(e) => {
            state.limits.failed_auth(req)?;
            Err(PageError::Forbidden(format!(
                "This sign-in link does not work: {e}"
            )))
        }
    }
}

/// `POST /signin/link/{token}`: uses the link, once, from the browser that
/// was shown its page (the form's token matches that browser's sign-in
/// cookie; [`Form`] has refused a post from another site).
async fn use_link(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    form: Form,
) -> Result<HttpResponse, PageError> {
    let (who, jti) = check_link(&state, &req, &path)?;
    let shown = session::sign_in_of(&req);
    match (shown, form.get("csrf")) {
        (Some(cookie), Some(token)) if session::same_secret(&cookie, token) => {}
        _ => return Err(PageError::Csrf),
    }
    let now = Utc::now();
    let fresh = state
        .store
        .run(move |conn| session::use_link(conn, &jti, now).map_err(crate::db::StoreError::from))
        .await?;
    if !fresh {
        return Err(PageError::Forbidden(
            "This sign-in link was used already; print a new one with `clearance signin-link`."
                .into(),
        ));
    }
    let next = local(form.get("next"));
    let mut response = open_session(&state, who, "development link", &next).await?;
    let secure = state.console.secure_cookies;
    response
        .add_cookie(&session::sign_in_removal(secure))
        .map_err(|_| PageError::Internal)?;
    response
        .add_cookie(&session::return_removal(secure))
        .map_err(|_| PageError::Internal)?;
    Ok(response)
}

/// `POST /signout`.
async fn sign_out(posted: Posted<NoFields>) -> Result<HttpResponse, PageError> {
    let viewer = posted.viewer;
    let state = viewer.state.clone();
    let id_hash = viewer.session.id_hash().to_owned();
    let actor = viewer.actor();
    let sub = viewer.sub().to_owned();
    state
        .work
        .run(actor, state.clock.now(), move |tx| {
            session::close(tx.conn(), &id_hash)?;
            audit::append(
                tx,
                Change {
                    action: crate::audit::Action::SessionSignedOut,
                    subject: audit::Subject::person(&sub),
                    review_id: None,
                    before: None,
                    after: None,
                },
            )?;
            Ok::<_, crate::db::StoreError>(())
        })
        .await?;
    let mut response = page::redirect("/signin?signed_out=1");
    response
        .add_cookie(&session::removal(state.console.secure_cookies))
        .map_err(|_| PageError::Internal)?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::local;

    #[test]
    fn sign_in_returns_only_to_this_site() {
        assert_eq!(local(Some("/reviews/x?y=1")), "/reviews/x?y=1");
        assert_eq!(local(Some("/intake#intake-a-b")), "/intake#intake-a-b");
        for elsewhere in [
            "https://evil.example/",
            "http:/evil.example/",
            "//evil.example/",
            "///evil.example/",
            "/\\evil",
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /evil.example",
            "/x\\..\\\\evil.example",
            "javascript:x",
            "evil.example",
            "",
            "/signin",
            "/signin/link/abc",
            "/signout",
        ] {
            assert_eq!(local(Some(elsewhere)), "/", "{elsewhere}");
        }
        assert_eq!(local(None), "/");
    }
}
