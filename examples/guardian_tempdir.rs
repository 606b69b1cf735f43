//! `kill -9` leaves nothing behind: a program declares its temp directory
//! and its child process group to its `Guardian`; this example's parent
//! kills it with SIGKILL and shows that both are gone.
//!
//! ```text
//! $ cargo run --features guardian --example guardian_tempdir
//! program: temp dir /tmp/guardian-demo-1234, child group 1240, guardian 1238
//! parent: sent SIGKILL to the program
//! parent: temp dir gone, child group gone, 2.4ms after the kill
//! ```

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().nth(1).as_deref() == Some("program") {
        return program();
    }
    let mut program = Command::new(std::env::current_exe()?)
        .arg("program")
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(program.stdout.take().ok_or("no stdout")?).lines();
    let report = lines.next().ok_or("the program said nothing")??;
    println!("{report}");
    let dir = report
        .split("temp dir ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .ok_or("no temp dir in the report")?
        .to_owned();
    let group: i32 = report
        .split("child group ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .ok_or("no child group in the report")?
        .parse()?;

    program.kill()?; // SIGKILL: no handler, no destructor runs
    let killed = Instant::now();
    program.wait()?;
    println!("parent: sent SIGKILL to the program");
    while (Path::new(&dir).exists() || group_alive(group))
        && killed.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    let dir_state = if Path::new(&dir).exists() {
        "still there"
    } else {
        "gone"
    };
    let group_state = if group_alive(group) {
        "still running"
    } else {
        "gone"
    };
    println!(
        "parent: temp dir {dir_state}, child group {group_state}, {:.1?} after the kill",
        killed.elapsed()
    );
    Ok(())
}

/// Whether any process of group `group` still runs (a zombie, waiting to be
/// reaped by init, does not count).
fn group_alive(group: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path().join("stat")).ok())
        .any(|stat| {
            // After the command name: state, parent, group.
            let fields: Vec<&str> = stat
                .rsplit_once(") ")
                .map_or(vec![], |(_, rest)| rest.split(' ').collect());
            fields.len() > 2 && fields[2] == group.to_string() && fields[0] != "Z"
        })
}

/// The program that gets killed.
fn program() -> Result<(), Box<dyn std::error::Error>> {
    let guardian = atexit::Guardian::start()?;
    let dir = std::env::temp_dir().join(format!("guardian-demo-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("cache"))?;
    std::fs::write(dir.join("cache/data"), "scratch")?;
    guardian.remove_path(&dir)?;
    let child = Command::new("sleep")
        .arg("600")
        .process_group(0)
        .stdout(Stdio::null())
        .spawn()?;
    guardian.kill_process_group(child.id())?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "program: temp dir {}, child group {}, guardian {}",
        dir.display(),
        child.id(),
        guardian.id()
    )?;
    out.flush()?;
    drop(out);
    loop {
        std::thread::park();
    }
}
