//! One subscription through the real actors: receipts, replay, chain, queries.

use govern_governors::subscription::{State, Subscription};
use govern_receipt::replay;

use super::{resource, started, tenant};

#[tokio::test(start_paused = true)]
async fn the_lifecycle_of_a_subscription_is_receipted_and_replays() {
    let rt = started(&["acme"]).await;
    let h = rt.handle();
    let (acme, sub_1) = (tenant("acme"), resource("sub-1"));
    let sub = h.subscription(&acme, &sub_1);
    sub.start_trial("pro", 14, "signed up").await.unwrap();
    sub.activate(None, "converted").await.unwrap();
    sub.suspend("card declined").await.unwrap();
    sub.resume("card updated").await.unwrap();
    sub.pause("holiday").await.unwrap();
    sub.resume("back").await.unwrap();
    sub.request_cancellation("leaving").await.unwrap();
    let confirmed = sub.confirm_cancellation(None, "confirmed").await.unwrap();
    assert_eq!(
        (confirmed.from, confirmed.to),
        ("cancellation_requested", "cancellation_confirmed")
    );
    let archived = sub.archive("records").await.unwrap();
    assert_eq!(archived.to, "archived");
    assert_eq!(archived.resource_seq, 8);

    let err = sub.resume("too late").await.unwrap_err();
    assert_eq!(err.code(), "invalid_transition");
    assert_eq!(sub.state().await.unwrap(), State::Archived);

    let receipts = h
        .receipts(&acme, Some(govern_governors::GovernorKind::Subscription), Some(&sub_1))
        .unwrap();
    assert_eq!(receipts.len(), 9);
    let replayed: Subscription = replay(&receipts).unwrap();
    assert_eq!(replayed, sub.snapshot().await.unwrap().machine);
    // 2 tenant-governor receipts (provision, activate) + 9.
    assert_eq!(h.verify().unwrap().next_seq, 11);
    let head = rt.shutdown().await.unwrap();
    assert_eq!(head.next_seq, 11);
}

/// Records the fields of closed `command` spans of resources named `span-*`. Installed once
/// as the process's global subscriber: a thread-local one would race with tracing's
/// process-wide cache of which callsites are enabled, as other tests run in parallel.
mod capture {
    use std::collections::BTreeMap;
    use std::sync::{Mutex, Once};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::registry::LookupSpan;

    pub(crate) static SPANS: Mutex<Vec<BTreeMap<String, String>>> = Mutex::new(Vec::new());

    struct Fields(BTreeMap<String, String>);

    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0
                .insert(field.name().to_owned(), format!("{value:?}").trim_matches('"').to_owned());
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }
    }

    struct Capture;

    impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
        fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
            let mut fields = Fields(BTreeMap::new());
            attrs.record(&mut fields);
            let ours = fields.0.get("resource_id").is_some_and(|r| r.starts_with("span-"));
            if let (true, Some(span)) = (ours, ctx.span(id)) {
                span.extensions_mut().insert(fields);
            }
        }
        fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
            if let Some(span) = ctx.span(id)
                && let Some(fields) = span.extensions_mut().get_mut::<Fields>()
            {
                values.record(fields);
            }
        }
        fn on_close(&self, id: Id, ctx: Context<'_, S>) {
            if let Some(span) = ctx.span(&id)
                && let Some(fields) = span.extensions_mut().remove::<Fields>()
            {
                SPANS.lock().unwrap().push(fields.0);
            }
        }
    }

    pub(crate) fn install() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Capture))
                .unwrap();
        });
    }
}

#[tokio::test(start_paused = true)]
async fn each_command_has_a_span_with_its_key_transition_outcome_and_seq() {
    capture::install();
    let rt = started(&["acme"]).await;
    let h = rt.handle();
    let sub = h.subscription(&tenant("acme"), &resource("span-sub"));
    let accepted = sub.start_trial("pro", 14, "signed up").await.unwrap();
    sub.archive("too soon").await.unwrap_err();
    rt.shutdown().await.unwrap();
    let spans = capture::SPANS.lock().unwrap();
    let ours: Vec<_> = spans
        .iter()
        .filter(|s| s.get("resource_id").map(String::as_str) == Some("span-sub"))
        .collect();
    assert_eq!(ours.len(), 2, "{spans:?}");
    let field = |i: usize, k: &str| ours[i].get(k).cloned().unwrap_or_default();
    assert_eq!(
        ["tenant_id", "governor", "command", "from", "to", "outcome", "seq"].map(|k| field(0, k)),
        [
            "acme",
            "subscription",
            "start_trial",
            "pending",
            "free_trial",
            "accepted",
            &accepted.seq.to_string()
        ]
    );
    assert_eq!(
        ["command", "from", "outcome"].map(|k| field(1, k)),
        ["archive", "free_trial", "rejected"]
    );
    assert!(!ours[1].contains_key("seq"), "a rejected command has no seq");
}
