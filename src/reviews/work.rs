//! What a person has to do: the open stages waiting for them (to answer, to
//! decide, or assigned to them), overdue first; the reviews they started;
//! the invitations whose suppliers have yet to answer. Read in a few queries
//! whatever the number of reviews, never one per row.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::store::{self, OpenStage, PendingInvitation, ReviewFilter, StageScope, utc};
use super::{ReviewError, ReviewSummary};
use crate::auth::Principal;
use crate::db::DbConnection;
use crate::ids::{ReviewId, StageKey};
use crate::workflow::engine::{Duty, StageState};
use crate::workflow::{Answerer, Catalog, LoadedWorkflow};

/// Why a stage is on someone's list: what it waits on them for, and
/// whether they are assigned to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Why {
    pub duty: Duty,
    pub assigned: bool,
}

impl Why {
    pub fn as_str(self) -> &'static str {
        match (self.duty, self.assigned) {
            (Duty::Answer, false) => "to answer",
            (Duty::Decide, false) => "to decide",
            (Duty::Answer, true) => "to answer, assigned to you",
            (Duty::Decide, true) => "to decide, assigned to you",
        }
    }
}

/// One stage on a list of work.
#[derive(Debug, Clone)]
pub struct WorkItem {
    pub review_id: ReviewId,
    pub subject: String,
    pub stage: StageKey,
    pub stage_title: String,
    pub state: StageState,
    pub why: Why,
    pub due_at: Option<DateTime<Utc>>,
    pub overdue: bool,
}

/// Everything on a person's plate.
#[derive(Debug, Clone)]
pub struct MyWork {
    pub to_do: Vec<WorkItem>,
    pub started: Vec<ReviewSummary>,
    pub waiting_on_suppliers: Vec<PendingInvitation>,
}

/// The work of `who` as of `now`.
pub fn my_work(
    conn: &mut DbConnection,
    catalog: &Catalog,
    who: &Principal,
    now: DateTime<Utc>,
) -> Result<MyWork, ReviewError> {
    let mut workflows: HashMap<String, Arc<LoadedWorkflow>> = HashMap::new();
    let scope = scope_of(conn, catalog, who, &mut workflows)?;
    let open = store::open_stages(conn, Some(&scope))?;
    let mut to_do = Vec::new();
    for stage in open {
        let workflow = match workflows.get(&stage.workflow_digest) {
            Some(w) => Arc::clone(w),
            None => {
                let w = store::pinned_workflow(conn, catalog, &stage.workflow_digest)?;
                workflows.insert(stage.workflow_digest.clone(), Arc::clone(&w));
                w
            }
        };
        let Some(definition) = workflow.workflow.stage(&stage.key) else {
            continue;
        };
        let Some(why) = why(&stage, definition, who) else {
            continue;
        };
        let due_at = stage.due_at.map(utc);
        to_do.push(WorkItem {
            subject: stage.subject(),
            review_id: stage.review_id,
            stage: stage.key,
            stage_title: definition.title.clone(),
            state: stage.state,
            why,
            due_at,
            overdue: due_at.is_some_and(|d| d < now),
        });
    }
    to_do.sort_by_key(|item| (!item.overdue, item.due_at));
    let mine = ReviewFilter {
        state: Some(crate::workflow::engine::ReviewState::InProgress),
        started_by: Some(who.sub.clone()),
        ..ReviewFilter::default()
    };
    let started = store::list(conn, catalog, &mine, None, 50, now)?;
    let waiting_on_suppliers = store::pending_invitations(conn, Some(&who.sub), now)?;
    Ok(MyWork {
        to_do,
        started,
        waiting_on_suppliers,
    })
}

/// The open stages that may be on the list of `who`: assigned to them, or
/// of a stage key that a role of theirs answers or decides in one of the
/// workflows of the reviews in progress (loaded into `workflows`).
fn scope_of(
    conn: &mut DbConnection,
    catalog: &Catalog,
    who: &Principal,
    workflows: &mut HashMap<String, Arc<LoadedWorkflow>>,
) -> Result<StageScope, ReviewError> {
    let mut scope = StageScope {
        assignees: std::iter::once(who.sub.clone())
            .chain(who.email.clone())
            .collect(),
        ..StageScope::default()
    };
    for digest in store::digests_in_progress(conn)? {
        let workflow = store::pinned_workflow(conn, catalog, &digest)?;
        for stage in &workflow.workflow.stages {
            if matches!(stage.answered_by, Answerer::Role(role) if who.has(role)) {
                scope.answer.push(stage.key.clone());
            }
            if who.has(stage.approver_role) {
                scope.decide.push(stage.key.clone());
            }
        }
        workflows.insert(digest, workflow);
    }
    for keys in [&mut scope.answer, &mut scope.decide] {
        keys.sort();
        keys.dedup();
    }
    Ok(scope)
}

/// Why `who` should act on `stage` now, if they should: assigned to what
/// it waits on (answering while it awaits answers, deciding while in
/// review); else, with nobody assigned to that, awaiting the answers of a
/// role they hold, or in review, decided by a role they hold, and not
/// barred by segregation of duties (they started the review or answered
/// the stage) nor approved by them already (it needs another approval,
/// from someone else). A decider who is barred from deciding, or has
/// approved already, does not hold the stage: it is the approvers' again.
pub fn why(stage: &OpenStage, definition: &crate::workflow::Stage, who: &Principal) -> Option<Why> {
    let is_me = |id: &str| id == who.sub || who.email.as_deref() == Some(id);
    let barred = |id: &str| {
        stage.started_by == id
            || stage.started_by_email.as_deref() == Some(id)
            || stage.answerers.get().contains(id)
    };
    let approved = |id: &str| {
        stage
            .approved_by
            .iter()
            .any(|(sub, email)| sub == id || email.as_deref() == Some(id))
    };
    if !stage.state.is_open() {
        return None;
    }
    let duty = Duty::waited_on(stage.state);
    let assignee = stage
        .assignee
        .as_deref()
        .filter(|a| !(duty == Duty::Decide && (barred(a) || approved(a))));
    if let Some(assignee) = assignee {
        return is_me(assignee).then_some(Why {
            duty,
            assigned: true,
        });
    }
    let mine = match duty {
        Duty::Answer => matches!(definition.answered_by, Answerer::Role(role) if who.has(role)),
        Duty::Decide => {
            who.has(definition.approver_role) && !barred(&who.sub) && !approved(&who.sub)
        }
    };
    mine.then_some(Why {
        duty,
        assigned: false,
    })
}
