//! A tokio service that stops the way a container runtime expects: on
//! SIGTERM it stops accepting connections, finishes the requests in flight,
//! then ends; the exit handlers write what it buffered, and the process dies
//! of SIGTERM.
//!
//! Usage: `axum_shutdown RECORDS_ADDR [--hung-exporter]` — the buffered
//! records are sent, at exit, by an async hook (tokio I/O) to the TCP
//! listener at RECORDS_ADDR (the test holds it). `--hung-exporter` adds an
//! async hook that never finishes, bounded to 300 ms. The service listens
//! on 127.0.0.1 (a free port, printed) with `GET /slow` (answers after
//! 500 ms) and `GET /` (at once). Needs the `tokio` feature.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::get;
use axum::Router;

type Records = Arc<Mutex<Vec<String>>>;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let records_addr = std::env::args()
        .nth(1)
        .ok_or("usage: axum_shutdown RECORDS_ADDR [--hung-exporter]")?;
    let hung_exporter = std::env::args().any(|arg| arg == "--hung-exporter");
    // The three lines: a stop request, a server that drains on it, and a
    // main that returns (the handlers run, then death by the signal).
    let shutdown = atexit::Shutdown::on_signals()?.grace(Duration::from_secs(5));

    let records: Records = Arc::default();
    let buffered = Arc::clone(&records);
    let request = shutdown.clone();
    atexit::Hook::new_async(move || flush_records(buffered, records_addr, request))
        .name("flush-records")
        .register()?;
    if hung_exporter {
        // Newer, so it runs first: its bound keeps the exit from hanging.
        atexit::Hook::new_async(std::future::pending::<()>)
            .name("stuck-exporter")
            .timeout(Duration::from_millis(300))
            .register()?;
    }

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
    // The async hooks, on this runtime, before `#[tokio::main]` drops it;
    // returning then ends the process by the signal.
    atexit::run_async_now().await?;
    Ok(())
}

/// The async exit hook: the buffered records, one per line, to `addr`.
async fn flush_records(records: Records, addr: String, request: atexit::Shutdown) {
    use tokio::io::AsyncWriteExt;
    let records = std::mem::take(&mut *records.lock().unwrap_or_else(|p| p.into_inner()));
    let mut text: String = records.iter().map(|record| format!("{record}\n")).collect();
    // Run by `run_async_now`, not by the exit run: the stop request says why.
    text.push_str(&format!(
        "{} records, stop requested by {:?}\n",
        records.len(),
        request.signal()
    ));
    let sent = async {
        let mut stream = tokio::net::TcpStream::connect(&addr).await?;
        stream.write_all(text.as_bytes()).await?;
        stream.shutdown().await
    };
    if let Err(err) = sent.await {
        let _ = writeln!(std::io::stderr(), "flush-records: {err}");
    }
}
