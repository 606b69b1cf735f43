//! A real service stopped the way a container runtime stops it: the
//! `axum_shutdown` example (an axum HTTP server on 127.0.0.1) gets SIGTERM
//! while a request that takes 500 ms is in flight. The request completes
//! with 200, a new connection is refused, the exit handler sends the
//! service's buffered records to a listener this test holds, and the
//! process dies of SIGTERM; a second SIGTERM during the drain ends it at
//! once. (`cargo test` builds the example first.)

#[path = "common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::Running;

/// A listener for the records, and a thread collecting what arrives.
fn records_listener() -> (String, JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("records listener");
    let addr = listener.local_addr().unwrap().to_string();
    let collector = thread::spawn(move || {
        listener.set_nonblocking(false).unwrap();
        let mut received = String::new();
        if let Ok((mut stream, _)) = listener.accept() {
            let _ = stream.read_to_string(&mut received);
        }
        received
    });
    (addr, collector)
}

fn start_service(records: &str, args: &[&str]) -> (Running, String) {
    let mut command = common::example("axum_shutdown");
    command.arg(records).args(args);
    let mut running = common::start(command);
    let line = running.read_line();
    let addr = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    (running, addr)
}

/// `GET path` on a new connection, on a thread; its whole response.
fn get(addr: &str, path: &str) -> JoinHandle<std::io::Result<String>> {
    let addr = addr.to_owned();
    let path = path.to_owned();
    thread::spawn(move || {
        let mut stream = TcpStream::connect(&addr)?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    })
}

#[test]
fn sigterm_drains_the_request_in_flight_then_flushes_then_dies_of_sigterm() {
    let (records, collector) = records_listener();
    let (running, addr) = start_service(&records, &[]);
    let slow = get(&addr, "/slow");
    thread::sleep(Duration::from_millis(150)); // the request is in flight
    running.signal(libc::SIGTERM);
    let sent = Instant::now();
    thread::sleep(Duration::from_millis(100));
    let refused = TcpStream::connect(&addr);
    let response = slow.join().unwrap().expect("the request in flight");
    let outcome = running.finish();
    let took = sent.elapsed();

    assert!(
        refused
            .as_ref()
            .is_err_and(|err| err.kind() == std::io::ErrorKind::ConnectionRefused),
        "a connection after SIGTERM was not refused: {refused:?}"
    );
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response:?}");
    assert!(response.ends_with("\r\n\r\ndone"), "{response:?}");
    assert_eq!(
        collector.join().unwrap(),
        "slow request served\n1 records, stop requested by Some(15)\n"
    );
    assert!(
        outcome.stdout.ends_with("drained after Some(15)\n"),
        "{outcome:?}"
    );
    assert_eq!(outcome.stderr, "", "{outcome:?}");
    assert_eq!(outcome.signal, Some(libc::SIGTERM), "{outcome:?}");
    // Well within the 5 s grace period: the drain is the 500 ms request.
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn a_second_sigterm_during_the_drain_ends_the_process_at_once() {
    let (records, _collector) = records_listener();
    let (running, addr) = start_service(&records, &[]);
    let slow = get(&addr, "/slow");
    thread::sleep(Duration::from_millis(100));
    running.signal(libc::SIGTERM);
    thread::sleep(Duration::from_millis(300));
    running.signal(libc::SIGTERM);
    let second = Instant::now();
    let outcome = running.finish();
    let took = second.elapsed();
    let response = slow.join().unwrap().unwrap_or_default();

    assert!(
        !response.contains("200 OK"),
        "the drain was not cut short: {response:?}"
    );
    assert!(!outcome.stdout.contains("drained"), "{outcome:?}");
    assert_eq!(outcome.signal, Some(libc::SIGTERM), "{outcome:?}");
    assert!(took < Duration::from_millis(500), "{took:?}");
}

#[test]
fn a_hung_async_hook_is_named_and_cut_at_its_bound() {
    let (records, collector) = records_listener();
    let (running, _addr) = start_service(&records, &["--hung-exporter"]);
    running.signal(libc::SIGTERM);
    let sent = Instant::now();
    let outcome = running.finish();
    let took = sent.elapsed();
    assert_eq!(
        outcome.stderr,
        format!(
            "atexit: async exit hook `stuck-exporter` (registered at examples/axum_shutdown.rs:{}) did not finish within 300ms; skipped\n",
            outcome
                .stderr
                .split("axum_shutdown.rs:")
                .nth(1)
                .and_then(|rest| rest.split(')').next())
                .unwrap_or("?")
        ),
        "{outcome:?}"
    );
    // The older hook still ran, and the process still died of SIGTERM.
    assert_eq!(
        collector.join().unwrap(),
        "0 records, stop requested by Some(15)\n"
    );
    assert_eq!(outcome.signal, Some(libc::SIGTERM), "{outcome:?}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
}
