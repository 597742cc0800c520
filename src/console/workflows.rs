//! A workflow's page, `/workflows/{id}`: its stages drawn in order, those
//! that may run at the same time (their prerequisites done at the same
//! step) side by side in one row, each with who answers it, who decides
//! it and how many approvals each tier needs. Read from the running
//! service's workflow catalogue; nothing here changes.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::TimeDelta;

use super::page::{self, Layout, PageError, Viewer};
use super::words;
use crate::auth::Role;
use crate::workflow::{Answerer, Stage, Tier};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/workflows/{id}").get(show));
}

/// One stage as its card shows it.
struct StageCard {
    title: String,
    answered_by: String,
    decided_by: String,
    approvals: String,
    /// The tiers it applies to, when not every tier.
    tiers: Option<String>,
    after: Option<String>,
    sla: String,
}

/// Stages that may run at the same time.
struct Row {
    cards: Vec<StageCard>,
}

#[derive(Template)]
#[template(path = "console/workflow.html")]
struct WorkflowPage {
    layout: Layout,
    /// The list of workflows, for those who may see it.
    back: Option<&'static str>,
    title: String,
    id: String,
    version: i64,
    description: Option<String>,
    rows: Vec<Row>,
}

/// `GET /workflows/{id}`.
async fn show(viewer: Viewer, path: web::Path<String>) -> Result<HttpResponse, PageError> {
    let loaded = viewer
        .state
        .reviews
        .catalog
        .get(&path)
        .ok_or_else(|| PageError::NotFound(format!("There is no workflow “{path}”.")))?;
    let workflow = &loaded.workflow;
    let titles: HashMap<&str, &str> = workflow
        .stages
        .iter()
        .map(|s| (s.key.as_str(), s.title.as_str()))
        .collect();
    let rows = rows(&workflow.stages)
        .into_iter()
        .map(|stages| Row {
            cards: stages.into_iter().map(|s| card(s, &titles)).collect(),
        })
        .collect();
    Ok(page::html(
        StatusCode::OK,
        &WorkflowPage {
            layout: viewer.layout(format!("Workflow: {}", workflow.title), ""),
            back: viewer.has(Role::Admin).then_some("/admin#workflows"),
            title: workflow.title.clone(),
            id: workflow.id.clone(),
            version: workflow.version,
            description: workflow.description.clone(),
            rows,
        },
    ))
}

/// The stages in rows: a stage's row is one past the last row of the
/// stages it waits for, so stages that wait for the same ones (or for
/// none) share a row and may run at the same time. In the workflow's
/// order within a row.
pub fn rows(stages: &[Stage]) -> Vec<Vec<&Stage>> {
    let by_key: HashMap<&str, &Stage> = stages.iter().map(|s| (s.key.as_str(), s)).collect();
    let mut depth: HashMap<&str, usize> = HashMap::new();
    fn depth_of<'s>(
        stage: &'s Stage,
        by_key: &HashMap<&str, &'s Stage>,
        depth: &mut HashMap<&'s str, usize>,
        seen: usize,
    ) -> usize {
        if let Some(d) = depth.get(stage.key.as_str()) {
            return *d;
        }
        // A loaded workflow has no cycle; the bound only keeps a bad one finite.
        let d = if seen > by_key.len() {
            0
        } else {
            stage
                .after
                .iter()
                .filter_map(|key| by_key.get(key.as_str()))
                .map(|before| depth_of(before, by_key, depth, seen + 1) + 1)
                .max()
                .unwrap_or(0)
        };
        depth.insert(stage.key.as_str(), d);
        d
    }
    let mut rows: Vec<Vec<&Stage>> = Vec::new();
    for stage in stages {
        let d = depth_of(stage, &by_key, &mut depth, 0);
        if rows.len() <= d {
            rows.resize_with(d + 1, Vec::new);
        }
        rows[d].push(stage);
    }
    rows.retain(|row| !row.is_empty());
    rows
}

fn card(stage: &Stage, titles: &HashMap<&str, &str>) -> StageCard {
    let approvals = per_tier(stage);
    let tiers = (stage.tiers.len() < Tier::ALL.len()).then(|| {
        Tier::ALL
            .iter()
            .filter(|t| stage.applies_to(**t))
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    });
    let after = (!stage.after.is_empty()).then(|| {
        stage
            .after
            .iter()
            .map(|k| titles.get(k.as_str()).copied().unwrap_or(k.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    });
    StageCard {
        title: stage.title.clone(),
        answered_by: match stage.answered_by {
            Answerer::Supplier => "the supplier's contact".into(),
            Answerer::Role(role) => words::one_with_role(role.as_str()),
        },
        decided_by: words::one_with_role(stage.approver_role.as_str()),
        approvals,
        tiers,
        after,
        sla: span(stage.sla.delta),
    }
}

/// The approvals a stage needs, tiers that need as many said together:
/// `1 approval at every tier`, `1 at low and medium, 2 at high and critical`.
fn per_tier(stage: &Stage) -> String {
    let mut groups: Vec<(u32, Vec<&str>)> = Vec::new();
    for tier in Tier::ALL {
        let n = stage.approvals_for(*tier);
        match groups.last_mut() {
            Some((count, tiers)) if *count == n => tiers.push(tier.as_str()),
            _ => groups.push((n, vec![tier.as_str()])),
        }
    }
    match groups.as_slice() {
        [(n, _)] => format!("{} at every tier", approvals(*n)),
        groups => groups
            .iter()
            .map(|(n, tiers)| {
                let tiers = match tiers.split_last() {
                    Some((last, [])) => (*last).to_owned(),
                    Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
                    None => String::new(),
                };
                format!("{n} at {tiers}")
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn approvals(n: u32) -> String {
    match n {
        1 => "1 approval".into(),
        n => format!("{n} approvals"),
    }
}

/// `10d` as `10 days`, `36h` as `36 hours`.
fn span(delta: TimeDelta) -> String {
    let plural = |n: i64, one: &str| match n {
        1 => format!("1 {one}"),
        n => format!("{n} {one}s"),
    };
    if delta.num_hours() % 24 == 0 {
        plural(delta.num_days(), "day")
    } else if delta.num_minutes() % 60 == 0 {
        plural(delta.num_hours(), "hour")
    } else {
        plural(delta.num_minutes(), "minute")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_after_the_same_ones_share_a_row() {
        let source = include_str!("../../workflows/model-provider.toml");
        let loaded = crate::workflow::LoadedWorkflow::parse("model-provider.toml", source, None)
            .expect("the shipped workflow loads");
        let rows: Vec<Vec<&str>> = rows(&loaded.workflow.stages)
            .iter()
            .map(|row| row.iter().map(|s| s.key.as_str()).collect())
            .collect();
        assert_eq!(
            rows,
            [
                vec!["intake"],
                vec!["security", "privacy", "responsible-ai"],
                vec!["final-approval"],
            ]
        );
    }

    #[test]
    fn spans_read_in_days_or_hours() {
        assert_eq!(span(TimeDelta::days(10)), "10 days");
        assert_eq!(span(TimeDelta::hours(36)), "36 hours");
        assert_eq!(span(TimeDelta::days(1)), "1 day");
    }
}
