//! L4 data path through the real binary: integrity of bulk transfers both ways (splice and
//! copy paths), half-close in both directions, and the access-log line of a connection.

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::{Arc, Mutex};
use std::thread;

use common::*;

/// Bytes sent each way in the bulk tests (≥ 100 MiB, not a multiple of the block size).
const BULK: u64 = 100 * MIB + 12_345;

/// What a backend handler observed, reported back to the test thread.
type Reports = Arc<Mutex<Vec<Result<Verified, String>>>>;

/// A backend that, on each connection, sends `down` (len bytes) then shuts its write side,
/// while checking that it receives exactly `up` until EOF. Both directions run at once.
fn full_duplex_backend(
    up: Arc<Pattern>,
    down: Arc<Pattern>,
    len: u64,
    reports: Reports,
) -> Backend {
    Backend::spawn(move |mut s| {
        let mut w = s.try_clone().unwrap();
        let down = down.clone();
        let writer = thread::spawn(move || {
            let r = down.write_to(&mut w, len);
            shutdown_write(&w);
            r
        });
        let got = up.read_verify(&mut s, len + MIB).map_err(|e| e.to_string());
        let wrote = writer.join().unwrap();
        let report = match (got, wrote) {
            (Ok(v), Ok(())) => Ok(v),
            (Err(e), _) => Err(format!("backend read: {e}")),
            (_, Err(e)) => Err(format!("backend write: {e}")),
        };
        reports.lock().unwrap().push(report);
    })
}

fn bulk_both_ways(splice: bool) {
    let up = Arc::new(Pattern::new(11));
    let down = Arc::new(Pattern::new(22));
    let reports: Reports = Arc::default();
    let be = full_duplex_backend(up.clone(), down.clone(), BULK, reports.clone());
    let halb = Conf::new()
        .backend(&format!("splice = {splice}"))
        .server("s1", be.addr)
        .start();

    let mut c = connect(halb.addr);
    let client_addr = c.local_addr().unwrap();
    let mut w = c.try_clone().unwrap();
    let writer = thread::spawn(move || {
        let r = up.write_to(&mut w, BULK);
        shutdown_write(&w);
        r
    });
    let got = down.read_verify(&mut c, BULK + MIB).expect("client read");
    writer.join().unwrap().expect("client write");
    assert!(
        got.is_exact(BULK),
        "client received {got:?}, expected exactly {BULK} matching bytes"
    );
    drop(c);

    let log = halb.access_log_of(client_addr);
    let report = reports.lock().unwrap().pop().expect("backend report");
    let report = report.expect("backend side failed");
    assert!(
        report.is_exact(BULK),
        "backend received {report:?}, expected exactly {BULK} matching bytes"
    );
    assert_eq!(log.num("bytes_in"), BULK, "{}", log.line);
    assert_eq!(log.num("bytes_out"), BULK, "{}", log.line);
    assert_eq!(log.get("end"), "closed", "{}", log.line);
    assert_eq!(log.get("server"), "s1", "{}", log.line);
}

/// ≥ 100 MiB each way at once through the zero-copy splice path (the default).
#[test]
fn bulk_integrity_both_ways_splice() {
    bulk_both_ways(true);
}

/// ≥ 100 MiB each way at once through the copy path (`splice = false`).
#[test]
fn bulk_integrity_both_ways_copy() {
    bulk_both_ways(false);
}

/// Client sends a request and shuts its write side; the backend must see EOF, and only
/// then sends its (large) reply; the client gets all of it and then EOF.
fn half_close_client_first(splice: bool) {
    const REQ: u64 = 300_001;
    const REPLY: u64 = 3 * MIB + 17;
    let req = Arc::new(Pattern::new(31));
    let reply = Arc::new(Pattern::new(32));
    let reports: Reports = Arc::default();
    let (rq, rp, rep) = (req.clone(), reply.clone(), reports.clone());
    let be = Backend::spawn(move |mut s| {
        // read_verify only returns Ok once it has seen EOF: the client's FIN came through.
        let report = match rq.read_verify(&mut s, REQ + MIB) {
            Ok(v) => rp
                .write_to(&mut s, REPLY)
                .map(|_| v)
                .map_err(|e| format!("reply after EOF: {e}")),
            Err(e) => Err(format!("no EOF from the client side: {e}")),
        };
        rep.lock().unwrap().push(report);
    });
    let halb = Conf::new()
        .backend(&format!("splice = {splice}"))
        .server("s1", be.addr)
        .start();

    let mut c = connect(halb.addr);
    let client_addr = c.local_addr().unwrap();
    req.write_to(&mut c, REQ).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let got = reply
        .read_verify(&mut c, REPLY + MIB)
        .expect("client: reply then EOF");
    assert!(got.is_exact(REPLY), "client got {got:?}");
    let seen = reports.lock().unwrap().pop().expect("backend report");
    let seen = seen.expect("backend");
    assert!(seen.is_exact(REQ), "backend got {seen:?}");

    let log = halb.access_log_of(client_addr);
    assert_eq!(log.num("bytes_in"), REQ, "{}", log.line);
    assert_eq!(log.num("bytes_out"), REPLY, "{}", log.line);
    assert_eq!(log.get("end"), "closed", "{}", log.line);
}

#[test]
fn half_close_client_first_splice() {
    half_close_client_first(true);
}

#[test]
fn half_close_client_first_copy() {
    half_close_client_first(false);
}

/// The backend sends a greeting and shuts its write side first; the client sees EOF but
/// keeps sending, and everything it sends still reaches the backend.
fn half_close_server_first(splice: bool) {
    const GREETING: u64 = 512 * 1024 + 3;
    const UPLOAD: u64 = 4 * MIB + 9;
    let greeting = Arc::new(Pattern::new(41));
    let upload = Arc::new(Pattern::new(42));
    let reports: Reports = Arc::default();
    let (g, u, rep) = (greeting.clone(), upload.clone(), reports.clone());
    let be = Backend::spawn(move |mut s| {
        let report = match g.write_to(&mut s, GREETING) {
            Ok(()) => {
                s.shutdown(Shutdown::Write).unwrap();
                u.read_verify(&mut s, UPLOAD + MIB)
                    .map_err(|e| format!("backend read after its shutdown: {e}"))
            }
            Err(e) => Err(format!("greeting: {e}")),
        };
        rep.lock().unwrap().push(report);
    });
    let halb = Conf::new()
        .backend(&format!("splice = {splice}"))
        .server("s1", be.addr)
        .start();

    let mut c = connect(halb.addr);
    let client_addr = c.local_addr().unwrap();
    // The greeting, then EOF, while our write side is still open.
    let got = greeting
        .read_verify(&mut c, GREETING + MIB)
        .expect("client: greeting then EOF");
    assert!(got.is_exact(GREETING), "client got {got:?}");
    // Keep sending after having seen the server's FIN.
    upload.write_to(&mut c, UPLOAD).expect("upload after EOF");
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_end(&mut c), End::Eof, "connection should end cleanly");
    let seen = reports.lock().unwrap().pop().expect("backend report");
    let seen = seen.expect("backend");
    assert!(seen.is_exact(UPLOAD), "backend got {seen:?}");

    let log = halb.access_log_of(client_addr);
    assert_eq!(log.num("bytes_in"), UPLOAD, "{}", log.line);
    assert_eq!(log.num("bytes_out"), GREETING, "{}", log.line);
    assert_eq!(log.get("end"), "closed", "{}", log.line);
}

#[test]
fn half_close_server_first_splice() {
    half_close_server_first(true);
}

#[test]
fn half_close_server_first_copy() {
    half_close_server_first(false);
}

/// A backend speaking a tiny length-prefixed protocol: the client sends `N\n` and N bytes,
/// the server answers with 2N+5 bytes and closes.
fn sized_reply_backend() -> Backend {
    Backend::spawn(|mut s| {
        let Ok(line) = read_line(&mut s) else { return };
        let Ok(n) = line.trim().parse::<u64>() else {
            return;
        };
        let mut body = vec![0u8; n as usize];
        if s.read_exact(&mut body).is_err() {
            return;
        }
        let _ = s.write_all(&vec![b'r'; (2 * n + 5) as usize]);
    })
}

/// Each finished connection produces exactly one access-log line naming the client,
/// frontend, backend and server, with the exact byte counts each way.
#[test]
fn access_log_one_line_per_connection_with_byte_counts() {
    let be = sized_reply_backend();
    let halb = Conf::new().server("s1", be.addr).start();

    let mut expected = Vec::new();
    for n in [1000u64, 70_000] {
        let mut c = connect(halb.addr);
        let head = format!("{n}\n");
        c.write_all(head.as_bytes()).unwrap();
        c.write_all(&vec![b'q'; n as usize]).unwrap();
        let reply = read_to_end_bounded(&mut c, 1 << 20).expect("reply then EOF");
        assert_eq!(reply.len() as u64, 2 * n + 5);
        expected.push((c.local_addr().unwrap(), head.len() as u64 + n, 2 * n + 5));
    }
    let logs = halb.wait_access_logs(2, LOG_TIMEOUT);
    // Give a duplicate line a chance to show up before counting (not a timing assertion:
    // a correct halb never prints a third line however long we wait).
    thread::sleep(std::time::Duration::from_millis(300));
    let logs = if halb.access_logs().len() > logs.len() {
        halb.access_logs()
    } else {
        logs
    };
    assert_eq!(
        logs.len(),
        2,
        "exactly one line per connection:\n{}",
        halb.output_text()
    );
    for (client, bytes_in, bytes_out) in expected {
        let c = client.to_string();
        let mine: Vec<_> = logs.iter().filter(|l| l.get("client") == c).collect();
        assert_eq!(mine.len(), 1, "one line for client {c}: {logs:#?}");
        let l = mine[0];
        assert_eq!(l.get("frontend"), "fe", "{}", l.line);
        assert_eq!(l.get("backend"), "be", "{}", l.line);
        assert_eq!(l.get("server"), "s1", "{}", l.line);
        assert_eq!(l.num("bytes_in"), bytes_in, "{}", l.line);
        assert_eq!(l.num("bytes_out"), bytes_out, "{}", l.line);
        assert_eq!(l.num("retries"), 0, "{}", l.line);
        assert_eq!(l.get("end"), "closed", "{}", l.line);
        let _ = l.num("duration_ms");
    }
}
