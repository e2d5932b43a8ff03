//! govern's Prometheus recorder: against the exporter it replaced, under two threads, and at
//! its series limit.

use metrics::Recorder as _;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

use super::{RECEIPTS_BUCKETS, Recorder, SECONDS_BUCKETS, SERIES_MAX};

/// What the runtime and `govern serve` do to a recorder, in miniature: described and
/// undescribed metrics, labels to escape, values in several buckets and past the last.
fn record_sample_metrics() {
    use govern_runtime::metric_names::{
        COMMAND_DURATION_SECONDS, COMMANDS_TOTAL, GOVERNORS_RESIDENT, LEDGER_COMMIT_RECEIPTS,
    };
    metrics::describe_counter!(COMMANDS_TOTAL, "Commands answered, by \"kind\"\nand outcome.");
    metrics::describe_histogram!(COMMAND_DURATION_SECONDS, metrics::Unit::Seconds, "Seconds.");
    let accepted =
        metrics::counter!(COMMANDS_TOTAL, "governor" => "subscription", "outcome" => "accepted");
    accepted.increment(3);
    accepted.increment(4);
    metrics::counter!(COMMANDS_TOTAL, "governor" => "tenant", "outcome" => "refused").increment(1);
    metrics::counter!("govern_http_requests_total", "route" => "/v1/tenants/{tenant}/\"x\"\\", "method" => "POST").increment(2);
    metrics::gauge!(GOVERNORS_RESIDENT, "governor" => "subscription").set(42.5);
    let latency = metrics::histogram!(COMMAND_DURATION_SECONDS, "governor" => "subscription");
    for v in [0.000_01, 0.000_05, 0.000_3, 0.5, 0.25, 20.0] {
        latency.record(v);
    }
    let batch = metrics::histogram!(LEDGER_COMMIT_RECEIPTS);
    for v in [1.0, 3.0, 4_096.0, 5_000.0] {
        batch.record(v);
    }
}

fn lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> =
        text.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect();
    lines.sort();
    lines
}

#[test]
fn renders_the_text_the_exporter_rendered() {
    let ours = Recorder::default();
    metrics::with_local_recorder(&ours, record_sample_metrics);
    let receipts = Matcher::Full(govern_runtime::metric_names::LEDGER_COMMIT_RECEIPTS.to_owned());
    let theirs = PrometheusBuilder::new()
        .set_buckets(&SECONDS_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(receipts, &RECEIPTS_BUCKETS))
        .expect("buckets")
        .build_recorder();
    metrics::with_local_recorder(&theirs, record_sample_metrics);
    let (ours, theirs) = (ours.handle().render(), theirs.handle().render());
    assert_eq!(lines(&ours), lines(&theirs), "ours:\n{ours}\ntheirs:\n{theirs}");
    // And what the comparison stands on, in case both went wrong the same way.
    assert!(
        ours.contains("govern_commands_total{governor=\"subscription\",outcome=\"accepted\"} 7\n"),
        "{ours}"
    );
    assert!(
        ours.contains(
            "govern_command_duration_seconds_bucket{governor=\"subscription\",le=\"0.0005\"} 3\n"
        ),
        "{ours}"
    );
    assert!(
        ours.contains(
            "govern_command_duration_seconds_bucket{governor=\"subscription\",le=\"+Inf\"} 6\n"
        ),
        "{ours}"
    );
    assert!(
        ours.contains("govern_command_duration_seconds_count{governor=\"subscription\"} 6\n"),
        "{ours}"
    );
    assert!(ours.contains("govern_ledger_commit_receipts_bucket{le=\"4096\"} 3\n"), "{ours}");
    assert!(ours.contains("# TYPE govern_ledger_commit_receipts histogram\n"), "{ours}");
}

#[test]
fn two_threads_on_the_same_series_lose_nothing() {
    const PER_THREAD: u64 = 100_000;
    let recorder = Recorder::default();
    let key = metrics::Key::from_name("c");
    let meta = metrics::Metadata::new("t", metrics::Level::INFO, None);
    let counter = recorder.register_counter(&key, &meta);
    let histogram = recorder.register_histogram(&metrics::Key::from_name("h_seconds"), &meta);
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let (counter, histogram) = (counter.clone(), histogram.clone());
            std::thread::spawn(move || {
                for _ in 0..PER_THREAD {
                    counter.increment(1);
                    // Exact in binary: the sum can be compared exactly.
                    histogram.record(if t == 0 { 0.5 } else { 0.000_030_517_578_125 });
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("recording thread");
    }
    let text = recorder.handle().render();
    assert!(text.contains(&format!("c {}\n", 2 * PER_THREAD)), "{text}");
    assert!(text.contains(&format!("h_seconds_count {}\n", 2 * PER_THREAD)), "{text}");
    assert!(text.contains(&format!("h_seconds_bucket{{le=\"0.00005\"}} {PER_THREAD}\n")), "{text}");
    assert!(text.contains(&format!("h_seconds_bucket{{le=\"1\"}} {}\n", 2 * PER_THREAD)), "{text}");
    let sum = 0.5 * PER_THREAD as f64 + 0.000_030_517_578_125 * PER_THREAD as f64;
    assert!(text.contains(&format!("h_seconds_sum {sum}\n")), "{text}");
}

#[test]
fn series_past_the_limit_are_not_recorded() {
    let recorder = Recorder::default();
    let meta = metrics::Metadata::new("t", metrics::Level::INFO, None);
    let counters: Vec<_> = (0..=SERIES_MAX)
        .map(|i| {
            let key =
                metrics::Key::from_parts("many", vec![metrics::Label::new("i", i.to_string())]);
            recorder.register_counter(&key, &meta)
        })
        .collect();
    for c in &counters {
        c.increment(1);
    }
    // The same key again finds its series; a new one past the limit is a no-op.
    let first = metrics::Key::from_parts("many", vec![metrics::Label::new("i", "0")]);
    recorder.register_counter(&first, &meta).increment(1);
    let text = recorder.handle().render();
    let series = text.lines().filter(|l| l.starts_with("many{")).count();
    assert_eq!(series, SERIES_MAX);
    assert!(text.contains("many{i=\"0\"} 2\n"));
    assert!(!text.contains(&format!("many{{i=\"{SERIES_MAX}\"}}")));
}
