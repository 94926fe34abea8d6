//! `TEST_LOG`, the one switch for test logs, read by every test: the voice crate's, the
//! integration suite's (`tests/it`, media tests included) and the fleet rig's roles.
//!
//! - unset, empty or `0`: off. The test process installs no subscriber; the fleet's roles log
//!   at `info` into their log files (printed when a wait fails, kept with `KEEP_TEMP=1`).
//! - `1`: on. The test process logs `callfleet=debug` (every callfleet crate) to the test's
//!   output; the fleet's roles log at `info` to stderr instead of their files.
//! - anything else is a tracing filter (`debug`, `callfleet_media=trace,info`, ...) used for
//!   both: the test process's subscriber and the roles' `LOG_LEVEL`, to stderr.

/// The test process's filter when `TEST_LOG=1`.
const DEFAULT_FILTER: &str = "callfleet=debug";
/// The fleet roles' level when `TEST_LOG` is off or `1`.
const DEFAULT_ROLE_LEVEL: &str = "info";

/// What `TEST_LOG` says: `None` when off, else the filter it names (`1` is `Some("1")`).
fn switch() -> Option<String> {
    std::env::var("TEST_LOG")
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty() && v != "0")
}

/// Whether test logs are on (`TEST_LOG` set, not empty, not `0`).
pub fn enabled() -> bool {
    switch().is_some()
}

/// The filter for the test process's own subscriber, `None` when logs are off.
pub fn filter() -> Option<String> {
    switch().map(|v| {
        if v == "1" {
            DEFAULT_FILTER.to_owned()
        } else {
            v
        }
    })
}

/// The `LOG_LEVEL` the fleet rig gives the roles it starts.
pub fn role_level() -> String {
    match switch() {
        Some(v) if v != "1" => v,
        _ => DEFAULT_ROLE_LEVEL.to_owned(),
    }
}

/// Install a tracing subscriber with [`filter`] writing to the test's output, when logs are on.
/// Call it at the start of a test; later calls (and other tests' calls) do nothing.
pub fn init() {
    let Some(filter) = filter() else {
        return;
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|e| {
        eprintln!("TEST_LOG={filter} is not a tracing filter ({e}); using {DEFAULT_FILTER}");
        tracing_subscriber::EnvFilter::new(DEFAULT_FILTER)
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}
