//! A governor's state graph, discovered by running its code: docs, `govern graph` and the
//! exhaustive tests all draw from [`explore`], so they cannot drift from the table.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::args::CommandSpec;
use crate::governor::{Governor, StateSpec};
use crate::kind::GovernorKind;
use crate::time::{Ctx, DAY_MS};
use crate::{
    account, audit, billing, catalog, compliance, entitlement, quota, saga, subscription, tenant,
};

/// Exploration starts at 2026-01-01T00:00:00Z.
pub const EXPLORE_EPOCH_MS: u64 = 1_767_225_600_000;
/// Each exploration depth happens this much later than its parent, so that every deadline
/// a sample sets (trials, expiries, windows) has passed when the child is explored.
pub const EXPLORE_STEP_MS: u64 = 400 * DAY_MS;

/// One accepted (state, command) pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    /// The state the command is accepted in.
    pub from: &'static str,
    /// The command.
    pub command: &'static str,
    /// The state it leads to.
    pub to: &'static str,
}

/// What exploration found: one representative machine per reachable state, and every edge.
#[derive(Debug)]
pub struct Exploration<G: Governor> {
    /// For each reached state, in discovery order: a machine in it and the time at which its
    /// exits were explored.
    pub representatives: Vec<(G::State, G, Ctx)>,
    /// Every accepted (state, command sample) pair, deduplicated, in discovery order.
    pub edges: Vec<Edge>,
    /// Every (state, timeout command) pair seen on a machine right after an accepted
    /// command, deduplicated, in discovery order: the states that can arm a state timeout.
    pub timeouts: Vec<(&'static str, &'static str)>,
}

/// Breadth-first search from the initial machine with every [`CommandSpec::samples`] command.
///
/// A state's self-transitions (set-up commands such as `create_account`) are applied before
/// its exits are tried, so that exits guarded on that set-up are found.
#[must_use]
pub fn explore<G: Governor>() -> Exploration<G> {
    let mut representatives = Vec::new();
    let mut edges = Vec::new();
    let mut seen_edges = BTreeSet::new();
    let mut seen_states = vec![G::default().state()];
    let mut timeouts: Vec<(&'static str, &'static str)> = Vec::new();
    let note_timeout = |m: &G, timeouts: &mut Vec<(&'static str, &'static str)>| {
        if let Some(t) = m.state_timeout() {
            let pair = (m.state().name(), t.command.name());
            if !timeouts.contains(&pair) {
                timeouts.push(pair);
            }
        }
    };
    let mut queue = std::collections::VecDeque::from([(G::default(), 0u64)]);
    let mut record = |e: Edge, edges: &mut Vec<Edge>| {
        if seen_edges.insert(e) {
            edges.push(e);
        }
    };
    while let Some((mut machine, depth)) = queue.pop_front() {
        let ctx = Ctx::at_ms(EXPLORE_EPOCH_MS + depth * EXPLORE_STEP_MS);
        let from = machine.state();
        for mut sample in G::Command::samples(&ctx) {
            if let Ok(t) = machine.accept(&mut sample, &ctx)
                && t.to == from
            {
                machine.evolve(&sample, t.to, ctx.now);
                note_timeout(&machine, &mut timeouts);
                record(
                    Edge { from: from.name(), command: sample.name(), to: from.name() },
                    &mut edges,
                );
            }
        }
        for mut sample in G::Command::samples(&ctx) {
            let Ok(t) = machine.accept(&mut sample, &ctx) else { continue };
            record(Edge { from: from.name(), command: sample.name(), to: t.to.name() }, &mut edges);
            let mut next = machine.clone();
            next.evolve(&sample, t.to, ctx.now);
            note_timeout(&next, &mut timeouts);
            if !seen_states.contains(&t.to) {
                seen_states.push(t.to);
                queue.push_back((next, depth + 1));
            }
        }
        representatives.push((from, machine, ctx));
    }
    Exploration { representatives, edges, timeouts }
}

/// A governor's graph by kind, without naming its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Graph {
    /// The governor.
    pub kind: GovernorKind,
    /// All states in table order; the first is initial.
    pub states: Vec<&'static str>,
    /// The terminal states.
    pub terminal: Vec<&'static str>,
    /// Every command name in table order.
    pub commands: Vec<&'static str>,
    /// One example per command, as `name key=value ...`.
    pub examples: Vec<String>,
    /// The edges exploration found.
    pub edges: Vec<Edge>,
    /// (state, command) for each state that arms a state timeout, as exploration found them.
    pub timeouts: Vec<(&'static str, &'static str)>,
}

impl Graph {
    /// Explores governor `G`.
    #[must_use]
    pub fn of<G: Governor>() -> Self {
        let ctx = Ctx::at_ms(EXPLORE_EPOCH_MS);
        let samples = G::Command::samples(&ctx);
        let examples = G::Command::NAMES
            .iter()
            .map(|name| {
                let mut line = (*name).to_owned();
                if let Some(sample) = samples.iter().find(|s| s.name() == *name) {
                    for (k, v) in sample.args() {
                        let _ = write!(line, " {k}={v}");
                    }
                }
                line
            })
            .collect();
        let exploration = explore::<G>();
        let timeouts = exploration.timeouts.clone();
        Self {
            kind: G::KIND,
            states: G::State::ALL.iter().map(|s| s.name()).collect(),
            terminal: G::State::ALL.iter().filter(|s| s.is_terminal()).map(|s| s.name()).collect(),
            commands: G::Command::NAMES.to_vec(),
            examples,
            edges: exploration.edges,
            timeouts,
        }
    }

    /// The graph of the governor of `kind`.
    #[must_use]
    pub fn of_kind(kind: GovernorKind) -> Self {
        match kind {
            GovernorKind::Entitlement => Self::of::<entitlement::Entitlement>(),
            GovernorKind::Billing => Self::of::<billing::Billing>(),
            GovernorKind::Catalog => Self::of::<catalog::Product>(),
            GovernorKind::Subscription => Self::of::<subscription::Subscription>(),
            GovernorKind::Account => Self::of::<account::Account>(),
            GovernorKind::Quota => Self::of::<quota::Quota>(),
            GovernorKind::Compliance => Self::of::<compliance::Audit>(),
            GovernorKind::Tenant => Self::of::<tenant::Tenant>(),
            GovernorKind::Audit => Self::of::<audit::Trail>(),
            GovernorKind::Saga => Self::of::<saga::Saga>(),
        }
    }

    /// Edges grouped by (from, to), their command names joined.
    fn grouped(&self) -> Vec<(&'static str, &'static str, String)> {
        let mut out: Vec<(&'static str, &'static str, String)> = Vec::new();
        for e in &self.edges {
            match out.iter_mut().find(|(f, t, _)| *f == e.from && *t == e.to) {
                Some((_, _, label)) => {
                    label.push_str(", ");
                    label.push_str(e.command);
                }
                None => out.push((e.from, e.to, e.command.to_owned())),
            }
        }
        out
    }

    /// A Mermaid `stateDiagram-v2`.
    #[must_use]
    pub fn mermaid(&self) -> String {
        let mut s = String::from("stateDiagram-v2\n    direction LR\n");
        if let Some(initial) = self.states.first() {
            let _ = writeln!(s, "    [*] --> {initial}");
        }
        for (from, to, label) in self.grouped() {
            let _ = writeln!(s, "    {from} --> {to}: {label}");
        }
        for t in &self.terminal {
            let _ = writeln!(s, "    {t} --> [*]");
        }
        s
    }

    /// A Graphviz digraph.
    #[must_use]
    pub fn dot(&self) -> String {
        let mut s = format!(
            "digraph {} {{\n    rankdir=LR;\n    node [shape=box, style=rounded];\n",
            self.kind
        );
        if let Some(initial) = self.states.first() {
            let _ = writeln!(s, "    start [shape=point];\n    start -> \"{initial}\";");
        }
        for t in &self.terminal {
            let _ = writeln!(s, "    \"{t}\" [peripheries=2];");
        }
        for (from, to, label) in self.grouped() {
            let _ = writeln!(s, "    \"{from}\" -> \"{to}\" [label=\"{label}\"];");
        }
        s.push_str("}\n");
        s
    }

    /// The generated part of `docs/governors/<kind>.md`.
    #[must_use]
    pub fn doc_block(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "### Diagram\n\n```mermaid\n{}```\n", self.mermaid());
        let _ = writeln!(
            s,
            "### States\n\n| state | initial | terminal | reached by |\n|---|---|---|---|"
        );
        for (i, st) in self.states.iter().enumerate() {
            let by: Vec<&str> = self
                .edges
                .iter()
                .filter(|e| e.to == *st && e.from != *st)
                .map(|e| e.command)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let _ = writeln!(
                s,
                "| `{st}` | {} | {} | {} |",
                if i == 0 { "yes" } else { "" },
                if self.terminal.contains(st) { "yes" } else { "" },
                by.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
            );
        }
        let _ = writeln!(s, "\n### Commands\n\n| command | example |\n|---|---|");
        for (name, ex) in self.commands.iter().zip(&self.examples) {
            // A multi-line argument (a usage batch's events) stays on the table's row.
            let ex = ex.replace('\n', "\\n");
            let _ = writeln!(s, "| `{name}` | `{ex}` |");
        }
        if !self.timeouts.is_empty() {
            let _ = writeln!(
                s,
                "\n### State timeouts\n\nArmed on entering the state and cancelled by leaving it; \
                 when due, the runtime sends the command through `decide` like any other.\n\n\
                 | state | command sent when due |\n|---|---|"
            );
            for (state, command) in &self.timeouts {
                let _ = writeln!(s, "| `{state}` | `{command}` |");
            }
        }
        let _ = writeln!(
            s,
            "\n### Transitions\n\nEvery pair not listed is refused with `invalid_transition` \
             (or a guard's rejection, as the page says).\n\n| from | command | to |\n|---|---|---|"
        );
        for e in &self.edges {
            let _ = writeln!(s, "| `{}` | `{}` | `{}` |", e.from, e.command, e.to);
        }
        s
    }
}
