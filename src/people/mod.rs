//! Who gets told: a directory of the people who have signed in (their
//! address and roles as their last token said), the shared mailbox of each
//! role, and the rules that turn "the assignee", "the security reviewers" or
//! "the admins" into addresses.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;

use crate::audit::{self, Actor, Change};
use crate::auth::{Principal, Role};
use crate::clock::SharedClock;
use crate::db::{DbConnection, Json, Store, StoreError};
use crate::schema::{people, role_mailboxes};
use crate::unit::UnitOfWork;

pub mod routes;

/// A person is written to the directory at most this often.
const REFRESH: TimeDelta = TimeDelta::minutes(1);

/// When a person was last written, with the address and roles written.
type Recorded = (DateTime<Utc>, Option<String>, String);

/// Records who signed in, cheaply: at most once a minute per person (and
/// again at once when their address or roles change), off the request path.
#[derive(Clone)]
pub struct Directory {
    store: Store,
    clock: SharedClock,
    recent: Arc<Mutex<HashMap<String, Recorded>>>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory").finish_non_exhaustive()
    }
}

impl Directory {
    pub fn new(store: Store, clock: SharedClock) -> Self {
        Self {
            store,
            clock,
            recent: Arc::default(),
        }
    }

    /// Notes that `principal` made a request; respondents are not people of
    /// the organisation and are not recorded.
    pub fn seen(&self, principal: &Principal) {
        if principal.respondent.is_some() {
            return;
        }
        // The same token again within the minute: nothing to look up.
        let seconds = self.clock.timestamp();
        if principal.noted_since(seconds - REFRESH.num_seconds(), seconds) {
            return;
        }
        let now = self.clock.now();
        let roles = roles_json(principal.roles.iter().copied());
        {
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, email, known_roles)) = recent.get(&principal.sub)
                && now - *at < REFRESH
                && *email == principal.email
                && *known_roles == roles
            {
                return;
            }
            if recent.len() > 100_000 {
                recent.clear();
            }
            recent.insert(
                principal.sub.clone(),
                (now, principal.email.clone(), roles.clone()),
            );
        }
        let store = self.store.clone();
        let (sub, email) = (principal.sub.clone(), principal.email.clone());
        let record = move || -> Result<(), StoreError> {
            let mut conn = store.get()?;
            record(&mut conn, &sub, email.as_deref(), &roles, now)?;
            Ok(())
        };
        // Off the executor, and never a reason to fail the request.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn_blocking(move || {
                if let Err(error) = record() {
                    tracing::warn!(%error, "cannot record a person in the directory");
                }
            });
        }
    }
}

fn roles_json(roles: impl Iterator<Item = Role>) -> String {
    serde_json::to_string(&roles.map(Role::as_str).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".into())
}

/// Inserts or refreshes a person (an update first: the common case).
pub fn record(
    conn: &mut DbConnection,
    sub: &str,
    email: Option<&str>,
    roles: &str,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let values = (
        people::email.eq(email),
        people::roles.eq(roles),
        people::last_seen_at.eq(now.naive_utc()),
    );
    let updated = diesel::update(people::table.filter(people::sub.eq(sub)))
        .set(values)
        .execute(conn)?;
    if updated == 0 {
        let inserted = diesel::insert_into(people::table)
            .values((people::sub.eq(sub), values.0, values.1, values.2))
            .execute(conn);
        match inserted {
            // Another request inserted them first: theirs is as good.
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => {}
            other => {
                other?;
                if let Some(email) = email {
                    take_assignments(conn, sub, email)?;
                }
            }
        }
    }
    Ok(())
}

/// A person seen for the first time takes the stages assigned to their
/// address before they had signed in: the assignment names them by `sub`
/// from now on, as every other does.
fn take_assignments(conn: &mut DbConnection, sub: &str, email: &str) -> QueryResult<()> {
    use crate::schema::{review_stages, reviews};
    let email = email.to_lowercase();
    // The reviews change as they read: their version moves (`ETag`).
    let assigned = review_stages::table
        .filter(
            review_stages::answer_assignee
                .eq(&email)
                .or(review_stages::decide_assignee.eq(&email)),
        )
        .select(review_stages::review_id);
    diesel::update(reviews::table.filter(reviews::id.eq_any(assigned)))
        .set(reviews::version.eq(reviews::version + 1))
        .execute(conn)?;
    diesel::update(review_stages::table.filter(review_stages::answer_assignee.eq(&email)))
        .set(review_stages::answer_assignee.eq(sub))
        .execute(conn)?;
    diesel::update(review_stages::table.filter(review_stages::decide_assignee.eq(&email)))
        .set(review_stages::decide_assignee.eq(sub))
        .execute(conn)?;
    Ok(())
}

/// The address of a person known by `sub` (or the value itself, when it is
/// already an address).
pub fn address_of(conn: &mut DbConnection, who: &str) -> QueryResult<Option<String>> {
    if who.contains('@') {
        return Ok(Some(who.to_owned()));
    }
    Ok(people::table
        .filter(people::sub.eq(who))
        .select(people::email)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten())
}

/// Whether the directory knows `who`, by `sub` or by address.
pub fn is_known(conn: &mut DbConnection, who: &str) -> QueryResult<bool> {
    let found: i64 = people::table
        .filter(people::sub.eq(who).or(people::email.eq(who)))
        .count()
        .get_result(conn)?;
    Ok(found > 0)
}

/// The person the directory knows by `sub` or by address: their `sub`
/// and roles.
pub fn find(conn: &mut DbConnection, who: &str) -> QueryResult<Option<(String, Vec<Role>)>> {
    let mut found: Option<(String, Json<Vec<String>>)> = people::table
        .filter(people::sub.eq(who))
        .select((people::sub, people::roles))
        .first(conn)
        .optional()?;
    if found.is_none() && who.contains('@') {
        found = people::table
            .filter(people::email.eq(who))
            .select((people::sub, people::roles))
            .order(people::last_seen_at.desc())
            .first(conn)
            .optional()?;
    }
    Ok(found.map(|(sub, roles)| {
        let roles = roles.get().iter().filter_map(|r| Role::parse(r)).collect();
        (sub, roles)
    }))
}

/// A person in the directory, as the admin lists them.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Person {
    pub sub: String,
    pub email: Option<String>,
    pub roles: Vec<String>,
    pub last_seen_at: DateTime<Utc>,
}

/// Everyone in the directory, by `sub`.
pub fn everyone(conn: &mut DbConnection) -> QueryResult<Vec<Person>> {
    type Row = (
        String,
        Option<String>,
        Json<Vec<String>>,
        chrono::NaiveDateTime,
    );
    let rows: Vec<Row> = people::table
        .select((
            people::sub,
            people::email,
            people::roles,
            people::last_seen_at,
        ))
        .order(people::sub.asc())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(sub, email, roles, seen)| Person {
            sub,
            email,
            roles: roles.into_inner(),
            last_seen_at: seen.and_utc(),
        })
        .collect())
}

/// Sets (or with no addresses removes) the mailbox that notices to `role`
/// go to, audited as `mailbox.set`. The addresses are checked by the caller.
pub async fn set_mailbox(
    work: &UnitOfWork,
    actor: Actor,
    role: Role,
    emails: Vec<String>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    work.run(actor, now, move |tx| {
        let before = stored_mailbox(tx.conn(), role)?;
        diesel::delete(role_mailboxes::table.filter(role_mailboxes::role.eq(role)))
            .execute(tx.conn())?;
        if !emails.is_empty() {
            let by = tx.actor().id();
            diesel::insert_into(role_mailboxes::table)
                .values((
                    role_mailboxes::role.eq(role),
                    role_mailboxes::emails.eq(Json::new(emails.clone())),
                    role_mailboxes::updated_by.eq(by),
                    role_mailboxes::updated_at.eq(now.naive_utc()),
                ))
                .execute(tx.conn())?;
        }
        audit::append(
            tx,
            Change {
                action: crate::audit::Action::MailboxSet,
                subject: audit::Subject::role(role),
                review_id: None,
                before: before.map(|b| serde_json::json!({"emails": b})),
                after: Some(serde_json::json!({"emails": emails})),
            },
        )?;
        Ok(())
    })
    .await
}

/// The mailbox an admin set for `role`, if any.
pub fn stored_mailbox(conn: &mut DbConnection, role: Role) -> QueryResult<Option<Vec<String>>> {
    let emails: Option<Json<Vec<String>>> = role_mailboxes::table
        .filter(role_mailboxes::role.eq(role))
        .select(role_mailboxes::emails)
        .first(conn)
        .optional()?;
    Ok(emails.map(Json::into_inner))
}

/// Every known person holding `role` who has an address, by `sub`.
pub fn people_with_role(conn: &mut DbConnection, role: Role) -> QueryResult<Vec<(String, String)>> {
    let pattern = format!("%\"{}\"%", role.as_str());
    let rows: Vec<(String, Option<String>, String)> = people::table
        .filter(people::roles.like(pattern))
        .select((people::sub, people::email, people::roles))
        .order(people::sub.asc())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter(|(_, _, roles)| {
            serde_json::from_str::<Vec<String>>(roles)
                .is_ok_and(|r| r.iter().any(|r| r == role.as_str()))
        })
        .filter_map(|(sub, email, _)| email.map(|e| (sub, e)))
        .collect())
}

/// Who may be picked for `role`, as `(value, label)`: every known person
/// holding it, by `sub`, and each address of its mailbox (set by an admin,
/// else configured).
pub fn candidates(
    conn: &mut DbConnection,
    role: Role,
    configured: &BTreeMap<Role, Vec<String>>,
) -> QueryResult<Vec<(String, String)>> {
    let mut found: Vec<(String, String)> = people_with_role(conn, role)?
        .into_iter()
        .map(|(sub, email)| {
            let label = format!("{sub} ({email})");
            (sub, label)
        })
        .collect();
    let mailbox = match stored_mailbox(conn, role)?.filter(|e| !e.is_empty()) {
        Some(emails) => emails,
        None => configured.get(&role).cloned().unwrap_or_default(),
    };
    let role_words = role.as_str().replace('_', " ");
    for email in mailbox {
        if !found.iter().any(|(value, _)| *value == email) {
            let label = format!("{email} (the {role_words}s' mailbox)");
            found.push((email, label));
        }
    }
    Ok(found)
}

/// The addresses a notice to `role` goes to: its mailbox (set by an admin,
/// else configured), else every known person with the role.
pub fn role_addresses(
    conn: &mut DbConnection,
    role: Role,
    configured: &BTreeMap<Role, Vec<String>>,
) -> QueryResult<Vec<String>> {
    if let Some(emails) = stored_mailbox(conn, role)?.filter(|e| !e.is_empty()) {
        return Ok(emails);
    }
    if let Some(emails) = configured.get(&role).filter(|e| !e.is_empty()) {
        return Ok(emails.clone());
    }
    let mut emails: Vec<String> = people_with_role(conn, role)?
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    emails.sort();
    emails.dedup();
    Ok(emails)
}

/// Who a notice reaches in the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipients {
    pub to: Vec<String>,
    /// True when nobody was found for the intended audience and the admins
    /// are told instead.
    pub fell_back_to_admins: bool,
}

/// `intended`, or when it is empty the admins; empty only when nobody at
/// all can be told (the caller records that, never silently).
pub fn or_admins(
    conn: &mut DbConnection,
    intended: Vec<String>,
    configured: &BTreeMap<Role, Vec<String>>,
) -> QueryResult<Recipients> {
    if !intended.is_empty() {
        return Ok(Recipients {
            to: intended,
            fell_back_to_admins: false,
        });
    }
    Ok(Recipients {
        to: role_addresses(conn, Role::Admin, configured)?,
        fell_back_to_admins: true,
    })
}
