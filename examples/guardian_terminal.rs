//! A terminal left in raw mode by `kill -9` gets its settings back: the
//! program declares `restore_terminal` to its `Guardian`, switches the
//! terminal to raw mode (as a full-screen program does), and this example's
//! parent kills it with SIGKILL. Run it in a terminal:
//!
//! ```text
//! $ cargo run --features guardian --example guardian_terminal
//! parent: terminal settings before: 500:5:bf:8a3b:3:1c:7f:15:4:0:1:0:11:13:1a:0:12:f:17:16:0:0:0:...
//! program: terminal in raw mode, restoration declared; waiting to be killed
//! parent: sent SIGKILL to the program
//! parent: terminal settings after:  500:5:bf:8a3b:3:1c:7f:15:4:0:1:0:11:13:1a:0:12:f:17:16:0:0:0:...
//! parent: restored: true
//! ```

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The terminal's settings in `stty -g` form (stdin is the terminal).
fn settings() -> Result<String, Box<dyn std::error::Error>> {
    let out = Command::new("stty")
        .arg("-g")
        .stdin(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err("stty failed: is stdin a terminal?".into());
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().nth(1).as_deref() == Some("program") {
        return program();
    }
    let before = settings()?;
    println!("parent: terminal settings before: {before}");
    let mut program = Command::new(std::env::current_exe()?)
        .arg("program")
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(program.stdout.take().ok_or("no stdout")?).lines();
    // Raw mode turns "\n" into a bare line feed: print the line ourselves.
    let said = lines.next().ok_or("the program said nothing")??;
    println!("{said}");
    program.kill()?;
    program.wait()?;
    println!("parent: sent SIGKILL to the program");
    let killed = Instant::now();
    let mut after = settings()?;
    while after != before && killed.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(5));
        after = settings()?;
    }
    println!("parent: terminal settings after:  {after}");
    println!("parent: restored: {}", after == before);
    Ok(())
}

/// The program that gets killed in raw mode.
fn program() -> Result<(), Box<dyn std::error::Error>> {
    let guardian = atexit::Guardian::start()?;
    guardian.restore_terminal()?;
    let raw = Command::new("stty")
        .args(["raw", "-echo"])
        .stdin(Stdio::inherit())
        .status()?;
    if !raw.success() {
        return Err("stty raw failed".into());
    }
    println!("program: terminal in raw mode, restoration declared; waiting to be killed");
    loop {
        std::thread::park();
    }
}
