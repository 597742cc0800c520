//! The evidence pack's files, and the zip that holds them:
//!
//! - `report.html`: for people; one self-contained page (inline style, no
//!   scripts, no external assets), every value escaped by the template;
//! - `review.json`: the review exactly as `GET /v1/reviews/{id}` returns it;
//! - `answers.csv`: one row per answer;
//! - `controls.csv`: one row per control and question that evidences it.

use std::io::{Cursor, Write};

use askama::Template;
use chrono::{DateTime, Datelike, Timelike, Utc};
use zip::CompressionMethod;
use zip::write::{SimpleFileOptions, ZipWriter};

use super::Evidence;

/// Why a pack could not be made. None of these is the client's fault.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("rendering the report: {0}")]
    Report(#[from] askama::Error),
    #[error("writing CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("writing review.json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("writing the zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("writing the zip: {0}")]
    Io(#[from] std::io::Error),
}

/// The page an auditor reads.
#[derive(Template)]
#[template(path = "evidence/report.html")]
struct Report<'e, 'a> {
    evidence: &'e Evidence<'a>,
}

/// `report.html`.
pub fn report_html(evidence: &Evidence<'_>) -> Result<String, PackError> {
    Ok(Report { evidence }.render()?)
}

/// `review.json`: the review's detail, pretty-printed.
pub fn review_json(evidence: &Evidence<'_>) -> Result<Vec<u8>, PackError> {
    let mut bytes = serde_json::to_vec_pretty(evidence.detail)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// A cell a spreadsheet program will not run: one that starts with `=`,
/// `+`, `-`, `@`, a tab or a carriage return is a formula to Excel and its
/// kin, so it gets a leading `'` (OWASP's advice on CSV injection). Answers
/// come from suppliers; this is where they meet an auditor's spreadsheet.
fn inert(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

fn csv_bytes(
    header: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) -> Result<Vec<u8>, PackError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(header)?;
    for row in rows {
        writer.write_record(row.iter().map(|cell| inert(cell).into_owned()))?;
    }
    writer
        .into_inner()
        .map_err(|e| PackError::Io(e.into_error()))
}

/// The header of `answers.csv`.
pub const ANSWERS_COLUMNS: [&str; 7] = [
    "stage",
    "section",
    "question_id",
    "question",
    "answer",
    "answered_by",
    "updated_at",
];

/// `answers.csv`: stage, section, question_id, question, answer, answered_by, updated_at.
pub fn answers_csv(evidence: &Evidence<'_>) -> Result<Vec<u8>, PackError> {
    csv_bytes(
        &ANSWERS_COLUMNS,
        evidence.answers().map(|a| {
            vec![
                a.stage.clone(),
                a.section.clone(),
                a.question_id.clone(),
                a.question.clone(),
                a.answer.clone(),
                a.answered_by.clone(),
                a.updated_at.clone(),
            ]
        }),
    )
}

/// `controls.csv`: one row per control and question, with the decisions of
/// the question's stage (`approve by sam at …`, separated by `; `).
pub fn controls_csv(evidence: &Evidence<'_>) -> Result<Vec<u8>, PackError> {
    let rows = evidence.controls.iter().flat_map(|control| {
        control.questions.iter().map(|question| {
            let decisions: Vec<String> = control
                .decisions
                .iter()
                .filter(|d| d.stage == question.stage)
                .map(|d| d.brief())
                .collect();
            vec![
                control.control.clone(),
                question.stage.clone(),
                question.question_id.clone(),
                question.question.clone(),
                question.answer.clone(),
                decisions.join("; "),
            ]
        })
    });
    csv_bytes(
        &[
            "control",
            "stage",
            "question_id",
            "question",
            "answer",
            "stage_decisions",
        ],
        rows,
    )
}

/// The zip's timestamp for its files: when the pack was made (zip times have
/// no zone; they are UTC here, and the 1980 epoch when out of range).
fn zip_time(at: DateTime<Utc>) -> zip::DateTime {
    let part = |n: u32| u8::try_from(n).unwrap_or(0);
    u16::try_from(at.year())
        .ok()
        .and_then(|year| {
            zip::DateTime::from_date_and_time(
                year,
                part(at.month()),
                part(at.day()),
                part(at.hour()),
                part(at.minute()),
                part(at.second()),
            )
            .ok()
        })
        .unwrap_or_default()
}

/// The zip of every file of the pack.
pub fn zip(evidence: &Evidence<'_>, now: DateTime<Utc>) -> Result<Vec<u8>, PackError> {
    let files: [(&str, Vec<u8>); 4] = [
        ("report.html", report_html(evidence)?.into_bytes()),
        ("review.json", review_json(evidence)?),
        ("answers.csv", answers_csv(evidence)?),
        ("controls.csv", controls_csv(evidence)?),
    ];
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(zip_time(now))
        .unix_permissions(0o644);
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in files {
        writer.start_file(name, options)?;
        writer.write_all(&bytes)?;
    }
    Ok(writer.finish()?.into_inner())
}

/// The pack's file name: `evidence-<provider>-<model, or the provider for a
/// provider-wide review>-<review id>.zip` (slugs and a UUID: safe as is).
pub fn file_name(evidence: &Evidence<'_>) -> String {
    let review = &evidence.detail.review;
    let model = review.model.as_deref().unwrap_or(&review.provider);
    format!("evidence-{}-{model}-{}.zip", review.provider, review.id)
}
