//! The portfolio: reviews by state and tier, overdue ones, approvals
//! expiring in 30, 60 and 90 days with a chart of expiries per month (SVG
//! drawn here, no script), and the decisions of the last 30 days.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::page::{self, Layout, PageError, Viewer};
use super::words;
use crate::reviews::portfolio::{self, Portfolio};
use crate::workflow::Tier;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/portfolio").get(portfolio_page));
}

/// A row of the counts table: a state, then a count per tier and the total.
struct CountRow {
    state: String,
    href: String,
    cells: Vec<i64>,
    total: i64,
}

/// One bar of the chart, in the SVG's coordinates.
struct Bar {
    x: u32,
    y: u32,
    height: u32,
    label: String,
    value: usize,
    label_x: u32,
}

struct Decision {
    href: String,
    subject: String,
    state: String,
    badge: String,
    tier: String,
    when: String,
}

#[derive(Template)]
#[template(path = "console/portfolio.html")]
struct PortfolioPage {
    layout: Layout,
    tiers: Vec<&'static str>,
    rows: Vec<CountRow>,
    total: i64,
    overdue: i64,
    expiring: [usize; 3],
    bars: Vec<Bar>,
    chart_summary: String,
    recent: Vec<Decision>,
}

const CHART_HEIGHT: u32 = 160;
const BAR_WIDTH: u32 = 36;
const BAR_GAP: u32 = 16;

fn bars(months: &[portfolio::Month]) -> Vec<Bar> {
    let highest = months.iter().map(|m| m.expiring).max().unwrap_or(0).max(1);
    months
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let height = (m.expiring as u32 * CHART_HEIGHT) / highest as u32;
            let x = 40 + i as u32 * (BAR_WIDTH + BAR_GAP);
            Bar {
                x,
                y: 20 + CHART_HEIGHT - height,
                height,
                label: month_name(&m.month),
                value: m.expiring,
                label_x: x + BAR_WIDTH / 2,
            }
        })
        .collect()
}

fn month_name(month: &str) -> String {
    let names = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let number: usize = month.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
    let year = month.get(2..4).unwrap_or("");
    format!("{} {year}", names[(number.max(1) - 1).min(11)])
}

async fn portfolio_page(viewer: Viewer) -> Result<HttpResponse, PageError> {
    let state = viewer.state.clone();
    let now = state.clock.now();
    let data: Portfolio = state
        .store
        .run(move |conn| portfolio::portfolio(conn, now).map_err(crate::db::StoreError::from))
        .await?;
    let states = [
        "in_progress",
        "approved",
        "approved_with_conditions",
        "rejected",
        "withdrawn",
    ];
    let rows: Vec<CountRow> = states
        .iter()
        .map(|state| {
            let cells: Vec<i64> = Tier::ALL
                .iter()
                .map(|tier| {
                    data.counts
                        .get(&((*state).to_owned(), *tier))
                        .copied()
                        .unwrap_or(0)
                })
                .collect();
            CountRow {
                state: words::label(state),
                href: format!("/reviews?state={state}"),
                total: cells.iter().sum(),
                cells,
            }
        })
        .collect();
    let total = rows.iter().map(|r| r.total).sum();
    let summary = data
        .by_month
        .iter()
        .map(|m| format!("{}: {}", month_name(&m.month), m.expiring))
        .collect::<Vec<_>>()
        .join(", ");
    let recent = data
        .recent
        .iter()
        .map(|d| Decision {
            href: format!("/reviews/{}", d.id),
            subject: match &d.model {
                Some(m) => format!("{}/{m}", d.provider),
                None => d.provider.to_string(),
            },
            state: words::label(d.state.as_str()),
            badge: d.state.as_str().to_owned(),
            tier: d.tier.as_str().to_owned(),
            when: d
                .decided_at
                .map(|at| words::day(at.and_utc()))
                .unwrap_or_default(),
        })
        .collect();
    Ok(page::html(
        StatusCode::OK,
        &PortfolioPage {
            layout: viewer.layout("Portfolio", "/portfolio"),
            tiers: Tier::ALL.iter().map(|t| t.as_str()).collect(),
            rows,
            total,
            overdue: data.overdue,
            expiring: data.expiring,
            bars: bars(&data.by_month),
            chart_summary: format!("Approvals expiring per month over the next year: {summary}."),
            recent,
        },
    ))
}
