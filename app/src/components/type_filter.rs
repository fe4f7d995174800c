use std::collections::BTreeMap;

use leptos::prelude::*;

use crate::view::TypeCount;

/// Few enough types to show every group open.
const ALL_OPEN_UP_TO: usize = 30;

/// What an event type belongs to: everything before its last dot
/// (`customer.subscription.updated` → `customer.subscription`).
pub fn resource(event_type: &str) -> &str {
    event_type.rsplit_once('.').map_or(event_type, |(r, _)| r)
}

fn shown_count(count: Option<&TypeCount>) -> String {
    match count {
        Some(c) if c.capped => format!("{}+", c.count),
        Some(c) => c.count.to_string(),
        None => "0".into(),
    }
}

/// The event-type checkboxes grouped by resource, each with its count, in a bounded box.
/// Groups are `<details>` (keyboard-operable without JavaScript); with JavaScript a search box
/// narrows them as one types. Selected types stay visible in open groups.
#[component]
pub fn TypeFilter(types: Vec<String>, counts: Vec<TypeCount>, selected: Vec<String>) -> impl IntoView {
    let counts: BTreeMap<String, TypeCount> = counts.into_iter().map(|c| (c.event_type.clone(), c)).collect();
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in &types {
        groups.entry(resource(t).to_string()).or_default().push(t.clone());
    }
    let all_open = types.len() <= ALL_OPEN_UP_TO;
    // Only in the browser (effects never run on the server): without JavaScript there is no box.
    let scripted = RwSignal::new(false);
    Effect::new(move |_| scripted.set(true));
    let search = RwSignal::new(String::new());
    let matches = move |t: &str| {
        let q = search.get();
        q.is_empty() || t.contains(q.trim().to_lowercase().as_str())
    };
    let groups = groups
        .into_iter()
        .map(|(group, members)| {
            let open = all_open || members.len() <= 3 || members.iter().any(|t| selected.contains(t));
            let total: i64 = members.iter().filter_map(|t| counts.get(t)).map(|c| c.count).sum();
            let capped = members.iter().filter_map(|t| counts.get(t)).any(|c| c.capped);
            let summary = format!(
                "{group} ({} type{}, {total}{} executions)",
                members.len(),
                if members.len() == 1 { "" } else { "s" },
                if capped { "+" } else { "" }
            );
            let boxes = members
                .iter()
                .map(|t| {
                    let checked = selected.contains(t);
                    let count = shown_count(counts.get(t));
                    let name = t.clone();
                    view! {
                        <label class="check" class:filtered-out=move || !matches(&name)>
                            <input type="checkbox" name="type" value=t.clone() checked=checked/>
                            {t.clone()} " " <span class="count">{count}</span>
                        </label>
                    }
                })
                .collect_view();
            let members_for_match = members.clone();
            let any_match = move || members_for_match.iter().any(|t| matches(t));
            let any_match2 = any_match.clone();
            view! {
                <details class="type-group" open=move || open || !search.get().is_empty() hidden=move || !any_match()>
                    <summary>{summary}</summary>
                    <div class="type-boxes" data-any=move || any_match2().to_string()>{boxes}</div>
                </details>
            }
        })
        .collect_view();
    view! {
        <fieldset class="types">
            <legend>{format!("Event type ({} present)", types.len())}</legend>
            <input
                type="search"
                class="type-search"
                aria-label="Search event types"
                placeholder="search types…"
                hidden=move || !scripted.get()
                prop:value=move || search.get()
                on:input=move |ev| search.set(event_target_value(&ev))
            />
            <div class="type-groups">{groups}</div>
        </fieldset>
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn types_group_by_what_precedes_their_last_dot() {
        assert_eq!(
            super::resource("customer.subscription.updated"),
            "customer.subscription"
        );
        assert_eq!(super::resource("invoice.paid"), "invoice");
        assert_eq!(super::resource("ping"), "ping");
    }
}
