//! Database code of webhook subscriptions.

use diesel::prelude::*;

use super::WebhookRow;
use crate::db::DbConnection;
use crate::ids::WebhookId;
use crate::schema::webhooks;

/// Every subscription, oldest first.
pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<WebhookRow>> {
    webhooks::table
        .select(WebhookRow::as_select())
        .order(webhooks::created_at.asc())
        .load(conn)
}

pub fn find(conn: &mut DbConnection, id: &WebhookId) -> QueryResult<Option<WebhookRow>> {
    webhooks::table
        .filter(webhooks::id.eq(id))
        .select(WebhookRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert(conn: &mut DbConnection, row: &WebhookRow) -> QueryResult<()> {
    diesel::insert_into(webhooks::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn delete(conn: &mut DbConnection, id: &WebhookId) -> QueryResult<()> {
    diesel::delete(webhooks::table.filter(webhooks::id.eq(id)))
        .execute(conn)
        .map(drop)
}
