//! The crate's layers call downward only: every `crate::` path in a source
//! file names a file of a lower layer (or, inside a layer, a file listed
//! after it). The table below is the architecture the README describes; a
//! new file must be placed in it.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

/// Each source file with its place, top first. Files with the same place
/// may not call each other.
const PLACES: &[(&str, u32)] = &[
    ("lib.rs", 0),
    // The public API beside `lib.rs`.
    ("join.rs", 10),
    ("hook.rs", 11),
    ("local_registry.rs", 12),
    ("guardian.rs", 12),
    ("shutdown.rs", 12),
    // The process layer, in the order of `process/mod.rs`.
    ("process/mod.rs", 20),
    ("process/signal.rs", 21),
    // Windows' counterpart of `signal.rs`; the two are never built together.
    ("process/console.rs", 21),
    ("process/exit_hook.rs", 22),
    ("process/panic_abort.rs", 23),
    ("process/hook_thread.rs", 23),
    ("process/tokio_hook.rs", 23),
    ("process/fork.rs", 24),
    ("process/exit_run.rs", 25),
    ("process/request.rs", 26),
    ("process/c_exit.rs", 26),
    ("process/deadline.rs", 27),
    ("process/trace.rs", 28),
    ("process/failure.rs", 29),
    ("process/global.rs", 30),
    ("process/ending.rs", 31),
    ("process/reason.rs", 32),
    ("process/observers.rs", 33),
    ("process/handoff.rs", 34),
    ("process/threads.rs", 34),
    // The registry layer: the run loop and handles over the locked store.
    ("registry/run.rs", 40),
    ("registry/handle.rs", 40),
    ("registry/mod.rs", 41),
    // Plain data.
    ("store.rs", 50),
    ("args.rs", 51),
    ("error.rs", 51),
    ("sorted_map.rs", 52),
    // The platform and the crate's only `unsafe`.
    ("sys/mod.rs", 60),
    ("sys/arrival.rs", 61),
    ("sys/guardian/mod.rs", 61),
    ("sys/guardian/watch.rs", 61),
    ("sys/guardian/protocol.rs", 62),
    ("sys/unix.rs", 62),
    ("sys/windows.rs", 62),
    ("sys/erased.rs", 62),
    ("sys/lock.rs", 62),
];

fn place(file: &str) -> Option<u32> {
    PLACES
        .iter()
        .find(|(known, _)| *known == file)
        .map(|&(_, place)| place)
}

/// The file that `crate::a::b::c` lives in: the longest prefix that is a
/// module file.
fn file_of(path: &[&str]) -> Option<String> {
    (1..=path.len()).rev().find_map(|len| {
        let module = path[..len].join("/");
        [format!("{module}.rs"), format!("{module}/mod.rs")]
            .into_iter()
            .find(|file| place(file).is_some())
    })
}

/// Every `crate::` path in `source`, outside comments, with `use` groups
/// (`crate::a::{b, c::d}`) expanded one level.
fn crate_paths(source: &str) -> BTreeSet<Vec<String>> {
    let code: String = source
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut paths = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let prefix: Vec<String> = rest[..end]
            .split("::")
            .filter(|part| !part.is_empty())
            .map(str::to_owned)
            .collect();
        if rest[end..].starts_with('{') {
            let group = &rest[end + 1..rest[end..].find('}').map_or(rest.len(), |i| end + i)];
            for item in group.split(',') {
                let mut path = prefix.clone();
                path.extend(
                    item.split("::")
                        .map(str::trim)
                        .filter(|part| !part.is_empty() && *part != "self")
                        .map(str::to_owned),
                );
                paths.insert(path);
            }
        } else {
            paths.insert(prefix);
        }
    }
    paths
}

fn source_files(dir: &Path, base: &Path, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            source_files(&path, base, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let relative = path.strip_prefix(base).expect("under src");
            out.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// What in `source`, the text of `file`, does not go down.
fn violations(file: &str, source: &str) -> Vec<String> {
    let Some(from) = place(file) else {
        return vec![format!("{file} has no place in tests/layers.rs")];
    };
    let mut wrong = Vec::new();
    for path in crate_paths(source) {
        let parts: Vec<&str> = path.iter().map(String::as_str).collect();
        // Items of the crate root (`crate::exit`, `crate::Hook`) are the
        // public API, named in docs and re-exports only.
        let Some(target) = file_of(&parts) else {
            continue;
        };
        let to = place(&target).expect("placed");
        if target != file && to <= from {
            wrong.push(format!(
                "{file} names crate::{} in {target}, which is not below it",
                parts.join("::")
            ));
        }
    }
    wrong
}

#[test]
fn calls_go_down_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &src, &mut files);
    files.sort();
    let wrong: Vec<String> = files
        .iter()
        .flat_map(|file| {
            let source = fs::read_to_string(src.join(file)).expect("read source");
            violations(file, &source)
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "calls that do not go down:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_check_sees_a_call_upward() {
    let upward = "use crate::process::{exit_run, global};\n";
    assert_eq!(
        violations("registry/run.rs", upward),
        [
            "registry/run.rs names crate::process::exit_run in process/exit_run.rs, which is not below it",
            "registry/run.rs names crate::process::global in process/global.rs, which is not below it",
        ]
    );
    // Inline paths count too; comments do not; calls down are fine.
    assert_eq!(
        violations("store.rs", "fn f() { crate::registry::run::run(); }").len(),
        1
    );
    assert!(violations("store.rs", "// see crate::registry::run\n").is_empty());
    assert!(violations(
        "process/exit_run.rs",
        upward.replace("exit_run", "deadline").as_str()
    )
    .is_empty());
    assert_eq!(
        violations("new_file.rs", ""),
        ["new_file.rs has no place in tests/layers.rs"]
    );
}
