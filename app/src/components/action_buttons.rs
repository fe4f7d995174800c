use leptos::prelude::*;

use crate::components::require_session::can_act;
use crate::model::{Action, Execution};
use crate::server::RunAction;
use crate::view::{action_label, applies_to};

/// One small form per action that applies to the execution's state (a POST that works
/// without JavaScript). A stale page may still offer one that no longer applies: the server
/// refuses it and the page shows why. A viewer gets none.
#[component]
pub fn ActionButtons(execution: Execution, action: ServerAction<RunAction>) -> impl IntoView {
    let allowed = can_act();
    let forms = [Action::Retry, Action::Cancel, Action::Rerun]
        .into_iter()
        .filter(|a| allowed && applies_to(*a).contains(&execution.state))
        .map(|a| {
            let id = execution.id.clone();
            view! {
                <ActionForm action=action attr:class=format!("action action-{}", a.as_str())>
                    <input type="hidden" name="id" value=id/>
                    <input type="hidden" name="action" value=a.as_str()/>
                    <button type="submit">{action_label(a)}</button>
                </ActionForm>
            }
        })
        .collect_view();
    view! { <div class="actions">{forms}</div> }
}
