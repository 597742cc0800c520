//! The TOML file format of workflows (documented in `workflows/README.md`):
//! parsing with source positions, and every check, reported as
//! `file:line:col: message`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::definition::*;
use crate::auth::Role;
use crate::ids::{StageKey, is_slug};

/// One problem in a workflow file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkflow {
    id: Spanned<String>,
    version: Spanned<i64>,
    title: String,
    description: Option<String>,
    default_tier: Option<Spanned<String>>,
    #[serde(default)]
    approve_with_unowned_findings: bool,
    declared_use: Option<Spanned<RawDeclaredUse>>,
    tiers: Spanned<BTreeMap<Spanned<String>, RawTierPolicy>>,
    stages: Spanned<Vec<RawStage>>,
    #[serde(default)]
    questionnaires: BTreeMap<Spanned<String>, RawQuestionnaire>,
}

/// Which answers declare the intended use: `stage.question` of a
/// multiple-choice question each.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeclaredUse {
    data_classes: Option<String>,
    regions: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTierPolicy {
    re_review_every: Spanned<String>,
    re_review_lead: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    key: Spanned<String>,
    title: String,
    #[serde(default)]
    after: Vec<Spanned<String>>,
    questionnaire: Spanned<String>,
    answered_by: Spanned<String>,
    approver_role: Spanned<String>,
    approvals: Spanned<RawApprovals>,
    tiers: Option<Vec<Spanned<String>>>,
    sla: Spanned<String>,
    #[serde(default)]
    escalation: Vec<RawEscalation>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawApprovals {
    Every(i64),
    PerTier(BTreeMap<String, i64>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEscalation {
    after: Spanned<String>,
    notify: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuestionnaire {
    title: String,
    #[serde(default)]
    sections: Vec<RawSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSection {
    title: String,
    #[serde(default)]
    questions: Vec<RawQuestion>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuestion {
    id: Spanned<String>,
    text: String,
    help: Option<String>,
    #[serde(rename = "type")]
    kind: Spanned<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    controls: Vec<Spanned<String>>,
    options: Option<Spanned<Vec<Spanned<RawOption>>>>,
    max_length: Option<Spanned<i64>>,
    min: Option<Spanned<f64>>,
    max: Option<Spanned<f64>>,
    shown_when: Option<Spanned<RawShownWhen>>,
    #[serde(default)]
    risk: Vec<Spanned<RawRisk>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOption {
    value: String,
    label: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShownWhen {
    question: Spanned<String>,
    equals: Option<toml::Value>,
    any_of: Option<Vec<toml::Value>>,
    above: Option<f64>,
    below: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    equals: Option<toml::Value>,
    any_of: Option<Vec<toml::Value>>,
    above: Option<f64>,
    below: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRisk {
    when: Spanned<RawCondition>,
    min_tier: Option<Spanned<String>>,
    finding: Option<RawFinding>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFinding {
    severity: Spanned<String>,
    text: String,
}

/// Collects problems with their positions in one file.
struct Checker<'a> {
    file: &'a str,
    source: &'a str,
    problems: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn report(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, col) = line_col(self.source, span.start);
        self.problems.push(Diagnostic {
            file: self.file.to_owned(),
            line,
            col,
            message: message.into(),
        });
    }

    fn duration(&mut self, text: &Spanned<String>, what: &str) -> Option<Span> {
        match crate::duration::parse(text.get_ref()) {
            Ok(delta) => Some(Span {
                text: text.get_ref().clone(),
                delta,
            }),
            Err(_) => {
                self.report(
                    text.span(),
                    format!("bad duration `{}` for {what}: write a number and a unit, e.g. \"10d\", \"48h\", \"2w\"", text.get_ref()),
                );
                None
            }
        }
    }

    fn tier(&mut self, text: &Spanned<String>) -> Option<Tier> {
        let tier = Tier::parse(text.get_ref());
        if tier.is_none() {
            self.report(
                text.span(),
                format!(
                    "unknown tier `{}` (tiers: low, medium, high, critical)",
                    text.get_ref()
                ),
            );
        }
        tier
    }

    fn role(&mut self, text: &Spanned<String>, what: &str) -> Option<Role> {
        match Role::named(text.get_ref()) {
            Ok(Role::Integrator) | Ok(Role::Admin) => {
                self.report(
                    text.span(),
                    format!("{what} cannot be `{}`", text.get_ref()),
                );
                None
            }
            Ok(role) => Some(role),
            Err(message) => {
                self.report(text.span(), format!("{what}: {message}"));
                None
            }
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, source[line_start..offset].chars().count() + 1)
}

fn to_json(value: &toml::Value) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// Parses and checks one workflow file. `file` names it in messages; when
/// `expected_id` is given, the workflow's `id` must equal it.
pub fn parse(
    file: &str,
    source: &str,
    expected_id: Option<&str>,
) -> Result<Workflow, Vec<Diagnostic>> {
    let mut checker = Checker {
        file,
        source,
        problems: Vec::new(),
    };
    let raw: RawWorkflow = match toml::from_str(source) {
        Ok(raw) => raw,
        Err(error) => {
            let span = error.span().unwrap_or(0..0);
            checker.report(span, error.message().trim().replace('\n', " "));
            return Err(checker.problems);
        }
    };
    let workflow = check(&mut checker, raw, expected_id);
    match workflow {
        Some(workflow) if checker.problems.is_empty() => Ok(workflow),
        _ => Err(checker.problems),
    }
}

fn check(c: &mut Checker<'_>, raw: RawWorkflow, expected_id: Option<&str>) -> Option<Workflow> {
    if !is_slug(raw.id.get_ref()) {
        c.report(
            raw.id.span(),
            format!(
                "workflow id `{}` must be a slug (lower-case letters, digits, hyphens)",
                raw.id.get_ref()
            ),
        );
    }
    if let Some(expected) = expected_id
        && raw.id.get_ref() != expected
    {
        c.report(
            raw.id.span(),
            format!(
                "workflow id `{}` does not match the file name `{expected}.toml`",
                raw.id.get_ref()
            ),
        );
    }
    if *raw.version.get_ref() < 1 {
        c.report(raw.version.span(), "version must be at least 1");
    }
    let default_tier = match &raw.default_tier {
        Some(text) => c.tier(text),
        None => Some(Tier::Low),
    };

    let mut tiers = BTreeMap::new();
    for (name, policy) in raw.tiers.get_ref() {
        let Some(tier) = c.tier(name) else { continue };
        let every = c.duration(&policy.re_review_every, "re_review_every");
        let lead = c.duration(&policy.re_review_lead, "re_review_lead");
        if let (Some(every), Some(lead)) = (every, lead) {
            if every.delta <= chrono::TimeDelta::zero() {
                c.report(
                    policy.re_review_every.span(),
                    "re_review_every must be longer than zero",
                );
            } else if lead.delta >= every.delta {
                c.report(
                    policy.re_review_lead.span(),
                    "re_review_lead must be shorter than re_review_every",
                );
            }
            tiers.insert(
                tier,
                TierPolicy {
                    re_review_every: every,
                    re_review_lead: lead,
                },
            );
        }
    }
    for &tier in Tier::ALL {
        if !raw
            .tiers
            .get_ref()
            .keys()
            .any(|k| k.get_ref() == tier.as_str())
        {
            c.report(
                raw.tiers.span(),
                format!("tier `{tier}` has no re-review policy"),
            );
        }
    }

    // Questionnaires, and question ids unique across the workflow.
    let mut questionnaires = BTreeMap::new();
    let mut seen_questions: HashMap<String, Range<usize>> = HashMap::new();
    for (key, questionnaire) in raw.questionnaires {
        let checked = check_questionnaire(c, key.get_ref(), questionnaire, &mut seen_questions);
        questionnaires.insert(key.into_inner(), checked);
    }

    // Stages.
    let stage_keys: BTreeSet<String> = raw
        .stages
        .get_ref()
        .iter()
        .map(|s| s.key.get_ref().clone())
        .collect();
    if raw.stages.get_ref().is_empty() {
        c.report(raw.stages.span(), "a workflow needs at least one stage");
    }
    let mut seen_stages = BTreeSet::new();
    let mut stages = Vec::new();
    for stage in raw.stages.get_ref() {
        let key = stage.key.get_ref();
        if !is_slug(key) {
            c.report(
                stage.key.span(),
                format!("stage key `{key}` must be a slug"),
            );
        }
        if !seen_stages.insert(key.clone()) {
            c.report(stage.key.span(), format!("duplicate stage `{key}`"));
        }
        for dependency in &stage.after {
            if dependency.get_ref() == key {
                c.report(
                    dependency.span(),
                    format!("stage `{key}` cannot come after itself"),
                );
            } else if !stage_keys.contains(dependency.get_ref()) {
                c.report(
                    dependency.span(),
                    format!("unknown stage `{}` in `after`", dependency.get_ref()),
                );
            }
        }
        let questionnaire = match questionnaires.get(stage.questionnaire.get_ref()) {
            Some(q) => Some(q),
            None => {
                c.report(
                    stage.questionnaire.span(),
                    format!("unknown questionnaire `{}`", stage.questionnaire.get_ref()),
                );
                None
            }
        };
        let answered_by = match stage.answered_by.get_ref().as_str() {
            "supplier" => Some(Answerer::Supplier),
            _ => c
                .role(&stage.answered_by, "answered_by")
                .map(Answerer::Role),
        };
        let approver_role = c.role(&stage.approver_role, "approver_role");
        let mut approvals = BTreeMap::new();
        match stage.approvals.get_ref() {
            RawApprovals::Every(n) => {
                if *n < 1 {
                    c.report(
                        stage.approvals.span(),
                        format!("stage `{key}` needs at least 1 approval, not {n}"),
                    );
                }
                for &tier in Tier::ALL {
                    approvals.insert(tier, (*n).max(1) as u32);
                }
            }
            RawApprovals::PerTier(map) => {
                for (name, n) in map {
                    match Tier::parse(name) {
                        None => c.report(
                            stage.approvals.span(),
                            format!("unknown tier `{name}` in approvals"),
                        ),
                        Some(tier) => {
                            if *n < 1 {
                                c.report(stage.approvals.span(), format!("tier `{name}` of stage `{key}` needs at least 1 approval, not {n}"));
                            }
                            approvals.insert(tier, (*n).max(1) as u32);
                        }
                    }
                }
                for &tier in Tier::ALL {
                    if !map.contains_key(tier.as_str()) {
                        c.report(
                            stage.approvals.span(),
                            format!(
                                "approvals of stage `{key}` do not say how many tier `{tier}` needs"
                            ),
                        );
                    }
                }
            }
        }
        let tiers: BTreeSet<Tier> = match &stage.tiers {
            None => Tier::ALL.iter().copied().collect(),
            Some(list) => {
                if list.is_empty() {
                    c.report(
                        stage.key.span(),
                        format!("stage `{key}` applies to no tier"),
                    );
                }
                list.iter().filter_map(|t| c.tier(t)).collect()
            }
        };
        let sla = c.duration(&stage.sla, "sla");
        if let Some(sla) = &sla
            && sla.delta <= chrono::TimeDelta::zero()
        {
            c.report(stage.sla.span(), "sla must be longer than zero");
        }
        let mut escalation = Vec::new();
        let mut previous = chrono::TimeDelta::zero();
        for step in &stage.escalation {
            let after = c.duration(&step.after, "escalation `after`");
            let notify = parse_notify(c, &step.notify);
            if let Some(after) = &after {
                if after.delta < previous {
                    c.report(
                        step.after.span(),
                        "escalation steps must be in order of `after`",
                    );
                }
                previous = after.delta;
            }
            if let (Some(after), Some(notify)) = (after, notify) {
                escalation.push(EscalationStep { after, notify });
            }
        }
        if let (Some(questionnaire), Some(answered_by), Some(approver_role), Some(sla)) =
            (questionnaire, answered_by, approver_role, sla)
        {
            stages.push(Stage {
                // Checked above: a diagnostic, and no workflow, when not a slug.
                key: StageKey::trusted(key.clone()),
                title: stage.title.clone(),
                after: stage
                    .after
                    .iter()
                    .map(|s| StageKey::trusted(s.get_ref().clone()))
                    .collect(),
                answered_by,
                approver_role,
                approvals,
                tiers,
                sla,
                escalation,
                questionnaire: questionnaire.clone(),
            });
        }
    }
    report_cycles(c, raw.stages.get_ref());

    let declared_use = raw.declared_use.as_ref().map(|declared| {
        let span = declared.span();
        let declared = declared.get_ref();
        let mut reference = |what: &str, text: &Option<String>| -> Option<AnswerRef> {
            let text = text.as_ref()?;
            let found = text.split_once('.').and_then(|(stage, question)| {
                let stage = stages.iter().find(|s| s.key == stage)?;
                stage
                    .questionnaire
                    .questions()
                    .any(|q| q.id == question)
                    .then(|| AnswerRef {
                        stage: stage.key.clone(),
                        question: question.to_owned(),
                    })
            });
            if found.is_none() {
                c.report(
                    span.clone(),
                    format!("declared_use.{what} `{text}` is not `stage.question` of a question in this workflow"),
                );
            }
            found
        };
        DeclaredUse {
            data_classes: reference("data_classes", &declared.data_classes),
            regions: reference("regions", &declared.regions),
        }
    });

    Some(Workflow {
        id: raw.id.into_inner(),
        version: raw.version.into_inner(),
        title: raw.title,
        description: raw.description,
        default_tier: default_tier?,
        approve_with_unowned_findings: raw.approve_with_unowned_findings,
        declared_use,
        tiers,
        stages,
    })
}

fn parse_notify(c: &mut Checker<'_>, text: &Spanned<String>) -> Option<Notify> {
    let value = text.get_ref();
    if value == "assignee" {
        return Some(Notify::Assignee);
    }
    if let Some(role) = value.strip_prefix("role:") {
        return match Role::named(role) {
            Ok(role) => Some(Notify::Role(role)),
            Err(message) => {
                c.report(text.span(), format!("notify: {message}"));
                None
            }
        };
    }
    if let Some(email) = value.strip_prefix("email:") {
        if validator::ValidateEmail::validate_email(&email) {
            return Some(Notify::Email(email.to_owned()));
        }
        c.report(
            text.span(),
            format!("notify: `{email}` is not an email address"),
        );
        return None;
    }
    c.report(
        text.span(),
        format!("notify `{value}` must be `assignee`, `role:<role>` or `email:<address>`"),
    );
    None
}

/// Reports each dependency cycle once, at the first stage on it.
fn report_cycles(c: &mut Checker<'_>, stages: &[RawStage]) {
    let index: HashMap<&str, &RawStage> = stages
        .iter()
        .map(|s| (s.key.get_ref().as_str(), s))
        .collect();
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    let mut marks: HashMap<&str, Mark> = HashMap::new();
    fn visit<'s>(
        key: &'s str,
        index: &HashMap<&'s str, &'s RawStage>,
        marks: &mut HashMap<&'s str, Mark>,
        path: &mut Vec<&'s str>,
        cycles: &mut Vec<Vec<&'s str>>,
    ) {
        match marks.get(key) {
            Some(Mark::Done) => return,
            Some(Mark::Visiting) => {
                let start = path.iter().position(|k| *k == key).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(key);
                cycles.push(cycle);
                return;
            }
            None => {}
        }
        let Some(stage) = index.get(key) else { return };
        marks.insert(key, Mark::Visiting);
        path.push(key);
        for dependency in &stage.after {
            if dependency.get_ref() != key {
                visit(dependency.get_ref(), index, marks, path, cycles);
            }
        }
        path.pop();
        marks.insert(key, Mark::Done);
    }
    let mut cycles = Vec::new();
    for stage in stages {
        visit(
            stage.key.get_ref(),
            &index,
            &mut marks,
            &mut Vec::new(),
            &mut cycles,
        );
    }
    for cycle in cycles {
        if let Some(stage) = index.get(cycle[0]) {
            c.report(
                stage.key.span(),
                format!("dependency cycle: {}", cycle.join(" → ")),
            );
        }
    }
}

fn check_questionnaire(
    c: &mut Checker<'_>,
    key: &str,
    raw: RawQuestionnaire,
    seen: &mut HashMap<String, Range<usize>>,
) -> Questionnaire {
    let mut sections = Vec::new();
    // Questions of this questionnaire so far: `shown_when` may only look back.
    let mut earlier: Vec<Question> = Vec::new();
    for section in raw.sections {
        let mut questions = Vec::new();
        for question in section.questions {
            if let Some(checked) = check_question(c, question, &earlier, seen) {
                earlier.push(checked.clone());
                questions.push(checked);
            }
        }
        sections.push(Section {
            title: section.title,
            questions,
        });
    }
    Questionnaire {
        key: key.to_owned(),
        title: raw.title,
        sections,
    }
}

fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn is_control(text: &str) -> bool {
    match text.split_once(':') {
        Some((scheme, id)) => {
            !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !id.is_empty()
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-()".contains(&b))
        }
        None => false,
    }
}

fn check_question(
    c: &mut Checker<'_>,
    raw: RawQuestion,
    earlier: &[Question],
    seen: &mut HashMap<String, Range<usize>>,
) -> Option<Question> {
    let id = raw.id.get_ref().clone();
    if !is_identifier(&id) {
        c.report(
            raw.id.span(),
            format!("question id `{id}` must be 1 to 64 of [a-z0-9_]"),
        );
    }
    if seen.insert(id.clone(), raw.id.span()).is_some() {
        c.report(raw.id.span(), format!("duplicate question id `{id}`"));
    }
    let kind = QuestionKind::parse(raw.kind.get_ref());
    if kind.is_none() {
        let known: Vec<_> = QuestionKind::ALL.iter().map(|k| k.as_str()).collect();
        c.report(
            raw.kind.span(),
            format!(
                "unknown question type `{}` (types: {})",
                raw.kind.get_ref(),
                known.join(", ")
            ),
        );
    }
    for control in &raw.controls {
        if !is_control(control.get_ref()) {
            c.report(
                control.span(),
                format!(
                    "control `{}` must be written scheme:id, e.g. iso42001:A.10.3",
                    control.get_ref()
                ),
            );
        }
    }
    let mut options = Vec::new();
    match (&raw.options, kind) {
        (Some(list), Some(k)) if k.has_options() => {
            if list.get_ref().is_empty() {
                c.report(
                    list.span(),
                    format!("question `{id}` needs at least one option"),
                );
            }
            let mut values = BTreeSet::new();
            for option in list.get_ref() {
                let value = &option.get_ref().value;
                if !is_identifier(value) {
                    c.report(
                        option.span(),
                        format!("option value `{value}` must be 1 to 64 of [a-z0-9_]"),
                    );
                }
                if !values.insert(value.clone()) {
                    c.report(
                        option.span(),
                        format!("duplicate option `{value}` in question `{id}`"),
                    );
                }
                options.push(ChoiceOption {
                    value: value.clone(),
                    label: option.get_ref().label.clone(),
                });
            }
        }
        (Some(list), Some(_)) => c.report(
            list.span(),
            format!("question `{id}` is not a choice: remove `options`"),
        ),
        (None, Some(k)) if k.has_options() => c.report(
            raw.kind.span(),
            format!("question `{id}` of type `{}` needs `options`", k.as_str()),
        ),
        _ => {}
    }
    let max_length = match (&raw.max_length, kind) {
        (Some(n), Some(QuestionKind::Text)) if *n.get_ref() >= 1 => Some(*n.get_ref() as usize),
        (Some(n), Some(QuestionKind::Text)) => {
            c.report(n.span(), "max_length must be at least 1");
            None
        }
        (Some(n), _) => {
            c.report(n.span(), "max_length is only for `text` questions");
            None
        }
        (None, Some(QuestionKind::Text)) => Some(super::answers::DEFAULT_TEXT_LIMIT),
        (None, _) => None,
    };
    for bound in [&raw.min, &raw.max].into_iter().flatten() {
        if kind != Some(QuestionKind::Number) {
            c.report(bound.span(), "min and max are only for `number` questions");
        }
    }
    if let (Some(min), Some(max)) = (&raw.min, &raw.max)
        && min.get_ref() > max.get_ref()
    {
        c.report(max.span(), "max must not be below min");
    }
    let kind = kind?;
    let mut question = Question {
        id,
        text: raw.text,
        help: raw.help,
        kind,
        options,
        max_length,
        min: raw.min.map(Spanned::into_inner),
        max: raw.max.map(Spanned::into_inner),
        required: raw.required,
        shown_when: None,
        controls: raw.controls.into_iter().map(Spanned::into_inner).collect(),
        risk: Vec::new(),
    };
    if let Some(shown) = raw.shown_when {
        let span = shown.span();
        let shown = shown.into_inner();
        let target = shown.question.get_ref();
        match earlier.iter().find(|q| &q.id == target) {
            None => c.report(shown.question.span(), format!("shown_when names unknown question `{target}` (it must come earlier in the same questionnaire)")),
            Some(target_question) => {
                let raw_condition = RawCondition { equals: shown.equals, any_of: shown.any_of, above: shown.above, below: shown.below };
                if let Some(condition) = check_condition(c, span, raw_condition, target_question) {
                    question.shown_when = Some(ShownWhen { question: target.clone(), condition });
                }
            }
        }
    }
    for rule in raw.risk {
        let span = rule.span();
        let rule = rule.into_inner();
        let when_span = rule.when.span();
        let condition = check_condition(c, when_span, rule.when.into_inner(), &question);
        let min_tier = rule.min_tier.as_ref().and_then(|t| c.tier(t));
        let finding = rule
            .finding
            .and_then(|f| match Severity::parse(f.severity.get_ref()) {
                Some(severity) => Some(FindingTemplate {
                    severity,
                    text: f.text,
                }),
                None => {
                    c.report(
                        f.severity.span(),
                        format!(
                            "unknown severity `{}` (low, medium, high, critical)",
                            f.severity.get_ref()
                        ),
                    );
                    None
                }
            });
        if rule.min_tier.is_none() && finding.is_none() {
            c.report(span, "a risk rule needs `min_tier`, `finding`, or both");
        }
        if let Some(when) = condition {
            question.risk.push(RiskRule {
                when,
                min_tier,
                finding,
            });
        }
    }
    Some(question)
}

/// Checks that a condition has one test, and that it names answers `target` can have.
fn check_condition(
    c: &mut Checker<'_>,
    span: Range<usize>,
    raw: RawCondition,
    target: &Question,
) -> Option<Condition> {
    let given = [
        raw.equals.is_some(),
        raw.any_of.is_some(),
        raw.above.is_some(),
        raw.below.is_some(),
    ]
    .iter()
    .filter(|g| **g)
    .count();
    if given != 1 {
        c.report(
            span,
            "a condition needs exactly one of `equals`, `any_of`, `above`, `below`",
        );
        return None;
    }
    let condition = if let Some(value) = raw.equals {
        Condition::Equals(to_json(&value))
    } else if let Some(values) = raw.any_of {
        Condition::AnyOf(values.iter().map(to_json).collect())
    } else if let Some(limit) = raw.above {
        Condition::Above(limit)
    } else {
        Condition::Below(raw.below.unwrap_or_default())
    };
    let values: Vec<&serde_json::Value> = match &condition {
        Condition::Equals(v) => vec![v],
        Condition::AnyOf(vs) => vs.iter().collect(),
        Condition::Above(_) | Condition::Below(_) => {
            if target.kind != QuestionKind::Number {
                c.report(
                    span.clone(),
                    format!(
                        "`above`/`below` only test `number` questions; `{}` is `{}`",
                        target.id,
                        target.kind.as_str()
                    ),
                );
                return None;
            }
            Vec::new()
        }
    };
    for value in values {
        let ok = match target.kind {
            QuestionKind::YesNo => value.is_boolean(),
            QuestionKind::SingleChoice | QuestionKind::MultiChoice => value
                .as_str()
                .is_some_and(|v| target.options.iter().any(|o| o.value == v)),
            QuestionKind::Number => value.is_number(),
            QuestionKind::Text | QuestionKind::Date | QuestionKind::Url => value.is_string(),
        };
        if !ok {
            let message = if target.kind.has_options() {
                format!(
                    "condition names unknown option {value} of question `{}`",
                    target.id
                )
            } else {
                format!(
                    "condition value {value} is not a possible answer of `{}` question `{}`",
                    target.kind.as_str(),
                    target.id
                )
            };
            c.report(span.clone(), message);
            return None;
        }
    }
    Some(condition)
}

#[cfg(test)]
mod tests;
