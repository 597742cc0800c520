use super::*;

use crate::workflow::fixture::WORKFLOW;

fn problems(source: &str) -> Vec<String> {
    parse("w.toml", source, None)
        .unwrap_err()
        .into_iter()
        .map(|d| d.to_string())
        .collect()
}

/// The problems of WORKFLOW with `from` replaced by `to`.
fn problems_after(from: &str, to: &str) -> Vec<String> {
    assert!(WORKFLOW.contains(from), "{from}");
    problems(&WORKFLOW.replacen(from, to, 1))
}

#[test]
fn a_valid_file_parses_into_its_definition() {
    let workflow = parse("w.toml", WORKFLOW, Some("small")).unwrap();
    assert_eq!(workflow.version, 2);
    let security = workflow.stage("security").unwrap();
    assert_eq!(security.approvals_for(Tier::High), 2);
    assert_eq!(security.after, ["intake"]);
    assert_eq!(security.escalation.len(), 2);
    assert_eq!(security.sla.delta, chrono::TimeDelta::days(10));
    let url = security.question("iso27001_url").unwrap();
    assert!(url.shown_when.is_some());
    assert_eq!(
        workflow
            .stage("intake")
            .unwrap()
            .question("data_classes")
            .unwrap()
            .risk[0]
            .min_tier,
        Some(Tier::High)
    );
}

#[test]
fn problems_carry_line_and_column() {
    let found = problems_after(r#"after = ["intake"]"#, r#"after = ["intkae"]"#);
    let line = WORKFLOW
        .lines()
        .position(|l| l.contains(r#"after = ["intake"]"#))
        .unwrap()
        + 1;
    assert_eq!(
        found,
        [format!(
            "w.toml:{line}:10: unknown stage `intkae` in `after`"
        )]
    );
}

#[test]
fn each_kind_of_problem_is_reported() {
    let cases = [
        (
            r#"questionnaire = "security""#,
            r#"questionnaire = "securty""#,
            "unknown questionnaire `securty`",
        ),
        (
            r#"after = ["intake"]"#,
            r#"after = ["security"]"#,
            "cannot come after itself",
        ),
        (
            r#"id = "iso27001_url""#,
            r#"id = "iso27001""#,
            "duplicate question id `iso27001`",
        ),
        (
            r#"key = "security""#,
            r#"key = "intake""#,
            "duplicate stage `intake`",
        ),
        (
            r#"sla = "10d""#,
            r#"sla = "ten days""#,
            "bad duration `ten days`",
        ),
        (
            r#"shown_when = { question = "iso27001""#,
            r#"shown_when = { question = "nothing""#,
            "shown_when names unknown question `nothing`",
        ),
        (
            r#"equals = "personal""#,
            r#"equals = "biometric""#,
            r#"condition names unknown option "biometric" of question `data_classes`"#,
        ),
        (
            "approvals = 1",
            "approvals = 0",
            "needs at least 1 approval",
        ),
        (
            "high = 2, critical = 2",
            "high = 0, critical = 2",
            "tier `high` of stage `security` needs at least 1 approval",
        ),
        (
            r#"type = "yes_no""#,
            r#"type = "boolean""#,
            "unknown question type `boolean`",
        ),
        (
            r#"approver_role = "security_reviewer""#,
            r#"approver_role = "integrator""#,
            "approver_role cannot be `integrator`",
        ),
        (
            r#"notify = "assignee""#,
            r#"notify = "the boss""#,
            "notify `the boss` must be",
        ),
        (
            "[tiers.critical]",
            "[tiers.extreme]",
            "unknown tier `extreme`",
        ),
        (
            r#"controls = ["iso42001:A.7.2"]"#,
            r#"controls = ["A.7.2"]"#,
            "control `A.7.2` must be written scheme:id",
        ),
        (
            "title = \"Small\"",
            "title = \"Small\"\ncolour = \"red\"",
            "unknown field `colour`",
        ),
    ];
    for (from, to, expected) in cases {
        let found = problems_after(from, to);
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "{to}: expected `{expected}` in {found:?}"
        );
        assert!(found.iter().all(|p| p.starts_with("w.toml:")), "{found:?}");
    }
}

#[test]
fn a_dependency_cycle_is_named() {
    let source = WORKFLOW.replacen(
        "questionnaire = \"intake\"",
        "after = [\"security\"]\nquestionnaire = \"intake\"",
        1,
    );
    let found = problems(&source);
    assert!(
        found
            .iter()
            .any(|p| p.contains("dependency cycle: intake → security → intake")),
        "{found:?}"
    );
}

#[test]
fn the_file_name_must_match_the_id() {
    let found: Vec<String> = parse("other.toml", WORKFLOW, Some("other"))
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        found[0].contains("does not match the file name `other.toml`"),
        "{found:?}"
    );
}

#[test]
fn toml_syntax_errors_have_positions() {
    let found = problems("id = \"x\"\nversion = \n");
    assert_eq!(found.len(), 1);
    assert!(found[0].starts_with("w.toml:2:"), "{found:?}");
}

#[test]
fn the_shipped_default_workflow_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/model-provider.toml");
    let source = std::fs::read_to_string(path).unwrap();
    let workflow = match parse(path, &source, Some("model-provider")) {
        Ok(workflow) => workflow,
        Err(problems) => panic!(
            "{}",
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    };
    let questions: usize = workflow
        .stages
        .iter()
        .map(|s| s.questionnaire.questions().count())
        .sum();
    assert!(questions >= 40, "{questions} questions");
    assert!(
        workflow
            .stages
            .iter()
            .flat_map(|s| s.questionnaire.questions())
            .all(|q| !q.controls.is_empty())
    );
    assert_eq!(
        workflow
            .stage("security")
            .unwrap()
            .approvals_for(Tier::High),
        2
    );
    assert!(
        !workflow
            .stage("responsible-ai")
            .unwrap()
            .applies_to(Tier::Low)
    );
    assert_eq!(
        workflow.stage("final-approval").unwrap().approver_role,
        crate::auth::Role::Approver
    );
}
