//! `govern graph KIND`: a governor's state machine as a Mermaid state diagram or a Graphviz
//! digraph. The graph comes from `govern_governors::graph`, which runs the governor's own
//! code; the diagrams of `docs/governors/` are made by the same function.

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, ValueEnum};
use govern_governors::GovernorKind;
use govern_governors::graph::Graph;

/// Output formats of `govern graph`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum Format {
    /// A Mermaid `stateDiagram-v2` (as embedded in docs/governors/*.md).
    Mermaid,
    /// A Graphviz digraph (render with `dot -Tsvg`).
    Dot,
}

/// Options of `govern graph`.
#[derive(Debug, Args)]
pub(crate) struct GraphArgs {
    /// The governor kind.
    #[arg(value_name = "KIND", value_parser = governor_kind())]
    kind: GovernorKind,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Mermaid)]
    format: Format,
}

/// Parses a governor kind by its stable name; clap lists the valid names when it is not one.
pub(crate) fn governor_kind() -> impl TypedValueParser<Value = GovernorKind> {
    PossibleValuesParser::new(GovernorKind::ALL.map(GovernorKind::name)).try_map(|name| {
        GovernorKind::from_name(&name).ok_or_else(|| format!("unknown governor kind {name}"))
    })
}

/// Runs `govern graph`.
pub(crate) fn run(args: &GraphArgs) -> Result<(), String> {
    let graph = Graph::of_kind(args.kind);
    let text = match args.format {
        Format::Mermaid => graph.mermaid(),
        Format::Dot => graph.dot(),
    };
    say!("{}", text.trim_end_matches('\n'));
    Ok(())
}
