//! Crash injection's panics (`CrashPoint`, the `testing` feature) are deliberate: the
//! simulator, the scenario runner, the benchmarks and the tests keep them out of their
//! output, and recognise them, through these.

use std::any::Any;

/// How every panic the runtime's crash injection raises begins.
pub const INJECTED_CRASH_PREFIX: &str = "injected crash";

/// Whether a panic's payload is one of the runtime's injected crashes.
#[must_use]
pub fn is_injected_crash(payload: &(dyn Any + Send)) -> bool {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    message.starts_with(INJECTED_CRASH_PREFIX)
}

/// Installs, once per process, a panic hook that keeps injected crashes out of the output and
/// hands every other panic to the hook installed before it.
pub fn quiet_injected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !is_injected_crash(info.payload()) {
                default(info);
            }
        }));
    });
}
