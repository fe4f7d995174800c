use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::components::{error_view::ErrorView, record_filter_form::RecordFilterForm, record_table::RecordTable};
use crate::error::ConsoleError;
use crate::records::{RecordFilter, RecordKind};
use crate::server::list_records;

/// `/records/{kind}`: one kind of local record, filtered by the URL's query, a page at a time.
#[component]
pub fn RecordsPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let filter = Memo::new(move |_| {
        let kind: RecordKind = params.read().get("kind").unwrap_or_default().parse()?;
        // An empty key comes from the router's form submission (the nameless submit button).
        let query = query.read();
        let pairs: Vec<(String, String)> = (&*query)
            .into_iter()
            .filter(|(k, _)| !k.is_empty())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RecordFilter::from_pairs(kind, pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    });
    let page = Resource::new(
        move || filter.get(),
        |filter| async move {
            match filter {
                Ok(filter) => list_records(filter).await,
                Err(e) => Err(ConsoleError::Invalid(e)),
            }
        },
    );
    let title = move || match filter.get() {
        Ok(f) => f.kind.title(),
        Err(_) => "Records",
    };
    let form = move || filter.get().ok().map(|filter| view! { <RecordFilterForm filter/> });
    let results = move || {
        Suspend::new(async move {
            match (page.await, filter.get_untracked()) {
                (Ok(page), Ok(filter)) => {
                    let first = filter.cursor.is_some().then(|| {
                        let href = RecordFilter {
                            cursor: None,
                            ..filter.clone()
                        }
                        .href(None);
                        view! { <A href=href attr:class="first">"← First page"</A> }
                    });
                    let next = page.next_cursor.map(|c| {
                        view! { <A href=filter.href(Some(&c)) attr:class="older" attr:rel="next">"Next page →"</A> }
                    });
                    view! {
                        <RecordTable rows=page.rows/>
                        <nav class="pager">{first} {next}</nav>
                    }
                    .into_any()
                }
                (Err(error), _) => view! { <ErrorView error/> }.into_any(),
                (_, Err(e)) => view! { <ErrorView error=ConsoleError::Invalid(e)/> }.into_any(),
            }
        })
    };
    view! {
        <section class="records">
            <h1>{title}</h1>
            <RecordsNav/>
            {form}
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>{results}</Transition>
        </section>
    }
}

/// Links between the kinds of record.
#[component]
pub fn RecordsNav() -> impl IntoView {
    let links = RecordKind::ALL
        .into_iter()
        .map(|k| view! { <li><A href=format!("/records/{}", k.slug())>{k.title()}</A></li> })
        .collect_view();
    view! { <nav class="record-kinds" aria-label="Records"><ul>{links}</ul></nav> }
}
