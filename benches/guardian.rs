//! What a `Guardian` costs: `Guardian::start` (median of fresh processes),
//! the guardian's resident memory, and one declaration (`remove_path` and
//! its `cancel`). `cargo bench --bench guardian`; `cargo test --bench
//! guardian` runs it at small counts as a smoke test.

use std::process::Command;
use std::time::{Duration, Instant};

const CHILD: &str = "ATEXIT_GUARDIAN_BENCH_CHILD";

fn main() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let smoke = !std::env::args().any(|arg| arg == "--bench");
    let (starts, declarations) = if smoke { (5, 1_000) } else { (50, 100_000) };
    let mut samples: Vec<Sample> = (0..starts).map(|_| run_child(declarations)).collect();
    samples.sort_by_key(|sample| sample.start);
    let start = samples[samples.len() / 2].start;
    let mut declares: Vec<Duration> = samples.iter().map(|s| s.declaration).collect();
    declares.sort();
    let declaration = declares[declares.len() / 2];
    let rss = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|line| {
                line.strip_prefix("model name")
                    .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    println!("guardian costs ({starts} fresh processes, {declarations} declarations each; {cpu})");
    println!("| figure | measured | target |");
    println!("| --- | --- | --- |");
    println!(
        "| `Guardian::start` (median) | {:.2} ms | <= 5 ms |",
        ms(start)
    );
    println!(
        "| guardian resident memory (largest seen) | {:.2} MB | <= 2 MB |",
        rss as f64 / 1024.0
    );
    println!(
        "| one declaration, `remove_path` + `cancel` (median of means) | {:.2} µs | <= 20 µs |",
        declaration.as_secs_f64() * 1e6
    );
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

struct Sample {
    start: Duration,
    declaration: Duration,
    rss_kib: u64,
}

fn run_child(declarations: usize) -> Sample {
    let out = Command::new(std::env::current_exe().expect("bench binary"))
        .env(CHILD, declarations.to_string())
        .output()
        .expect("run the bench child");
    assert!(out.status.success(), "bench child failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text:?}"))
    };
    Sample {
        start: Duration::from_nanos(field("start_ns")),
        declaration: Duration::from_nanos(field("declaration_ns")),
        rss_kib: field("rss_kib"),
    }
}

fn child() {
    let declarations: u32 = std::env::var(CHILD)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let started = Instant::now();
    let guardian = atexit::Guardian::start().expect("start the guardian");
    let start = started.elapsed();
    let dir = std::env::temp_dir().join("atexit-guardian-bench");
    let declaring = Instant::now();
    for _ in 0..declarations {
        guardian.remove_path(&dir).expect("declare").cancel();
    }
    let declaration = declaring.elapsed() / declarations;
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", guardian.id())).unwrap_or_default();
    let rss_kib: u64 = status
        .lines()
        .find_map(|line| {
            line.strip_prefix("VmRSS:")?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0);
    println!("start_ns {}", start.as_nanos());
    println!("declaration_ns {}", declaration.as_nanos());
    println!("rss_kib {rss_kib}");
}
