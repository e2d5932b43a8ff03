//! The exposition text (format 0.0.4) of the recorder's series: per metric name a `# HELP`
//! line (when described) and a `# TYPE` line, then one line per series (a histogram's
//! cumulative `_bucket`s with `le`, its `_sum` and `_count`), names and series in order. Names,
//! label values and help text go through `metrics-exporter-prometheus`'s sanitising functions,
//! so the text is the one that exporter rendered.

use std::collections::BTreeMap;
use std::fmt::{Display, Write};
use std::sync::{PoisonError, RwLock};

use metrics::Key;
use metrics_exporter_prometheus::formatting::{
    sanitize_description, sanitize_label_key, sanitize_label_value, sanitize_metric_name,
};

use super::Registry;

/// Renders every series of `registry`.
pub(super) fn render(registry: &Registry) -> String {
    let descriptions = registry.descriptions.read().unwrap_or_else(PoisonError::into_inner);
    let mut out = String::new();
    let counters = grouped(&registry.counters, |c| c.value());
    write_family(&mut out, &descriptions, "counter", counters, |out, name, labels, value| {
        line(out, name, "", labels, None, value);
    });
    let gauges =
        grouped(&registry.gauges, |g| f64::from_bits(g.load(std::sync::atomic::Ordering::Relaxed)));
    write_family(&mut out, &descriptions, "gauge", gauges, |out, name, labels, value| {
        line(out, name, "", labels, None, value);
    });
    let histograms = grouped(&registry.histograms, |h| h.snapshot());
    write_family(&mut out, &descriptions, "histogram", histograms, |out, name, labels, h| {
        for (bound, n) in &h.buckets {
            line(out, name, "_bucket", labels, Some(bound), n);
        }
        line(out, name, "_bucket", labels, Some(&"+Inf"), h.count);
        line(out, name, "_sum", labels, None, h.sum);
        line(out, name, "_count", labels, None, h.count);
    });
    out
}

/// Each series' value read by `read`, by sanitised metric name, then by its labels
/// (`key="value"`, escaped), both in order.
fn grouped<T, V>(
    map: &RwLock<BTreeMap<Key, std::sync::Arc<T>>>,
    read: impl Fn(&T) -> V,
) -> BTreeMap<String, BTreeMap<Vec<String>, V>> {
    let map = map.read().unwrap_or_else(PoisonError::into_inner);
    let mut families: BTreeMap<String, BTreeMap<Vec<String>, V>> = BTreeMap::new();
    for (key, cell) in map.iter() {
        let labels = key
            .labels()
            .map(|l| {
                format!("{}=\"{}\"", sanitize_label_key(l.key()), sanitize_label_value(l.value()))
            })
            .collect();
        families.entry(sanitize_metric_name(key.name())).or_default().insert(labels, read(cell));
    }
    families
}

/// Writes one metric type's families: help, type, series, then an empty line.
fn write_family<V>(
    out: &mut String,
    descriptions: &BTreeMap<String, metrics::SharedString>,
    kind: &str,
    families: BTreeMap<String, BTreeMap<Vec<String>, V>>,
    series: impl Fn(&mut String, &str, &[String], &V),
) {
    for (name, by_labels) in families {
        if let Some(help) = descriptions.get(&name) {
            let _ = writeln!(out, "# HELP {name} {}", sanitize_description(help));
        }
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in &by_labels {
            series(out, &name, labels, value);
        }
        out.push('\n');
    }
}

/// One sample line: `name{labels[,le="bound"]} value`.
fn line(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &[String],
    le: Option<&dyn Display>,
    value: impl Display,
) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || le.is_some() {
        out.push('{');
        out.push_str(&labels.join(","));
        if let Some(le) = le {
            if !labels.is_empty() {
                out.push(',');
            }
            let _ = write!(out, "le=\"{le}\"");
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}
