use leptos::prelude::*;
use leptos_router::components::{A, Form};

use super::type_filter::TypeFilter;
use crate::model::{ExecutionFilter, Origin, State};
use crate::view::Facets;

/// The filter as a GET form: its fields are the REST API's query parameters, so the result
/// is a URL that can be bookmarked. Without JavaScript it is a plain form submission.
#[component]
pub fn FilterForm(filter: ExecutionFilter, facets: Facets) -> impl IntoView {
    // Selected values stay offered even when no execution has them any more.
    let mut types = facets.types;
    types.extend(filter.types.iter().cloned());
    types.sort();
    types.dedup();
    let mut versions = facets.api_versions;
    versions.extend(filter.api_version.iter().cloned());
    versions.sort();
    versions.dedup();

    let livemode = filter.livemode;
    let version_options = versions
        .into_iter()
        .map(|v| {
            let selected = filter.api_version.as_deref() == Some(v.as_str());
            view! { <option value=v.clone() selected=selected>{v.clone()}</option> }
        })
        .collect_view();
    let status_boxes = checkboxes(
        "status",
        State::ALL.map(State::as_str),
        filter.statuses.iter().map(|s| s.as_str()).collect(),
    );
    let origin_boxes = checkboxes(
        "origin",
        Origin::ALL.map(Origin::as_str),
        filter.origins.iter().map(|o| o.as_str()).collect(),
    );
    let q = filter.q.clone().unwrap_or_default();
    let account = filter.account.clone().unwrap_or_default();
    let from = filter.from.as_deref().map(datetime_local).unwrap_or_default();
    let to = filter.to.as_deref().map(datetime_local).unwrap_or_default();

    view! {
        <Form method="GET" action="/" attr:class="filters" attr:aria-label="Filter executions">
            <label>
                "Mode "
                <select name="livemode">
                    <option value="" selected=livemode.is_none()>"all"</option>
                    <option value="true" selected=livemode == Some(true)>"live"</option>
                    <option value="false" selected=livemode == Some(false)>"test"</option>
                </select>
            </label>
            <TypeFilter types counts=facets.type_counts selected=filter.types.clone()/>
            <label>
                "API version "
                <select name="api_version">
                    <option value="" selected=filter.api_version.is_none()>"all"</option>
                    {version_options}
                </select>
            </label>
            <label>
                "Account "
                <input type="search" name="account" value=account placeholder="acct_… (Connect)"/>
            </label>
            <fieldset class="statuses">
                <legend>"Status"</legend>
                {status_boxes}
            </fieldset>
            <fieldset class="origins">
                <legend>"Origin"</legend>
                {origin_boxes}
            </fieldset>
            <label>
                "Search "
                <input type="search" name="q" value=q placeholder="execution, event or object id"/>
            </label>
            <label>"Created from (UTC) " <input type="datetime-local" name="from" value=from/></label>
            <label>"to " <input type="datetime-local" name="to" value=to/></label>
            <button type="submit" class="apply">"Apply"</button>
            <A href="/" attr:class="clear">"Clear"</A>
        </Form>
    }
}

/// One labelled checkbox per value of a repeatable filter parameter.
fn checkboxes<const N: usize>(
    name: &'static str,
    values: [&'static str; N],
    selected: Vec<&'static str>,
) -> impl IntoView {
    values
        .into_iter()
        .map(|v| {
            let checked = selected.contains(&v);
            view! {
                <label class="check">
                    <input type="checkbox" name=name value=v checked=checked/>
                    {v}
                </label>
            }
        })
        .collect_view()
}

/// A bound as a `datetime-local` input shows it (`YYYY-MM-DDTHH:MM`); other forms as typed.
fn datetime_local(s: &str) -> String {
    match s.get(..16) {
        Some(head) if s.as_bytes().get(10) == Some(&b'T') => head.to_string(),
        _ => s.to_string(),
    }
}
