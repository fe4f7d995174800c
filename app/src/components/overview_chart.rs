use leptos::prelude::*;
use leptos_router::components::A;

use super::{format, pause_button::TypePauseButton};
use crate::event_types::Pause;
use crate::model::{ExecutionFilter, State};
use crate::overview::{Bucket, Overview, Window};
use crate::query::list_href;
use crate::server::SetPaused;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 20.0;
const TOP: f64 = 8.0;
/// Bar colours by outcome (the same as the state badges).
// The bars' colours; the legend's swatches repeat them in style/main.css (the CSP allows no
// inline style attributes).
const SUCCEEDED: &str = "#12b76a";
const FAILED: &str = "#d92d20";
const OTHER: &str = "#98a2b3";

/// `MM-DD HH:00` (UTC) of a time in ms.
fn label(ms: i64) -> String {
    // `YYYY-MM-DD HH:MM:SS` → `MM-DD HH:MM`
    let t = format::utc(ms);
    t.get(5..16).unwrap_or(&t).to_string()
}

/// The overview on `/`: finished executions per interval by outcome as an SVG bar chart
/// (rendered on the server; each bar's numbers are in its `<title>`, shown on hover), the
/// backlog with the age of the oldest due execution, and the types that fail most, each with a
/// one-click Pause (or Resume of the pause that holds it: `pauses` follows `failing_types`).
#[component]
pub fn OverviewPanel(
    overview: Overview,
    pauses: Vec<Option<Pause>>,
    filter: ExecutionFilter,
    action: ServerAction<SetPaused>,
) -> impl IntoView {
    let Overview {
        window,
        now_ms,
        buckets,
        backlog,
        oldest_due_ms,
        failing_types,
    } = overview;
    let totals: i64 = buckets.iter().map(Bucket::total).sum();
    let failed: i64 = buckets.iter().map(|b| b.failed).sum();
    let switch = |w: Window| {
        let qs = filter.query_string(None);
        let sep = if qs.is_empty() { "" } else { "&" };
        format!("/?{qs}{sep}chart={}", w.as_str())
    };
    let window_links = [(Window::Day, "24 hours"), (Window::Week, "7 days")]
        .into_iter()
        .map(|(w, text)| {
            let current = (w == window).then_some("true");
            view! { <A href=switch(w) attr:aria-pressed=current attr:class="window">{text}</A> }
        })
        .collect_view();
    let oldest = oldest_due_ms.map(|ms| format!(", the oldest due {}", format::relative(ms, now_ms)));
    let back = list_href(&filter, None);
    let failing = if failing_types.is_empty() {
        view! { <p class="empty">"Nothing failed in this window."</p> }.into_any()
    } else {
        let items = failing_types
            .into_iter()
            .zip(pauses.into_iter().chain(std::iter::repeat(None)))
            .map(|((t, n), paused)| {
                let f = ExecutionFilter {
                    types: vec![t.clone()],
                    statuses: vec![State::Failed],
                    ..ExecutionFilter::default()
                };
                let held = paused
                    .as_ref()
                    .map(|p| view! { " " <span class="paused">{format!("paused ({})", p.pattern)}</span> });
                let (name, data) = (t.clone(), t.clone());
                view! {
                    <li data-type=data>
                        <A href=list_href(&f, None)>{name}</A> " " <span class="count">{n}</span> {held}
                        <TypePauseButton action event_type=t paused back=back.clone()/>
                    </li>
                }
            })
            .collect_view();
        view! { <ol class="failing-types">{items}</ol> }.into_any()
    };
    let caption = format!(
        "Finished executions per {} by outcome, last {} (UTC): {totals} in all, {failed} failed",
        if window == Window::Day { "hour" } else { "6 hours" },
        if window == Window::Day { "24 hours" } else { "7 days" },
    );
    view! {
        <section class="overview" aria-label="Overview">
            <figure class="outcomes">
                <figcaption>
                    {caption.clone()} " " <span class="windows">{window_links}</span>
                </figcaption>
                <BarChart buckets window caption/>
                <ul class="legend">
                    <li><i class="swatch succeeded"></i>"succeeded"</li>
                    <li><i class="swatch failed"></i>"failed"</li>
                    <li><i class="swatch other"></i>"cancelled or discarded"</li>
                </ul>
            </figure>
            <div class="backlog-and-failures">
                <h2>"Backlog"</h2>
                <p class="backlog">
                    <span class="count">{backlog}</span>
                    {format!(" due and not started{}", oldest.unwrap_or_default())}
                </p>
                <h2>"Failing most"</h2>
                {failing}
            </div>
        </section>
    }
}

#[component]
fn BarChart(buckets: Vec<Bucket>, window: Window, caption: String) -> impl IntoView {
    let max = buckets.iter().map(Bucket::total).max().unwrap_or(0).max(1);
    let n = buckets.len().max(1) as f64;
    let slot = (WIDTH - LEFT) / n;
    let plot = HEIGHT - BOTTOM - TOP;
    let scale = move |v: i64| v as f64 / max as f64 * plot;
    let every = if window == Window::Day { 6 } else { 4 };
    let bars = buckets
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            let x = LEFT + i as f64 * slot + 1.0;
            let w = (slot - 2.0).max(1.0);
            let mut y = HEIGHT - BOTTOM;
            let mut rect = |v: i64, fill: &'static str| {
                let h = scale(v);
                y -= h;
                (v > 0).then(|| view! { <rect x=format!("{x:.1}") y=format!("{y:.1}") width=format!("{w:.1}") height=format!("{h:.1}") fill=fill/> })
            };
            let parts = (rect(b.succeeded, SUCCEEDED), rect(b.failed, FAILED), rect(b.other, OTHER));
            let title = format!(
                "{} UTC: {} succeeded, {} failed, {} cancelled or discarded",
                label(b.start_ms),
                b.succeeded,
                b.failed,
                b.other
            );
            let tick = (i % every == 0).then(|| {
                view! { <text x=format!("{x:.1}") y=format!("{:.1}", HEIGHT - 5.0) class="tick">{label(b.start_ms)}</text> }
            });
            view! {
                <g class="bar" data-total=b.total().to_string()>
                    <title>{title}</title>
                    // A transparent full-height target so that the hover works on short bars too.
                    <rect x=format!("{x:.1}") y=format!("{TOP:.1}") width=format!("{w:.1}") height=format!("{plot:.1}") fill="transparent"/>
                    {parts}
                </g>
                {tick}
            }
        })
        .collect_view();
    let label_max = max.to_string();
    view! {
        <svg class="chart" viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label=caption font-size="10" fill="#667085">
            <line x1=LEFT.to_string() y1=(HEIGHT - BOTTOM).to_string() x2=WIDTH.to_string() y2=(HEIGHT - BOTTOM).to_string() stroke="#e4e7ec"/>
            <text x="2" y=(TOP + 8.0).to_string()>{label_max}</text>
            <text x="2" y=(HEIGHT - BOTTOM).to_string()>"0"</text>
            {bars}
        </svg>
    }
}
