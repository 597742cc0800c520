//! Says which tests the other test binaries of this `cargo test` skipped,
//! and why. Cargo runs the test binaries in the order of their names, so
//! this one (`skipped`) runs after `api` and `browser`; the line it writes
//! is at the end of the run, past the harness's output capture. The skips
//! are those recorded by `helpers::skip`, in a folder per `cargo test` run.
//! Under CI a skip is a failure, so there is nothing to report there.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, SystemTime};

#[path = "api/helpers.rs"]
#[expect(
    dead_code,
    unused_macros,
    reason = "the API tests' helpers; this binary reads where they record skips"
)]
mod helpers;

#[test]
fn the_tests_skipped_in_this_run_are_counted_with_why() {
    let run = helpers::skipped_folder(std::os::unix::process::parent_id());
    let mut records = String::new();
    if let Ok(files) = std::fs::read_dir(&run) {
        for file in files.flatten() {
            records.push_str(&std::fs::read_to_string(file.path()).unwrap_or_default());
        }
    }
    let _ = std::fs::remove_dir_all(&run);
    forget_old_runs(&run);

    // Why → binary → tests (a test may record one reason more than once).
    let mut skipped: BTreeMap<&str, BTreeMap<&str, Vec<&str>>> = BTreeMap::new();
    for line in records.lines() {
        let mut fields = line.splitn(3, '\t');
        let (Some(binary), Some(test), Some(why)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let tests = skipped.entry(why).or_default().entry(binary).or_default();
        if !tests.contains(&test) {
            tests.push(test);
        }
    }
    let mut said = String::new();
    if skipped.is_empty() {
        said.push_str("skipped tests: none (of the test binaries this run ran)\n");
    }
    for (why, binaries) in &skipped {
        let total: usize = binaries.values().map(Vec::len).sum();
        let each: Vec<String> = binaries
            .iter()
            .map(|(binary, tests)| format!("{} in {binary}", tests.len()))
            .collect();
        said.push_str(&format!(
            "SKIPPED {total} tests ({}), reported ok: {why}\n",
            each.join(", ")
        ));
    }
    // Not `eprint!`: the harness would hide it, the test passing.
    let _ = std::io::stderr().write_all(said.as_bytes());
    assert!(
        skipped.is_empty() || !helpers::in_ci(),
        "CI skipped tests:\n{said}"
    );
}

/// Removes the records of runs that ended a day ago or more (a run of a
/// single test binary leaves its records, nobody summing them up).
fn forget_old_runs(run: &std::path::Path) {
    let Some(all) = run.parent() else { return };
    let Ok(folders) = std::fs::read_dir(all) else {
        return;
    };
    let day_ago = SystemTime::now() - Duration::from_secs(24 * 3600);
    for folder in folders.flatten() {
        let old = folder
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < day_ago);
        if old {
            let _ = std::fs::remove_dir_all(folder.path());
        }
    }
}
