//! A tokio service that stops the way a container runtime expects: on
//! SIGTERM it stops accepting connections, finishes the requests in flight,
//! then ends; the exit handlers write what it buffered, and the process dies
//! of SIGTERM.
//!
//! Usage: `axum_shutdown RECORDS_ADDR` — the buffered records are sent, at
//! exit, to the TCP listener at RECORDS_ADDR (the test holds it). The
//! service listens on 127.0.0.1 (a free port, printed) with `GET /slow`
//! (answers after 500 ms) and `GET /` (at once).

use std::io::Write;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::get;
use axum::Router;

type Records = Arc<Mutex<Vec<String>>>;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let records_addr = std::env::args()
        .nth(1)
        .ok_or("usage: axum_shutdown RECORDS_ADDR")?;
    // The three lines: a stop request, a server that drains on it, and a
    // main that returns (the handlers run, then death by the signal).
    let shutdown = atexit::Shutdown::on_signals()?.grace(Duration::from_secs(5));

    let records: Records = Arc::default();
    let buffered = Arc::clone(&records);
    atexit::Hook::new(move || flush_records(&buffered, &records_addr))
        .name("flush-records")
        .register();

    let app = Router::new().route("/", get(|| async { "ok" })).route(
        "/slow",
        get({
            let records = Arc::clone(&records);
            move || async move {
                tokio::time::sleep(Duration::from_millis(500)).await;
                records.lock().unwrap().push("slow request served".into());
                "done"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("READY");
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.requested())
        .await?;
    println!("drained after {:?}", shutdown.signal());
    Ok(())
}

/// The exit handler: the buffered records, one per line, to `addr`.
fn flush_records(records: &Records, addr: &str) {
    let records = std::mem::take(&mut *records.lock().unwrap_or_else(|p| p.into_inner()));
    let sent = TcpStream::connect(addr).and_then(|mut stream| {
        for record in &records {
            writeln!(stream, "{record}")?;
        }
        writeln!(
            stream,
            "{} records, reason {:?}",
            records.len(),
            atexit::reason()
        )
    });
    if let Err(err) = sent {
        let _ = writeln!(std::io::stderr(), "flush-records: {err}");
    }
}
