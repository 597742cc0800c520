//! Console sessions: a random id in an `HttpOnly`, `SameSite=Lax` cookie
//! (`Secure` when the public URL is https), and the session itself in the
//! database (only the id's SHA-256 is stored), so any instance serves it.
//! A session ends after `CLEARANCE_SESSION_IDLE` without a request, after
//! `CLEARANCE_SESSION_LIFETIME` in any case, and at sign-out. Each holds the
//! CSRF token its forms carry. Session times follow real time, as token
//! expiry does, whatever the application's clock.

use std::collections::BTreeSet;

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use crate::auth::{Principal, Role};
use crate::db::{DbConnection, Json};
use crate::schema::{sessions, sign_in_links, sign_ins};

/// The session cookie's name.
pub const COOKIE: &str = "clearance_session";

/// How long a session lasts.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// Without a request for this long, a session ends.
    pub idle: TimeDelta,
    /// A session ends this long after sign-in, whatever.
    pub absolute: TimeDelta,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id_hash: String,
    pub sub: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub roles: Json<BTreeSet<Role>>,
    pub csrf: String,
    pub created_at: chrono::NaiveDateTime,
    pub last_seen_at: chrono::NaiveDateTime,
    pub expires_at: chrono::NaiveDateTime,
}

/// A signed-in person.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    /// What to call them: their name, else their address, else their `sub`.
    pub name: String,
    /// The token every form of theirs carries.
    pub csrf: String,
    id_hash: String,
}

impl Session {
    fn from_row(row: SessionRow) -> Self {
        let name = row
            .name
            .clone()
            .or_else(|| row.email.clone())
            .unwrap_or_else(|| row.sub.clone());
        Session {
            principal: Principal::new(row.sub, row.email, row.roles.into_inner(), None),
            name,
            csrf: row.csrf,
            id_hash: row.id_hash,
        }
    }

    /// Whether `token` (from a form) is this session's CSRF token; compared
    /// in constant time.
    pub fn csrf_matches(&self, token: &str) -> bool {
        same_secret(&self.csrf, token)
    }

    pub fn id_hash(&self) -> &str {
        &self.id_hash
    }
}

/// Whether two secrets are equal, compared in constant time (for their
/// length), so that the time of a refusal says nothing of the secret.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 32 random bytes, URL-safe base64.
pub fn random_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Who signs in: what the identity provider (or a development link) says.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub sub: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub roles: BTreeSet<Role>,
}

/// Opens a session; answers the cookie value (shown to nobody else).
pub fn open(
    conn: &mut DbConnection,
    who: &SignedIn,
    lifetimes: Lifetimes,
    now: DateTime<Utc>,
) -> QueryResult<String> {
    let id = random_token();
    let row = SessionRow {
        id_hash: hash(&id),
        sub: who.sub.clone(),
        email: who.email.clone(),
        name: who.name.clone(),
        roles: Json::new(who.roles.clone()),
        csrf: random_token(),
        created_at: now.naive_utc(),
        last_seen_at: now.naive_utc(),
        expires_at: (now + lifetimes.absolute).naive_utc(),
    };
    diesel::insert_into(sessions::table)
        .values(&row)
        .execute(conn)?;
    Ok(id)
}

/// The live session of a cookie value, noting the request (at most once a
/// minute); an expired one is deleted and answers `None`.
pub fn find(
    conn: &mut DbConnection,
    id: &str,
    lifetimes: Lifetimes,
    now: DateTime<Utc>,
) -> QueryResult<Option<Session>> {
    let id_hash = hash(id);
    let row: Option<SessionRow> = sessions::table
        .filter(sessions::id_hash.eq(&id_hash))
        .select(SessionRow::as_select())
        .first(conn)
        .optional()?;
    let Some(row) = row else { return Ok(None) };
    let idle_since = row.last_seen_at.and_utc();
    if now >= row.expires_at.and_utc() || now - idle_since >= lifetimes.idle {
        close(conn, &id_hash)?;
        return Ok(None);
    }
    if now - idle_since >= TimeDelta::minutes(1) {
        diesel::update(sessions::table.filter(sessions::id_hash.eq(&id_hash)))
            .set(sessions::last_seen_at.eq(now.naive_utc()))
            .execute(conn)?;
    }
    Ok(Some(Session::from_row(row)))
}

/// Ends a session (by the hash of its id).
pub fn close(conn: &mut DbConnection, id_hash: &str) -> QueryResult<()> {
    diesel::delete(sessions::table.filter(sessions::id_hash.eq(id_hash)))
        .execute(conn)
        .map(drop)
}

/// Deletes sessions and sign-in attempts that have expired.
pub fn sweep(conn: &mut DbConnection, idle: TimeDelta, now: DateTime<Utc>) -> QueryResult<usize> {
    let ended = diesel::delete(
        sessions::table.filter(
            sessions::expires_at
                .le(now.naive_utc())
                .or(sessions::last_seen_at.le((now - idle).naive_utc())),
        ),
    )
    .execute(conn)?;
    let stale = diesel::delete(
        sign_ins::table.filter(sign_ins::created_at.le((now - SIGN_IN_TIME).naive_utc())),
    )
    .execute(conn)?;
    Ok(ended + stale)
}

/// How long a sign-in at the identity provider may take.
pub const SIGN_IN_TIME: TimeDelta = TimeDelta::minutes(15);

/// What a sign-in in progress keeps until the identity provider sends the
/// person back: the PKCE verifier, the nonce and where to go afterwards.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sign_ins)]
pub struct SignInRow {
    pub state: String,
    pub verifier: String,
    pub nonce: String,
    pub return_to: String,
    pub created_at: chrono::NaiveDateTime,
}

pub fn begin_sign_in(conn: &mut DbConnection, row: &SignInRow) -> QueryResult<()> {
    diesel::insert_into(sign_ins::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// Takes (once) the sign-in of `state`, if it is recent enough.
pub fn take_sign_in(
    conn: &mut DbConnection,
    state: &str,
    now: DateTime<Utc>,
) -> QueryResult<Option<SignInRow>> {
    let row: Option<SignInRow> = sign_ins::table
        .filter(sign_ins::state.eq(state))
        .select(SignInRow::as_select())
        .first(conn)
        .optional()?;
    let deleted =
        diesel::delete(sign_ins::table.filter(sign_ins::state.eq(state))).execute(conn)?;
    Ok(row.filter(|r| deleted == 1 && now - r.created_at.and_utc() < SIGN_IN_TIME))
}

/// Marks a development sign-in link used; false when it already was.
pub fn use_link(conn: &mut DbConnection, jti: &str, now: DateTime<Utc>) -> QueryResult<bool> {
    let inserted = diesel::insert_into(sign_in_links::table)
        .values((
            sign_in_links::jti.eq(jti),
            sign_in_links::used_at.eq(now.naive_utc()),
        ))
        .execute(conn);
    match inserted {
        Ok(_) => Ok(true),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The session cookie: `HttpOnly`, `SameSite=Lax`, `Secure` on https, for
/// the whole site; a session cookie in the browser (no `Max-Age`), ended
/// on the server by its lifetimes.
pub fn cookie(value: String, secure: bool) -> Cookie<'static> {
    Cookie::build(COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .finish()
}

/// The cookie that removes the session cookie.
pub fn removal(secure: bool) -> Cookie<'static> {
    let mut cookie = cookie(String::new(), secure);
    cookie.set_max_age(CookieDuration::ZERO);
    cookie
}

/// The cookie of the browser that opened a development sign-in link's
/// page: the page's form carries its value, so only that browser can use
/// the link (another site cannot sign a visitor in as someone else).
pub const SIGN_IN_COOKIE: &str = "clearance_sign_in";

/// The sign-in cookie: `HttpOnly`, `SameSite=Strict` (no other site's post
/// carries it), for the sign-in links alone, for 15 minutes.
pub fn sign_in_cookie(value: String, secure: bool) -> Cookie<'static> {
    Cookie::build(SIGN_IN_COOKIE, value)
        .path("/signin/link")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(CookieDuration::minutes(15))
        .finish()
}

/// The cookie that removes the sign-in cookie, once it served.
pub fn sign_in_removal(secure: bool) -> Cookie<'static> {
    let mut cookie = sign_in_cookie(String::new(), secure);
    cookie.set_max_age(CookieDuration::ZERO);
    cookie
}

/// The sign-in cookie's value a request carries, if any.
pub fn sign_in_of(req: &HttpRequest) -> Option<String> {
    req.cookie(SIGN_IN_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 100)
}

/// The cookie that keeps, while someone signs in with a development link,
/// the page they asked for (the link comes from elsewhere, without it).
pub const RETURN_COOKIE: &str = "clearance_return";

/// The return cookie: a local path (percent-encoded), for the sign-in
/// pages alone, for as long as a link works.
pub fn return_cookie(path: &str, secure: bool) -> Cookie<'static> {
    let value: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
    Cookie::build(RETURN_COOKIE, value)
        .path("/signin")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(CookieDuration::minutes(15))
        .finish()
}

/// The cookie that removes the return cookie, once it served.
pub fn return_removal(secure: bool) -> Cookie<'static> {
    let mut cookie = return_cookie("", secure);
    cookie.set_max_age(CookieDuration::ZERO);
    cookie
}

/// The page the return cookie keeps, if any (not yet checked as local).
pub fn return_of(req: &HttpRequest) -> Option<String> {
    let cookie = req.cookie(RETURN_COOKIE)?;
    let decoded: String = url::form_urlencoded::parse(format!("p={}", cookie.value()).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    Some(decoded).filter(|v| !v.is_empty())
}

/// The session id a request carries, if any.
pub fn id_of(req: &HttpRequest) -> Option<String> {
    req.cookie(COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 100)
}
