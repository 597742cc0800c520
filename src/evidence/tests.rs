use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use serde_json::json;

use super::*;
use crate::conditions::DataClass;
use crate::reviews::{
    AnswerView, FindingState, FindingView, ReviewSummary, StageSummary, TimelineEntry, WorkflowRef,
};
use crate::workflow::engine::{Decision, ReviewKind, ReviewState};
use crate::workflow::{Catalog, LoadedWorkflow, Severity, Tier};

fn shipped_workflow() -> Arc<LoadedWorkflow> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    Catalog::load_dir(&dir)
        .unwrap()
        .get("model-provider")
        .unwrap()
}

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, hour, 0, 0).unwrap()
}

fn answer(value: serde_json::Value) -> AnswerView {
    AnswerView {
        value,
        answered_by: "victor".into(),
        updated_at: at(10),
        carried_forward: false,
        previous_value: None,
    }
}

/// A review of anthropic/claude: intake answered (with text that needs
/// escaping), intake approved, security and privacy open, responsible AI
/// skipped, one finding.
fn detail(workflow: &LoadedWorkflow) -> ReviewDetail {
    let stage = |key: &str, state: StageState| StageSummary {
        key: key.into(),
        title: workflow.workflow.stage(key).unwrap().title.clone(),
        state,
        answered_by: crate::workflow::Answerer::Supplier,
        approver_role: "security_reviewer".into(),
        assignee: None,
        assignees: Default::default(),
        due_at: None,
        overdue: false,
        approvals_required: 1,
        approvals: Vec::new(),
    };
    let intake = BTreeMap::from([
        (
            "use_case".to_owned(),
            answer(json!(
                "Support chat <script>alert(\"x\")</script>, \"quoted\", and\na second line"
            )),
        ),
        ("hosting".to_owned(), answer(json!("provider_api"))),
        ("processing_regions".to_owned(), answer(json!(["eu", "uk"]))),
        ("affects_people".to_owned(), answer(json!(false))),
    ]);
    ReviewDetail {
        review: ReviewSummary {
            id: crate::ids::ReviewId::parse("0190f3b4-5d6e-7f80-9a1b-2c3d4e5f6a7b").unwrap(),
            kind: ReviewKind::Initial,
            provider: crate::ids::ProviderSlug::parse("anthropic").unwrap(),
            model: Some(crate::ids::ModelSlug::parse("claude").unwrap()),
            workflow: WorkflowRef {
                id: workflow.workflow.id.clone(),
                version: workflow.workflow.version,
                digest: workflow.digest.clone(),
                title: workflow.workflow.title.clone(),
            },
            state: ReviewState::InProgress,
            tier: Tier::Medium,
            tier_reason: Some("intake: personal data".into()),
            started_by: "victor".into(),
            created_at: at(9),
            updated_at: at(11),
            decided_at: None,
            valid_until: None,
            conditions: None,
            version: 7,
            stages: vec![
                stage("intake", StageState::Approved),
                stage("security", StageState::AwaitingAnswers),
                stage("privacy", StageState::AwaitingAnswers),
                stage("responsible-ai", StageState::Skipped),
                stage("final-approval", StageState::Skipped),
            ],
            warnings: Vec::new(),
        },
        answers: BTreeMap::from([("intake".to_owned(), intake)]),
        decisions: vec![DecisionView {
            stage: "intake".into(),
            decision: Decision::Approve,
            by: "vera".into(),
            comment: Some("Tiering <b>confirmed</b>".into()),
            conditions: Some(Conditions {
                regions: Some(["eu".to_owned()].into()),
                data_classes: Some([DataClass::Public, DataClass::Internal].into()),
                ..Conditions::default()
            }),
            round: 1,
            at: at(11),
        }],
        findings: vec![FindingView {
            id: crate::ids::FindingId::parse("0190f3b4-5d6e-7f80-9a1b-2c3d4e5f6a7c").unwrap(),
            stage: Some("security".into()),
            severity: Severity::High,
            text: "No SBOM & no <pentest>".into(),
            owner: Some("victor".into()),
            remediation_due: None,
            state: FindingState::Resolved,
            resolution: Some("SBOM received".into()),
            resolved_by: Some("sam".into()),
            source: None,
            created_by: "sam".into(),
            created_at: at(11),
            updated_at: at(12),
            answer_changed: None,
        }],
        invitations: Vec::new(),
        timeline: vec![TimelineEntry {
            at: at(9),
            actor: "victor".into(),
            action: "review.started".into(),
            detail: Some(json!({"subject": "anthropic/claude"})),
        }],
        comments: Vec::new(),
        changed_since_request: BTreeMap::new(),
    }
}

fn head() -> ChainHead {
    ChainHead {
        seq: 12,
        hash: "ab".repeat(32),
    }
}

#[test]
fn answers_read_as_a_person_reads_them() {
    let workflow = shipped_workflow();
    let stage = workflow.workflow.stage("intake").unwrap();
    let hosting = stage.question("hosting");
    assert_eq!(
        answer_text(hosting, &json!("provider_api")),
        "The provider's own API or application"
    );
    let regions = stage.question("processing_regions");
    assert_eq!(
        answer_text(regions, &json!(["eu", "uk"])),
        "European Union / EEA, United Kingdom"
    );
    assert_eq!(answer_text(None, &json!(true)), "yes");
    assert_eq!(answer_text(None, &json!(false)), "no");
    assert_eq!(answer_text(None, &json!(12.5)), "12.5");
    assert_eq!(answer_text(None, &json!("not an option")), "not an option");
    assert_eq!(answer_text(None, &json!(null)), "");
}

#[test]
fn conditions_read_as_key_and_values() {
    let conditions = Conditions {
        regions: Some(["eu".to_owned(), "uk".to_owned()].into()),
        features_off: Some(["web_grounding".to_owned()].into()),
        ..Conditions::default()
    };
    assert_eq!(
        conditions_text(Some(&conditions)),
        "features_off: web_grounding; regions: eu, uk"
    );
    assert_eq!(conditions_text(None), "");
}

#[test]
fn answers_are_grouped_by_stage_and_section_in_workflow_order() {
    let workflow = shipped_workflow();
    let detail = detail(&workflow);
    let evidence = Evidence::build(&detail, &workflow.workflow, &head(), at(13));
    let ids: Vec<&str> = evidence.answers().map(|a| a.question_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "use_case",
            "affects_people",
            "hosting",
            "processing_regions"
        ],
        "questionnaire order, not alphabetical"
    );
    let intake = &evidence.stages[0];
    assert_eq!(intake.state, "approved");
    assert_eq!(intake.decisions.len(), 1);
    assert!(intake.sections.iter().all(|s| !s.answers.is_empty()));
    assert!(
        evidence.stages[1].sections.is_empty(),
        "security has no answers"
    );
    assert_eq!(evidence.subject, "anthropic/claude");
}

#[test]
fn each_control_lists_its_questions_and_the_decisions_of_their_stages() {
    let workflow = shipped_workflow();
    let detail = detail(&workflow);
    let evidence = Evidence::build(&detail, &workflow.workflow, &head(), at(13));
    let control = |id: &str| evidence.controls.iter().find(|c| c.control == id).unwrap();

    let gdpr = control("gdpr:art44");
    let regions = gdpr
        .questions
        .iter()
        .find(|q| q.question_id == "processing_regions")
        .unwrap();
    assert_eq!(regions.answer, "European Union / EEA, United Kingdom");
    assert!(regions.answered);
    assert_eq!(gdpr.decisions.len(), 1);
    assert_eq!(gdpr.decisions[0].by, "vera");

    let supplier = control("iso42001:A.10.3");
    let iso27001 = supplier
        .questions
        .iter()
        .find(|q| q.question_id == "iso27001")
        .unwrap();
    assert_eq!(
        (iso27001.answer.as_str(), iso27001.answered),
        ("not answered", false)
    );
    let names: Vec<&str> = evidence
        .controls
        .iter()
        .map(|c| c.control.as_str())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "controls in order");
    let skipped = evidence
        .controls
        .iter()
        .flat_map(|c| c.questions.iter())
        .find(|q| q.stage == "responsible-ai")
        .expect("responsible-AI questions name controls");
    assert_eq!(skipped.answer, "stage skipped");
}

#[test]
fn the_report_escapes_everything_and_needs_nothing_outside() {
    let workflow = shipped_workflow();
    let detail = detail(&workflow);
    let evidence = Evidence::build(&detail, &workflow.workflow, &head(), at(13));
    let html = pack::report_html(&evidence).unwrap();
    assert!(!html.contains("<script"), "no script, not even an answer's");
    assert!(
        html.contains("Support chat &#60;script&#62;alert(&#34;x&#34;)"),
        "the answer is shown, escaped"
    );
    assert!(html.contains("Tiering &#60;b&#62;confirmed&#60;/b&#62;"));
    assert!(html.contains("No SBOM &#38; no &#60;pentest&#62;"));
    assert!(html.contains("data_classes: public, internal; regions: eu"));
    for outside in ["http://", "https://", "src=", "<link", "@import"] {
        assert!(!html.contains(outside), "{outside} in the report");
    }
    for fact in [
        "anthropic/claude",
        "intake: personal data",
        workflow.digest.as_str(),
        "medium",
        &"ab".repeat(32),
        "2026-03-02T13:00:00Z",
    ] {
        assert!(html.contains(fact), "{fact}");
    }
    assert!(html.contains("iso42001:A.10.3"));
    assert!(html.contains("review.started"));
}

#[test]
fn csv_files_quote_what_needs_quoting() {
    let workflow = shipped_workflow();
    let detail = detail(&workflow);
    let evidence = Evidence::build(&detail, &workflow.workflow, &head(), at(13));
    let bytes = pack::answers_csv(&evidence).unwrap();
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    assert_eq!(reader.headers().unwrap(), pack::ANSWERS_COLUMNS.to_vec());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(&rows[0][2], "use_case");
    assert!(rows[0][4].contains("\"quoted\", and\na second line"));
    assert_eq!(&rows[0][6], "2026-03-02T10:00:00Z");

    let bytes = pack::controls_csv(&evidence).unwrap();
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let row = rows
        .iter()
        .find(|r| &r[0] == "gdpr:art44" && &r[2] == "processing_regions")
        .unwrap();
    assert_eq!(&row[1], "intake");
    assert_eq!(&row[5], "approve by vera at 2026-03-02T11:00:00Z");
}

#[test]
fn the_zip_holds_the_four_files_and_is_named_for_the_subject() {
    let workflow = shipped_workflow();
    let detail = detail(&workflow);
    let evidence = Evidence::build(&detail, &workflow.workflow, &head(), at(13));
    assert_eq!(
        pack::file_name(&evidence),
        "evidence-anthropic-claude-0190f3b4-5d6e-7f80-9a1b-2c3d4e5f6a7b.zip"
    );
    let bytes = pack::zip(&evidence, at(13)).unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut names: Vec<String> = archive
        .file_names()
        .map(|name| name.unwrap().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["answers.csv", "controls.csv", "report.html", "review.json"]
    );
    let mut json = String::new();
    archive
        .by_name("review.json")
        .unwrap()
        .read_to_string(&mut json)
        .unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed, serde_json::to_value(&detail).unwrap());
}

#[test]
fn a_provider_wide_review_is_named_for_the_provider_twice() {
    let workflow = shipped_workflow();
    let mut detail = detail(&workflow);
    detail.review.model = None;
    let evidence = Evidence::build(&detail, &workflow.workflow, &head(), at(13));
    assert_eq!(evidence.subject, "anthropic");
    assert_eq!(
        pack::file_name(&evidence),
        "evidence-anthropic-anthropic-0190f3b4-5d6e-7f80-9a1b-2c3d4e5f6a7b.zip"
    );
}
