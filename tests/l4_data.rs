//! L4 data path through the real binary: integrity of bulk transfers both ways (splice and
//! copy paths), half-close in both directions, and the access-log line of a connection.

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread;

use common::*;

/// Bytes sent each way in the bulk tests (≥ 100 MiB, not a multiple of the block size).
const BULK: u64 = 100 * MIB + 12_345;

/// What a backend handler observed, sent back to the test thread.
type Report = Result<Verified, String>;

/// Wait (bounded) for the backend's report.
fn backend_report(rx: &Receiver<Report>) -> Verified {
    rx.recv_timeout(IO_TIMEOUT * 3)
        .expect("backend handler reported nothing")
        .expect("backend side failed")
}

/// A backend that, on each connection, sends `down` (len bytes) then shuts its write side,
/// while checking that it receives exactly `up` until EOF. Both directions run at once.
fn full_duplex_backend(
    up: Arc<Pattern>,
    down: Arc<Pattern>,
    len: u64,
    reports: Sender<Report>,
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
        let _ = reports.send(report);
    })
}

fn bulk_both_ways(splice: bool) {
    let up = Arc::new(Pattern::new(11));
    let down = Arc::new(Pattern::new(22));
    let (reports, rx) = channel::<Report>();
    let be = full_duplex_backend(up.clone(), down.clone(), BULK, reports);
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
    let report = backend_report(&rx);
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
    let (reports, rx) = channel::<Report>();
    let (rq, rp, rep) = (req.clone(), reply.clone(), reports);
    let be = Backend::spawn(move |mut s| {
        // read_verify only returns Ok once it has seen EOF: the client's FIN came through.
        let report = match rq.read_verify(&mut s, REQ + MIB) {
            Ok(v) => rp
                .write_to(&mut s, REPLY)
                .map(|_| v)
                .map_err(|e| format!("reply after EOF: {e}")),
            Err(e) => Err(format!("no EOF from the client side: {e}")),
        };
        let _ = rep.send(report);
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
    let seen = backend_report(&rx);
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
    let (reports, rx) = channel::<Report>();
    let (g, u, rep) = (greeting.clone(), upload.clone(), reports);
    let be = Backend::spawn(move |mut s| {
        let report = match g.write_to(&mut s, GREETING) {
            Ok(()) => {
                s.shutdown(Shutdown::Write).unwrap();
                u.read_verify(&mut s, UPLOAD + MIB)
                    .map_err(|e| format!("backend read after its shutdown: {e}"))
            }
            Err(e) => Err(format!("greeting: {e}")),
        };
        let _ = rep.send(report);
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
    let seen = backend_report(&rx);
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

/// Connections cut mid-transfer (client resets while data sits in the proxy's buffers or
/// pipes, either direction) must not leak a byte into later connections. One shard and
/// `maxpipes = 2`: each aborted connection holds the only pipe pair; once its log line is
/// out, the clean transfers that follow would get that pair back if it were kept.
#[test]
fn transfers_after_aborted_ones_are_intact() {
    let be = Backend::commands();
    let halb = Conf::new()
        .global("maxpipes = 2")
        .server("s1", be.addr)
        .start();
    let clean_down_and_up = |seed: u64| {
        let len = 3 * MIB + 5;
        let mut c = connect(halb.addr);
        c.write_all(format!("down {len} {seed}\n").as_bytes())
            .unwrap();
        let p = Pattern::new(seed);
        let mut v = Verifier::new(&p);
        let mut buf = vec![0u8; 64 * 1024];
        while v.offset < len {
            let n = c.read(&mut buf).expect("clean download");
            assert!(n > 0, "early EOF at {}", v.offset);
            v.feed(&buf[..n]);
        }
        assert!(v.result().is_exact(len), "seed {seed}: {:?}", v.result());
        drop(c);

        let mut c = connect(halb.addr);
        c.write_all(format!("up {len} {seed}\n").as_bytes())
            .unwrap();
        p.write_to(&mut c, len).unwrap();
        assert_eq!(read_line(&mut c).expect("verdict"), "ok", "seed {seed}");
    };
    for round in 0..2u64 {
        // Download aborted after 100 KiB of 8 MiB: the rest is in flight in the proxy.
        let mut c = connect(halb.addr);
        let client = c.local_addr().unwrap();
        c.write_all(format!("down {} {}\n", 8 * MIB, 100 + round).as_bytes())
            .unwrap();
        let mut first = vec![0u8; 100 * 1024];
        c.read_exact(&mut first).expect("start of the download");
        reset(c);
        let l = halb.access_log_of(client);
        assert_eq!(l.get("end"), "client_error", "{}", l.line);
        assert!(l.num("bytes_out") < 8 * MIB, "{}", l.line);
        clean_down_and_up(200 + round);

        // Upload to a server that does not read (2 s), reset once the buffers are full.
        let mut c = connect(halb.addr);
        let client = c.local_addr().unwrap();
        c.write_all(b"stall\n").unwrap();
        c.set_write_timeout(Some(std::time::Duration::from_millis(300)))
            .unwrap();
        let junk = vec![0x5au8; 64 * 1024];
        for _ in 0..256 {
            if c.write_all(&junk).is_err() {
                break; // buffers full (write timed out)
            }
        }
        reset(c);
        let l = halb.access_log_of(client);
        assert_ne!(l.get("end"), "closed", "{}", l.line);
        clean_down_and_up(300 + round);
    }
}

/// Many concurrent full-duplex transfers on two shards with only one pipe pair per shard
/// (`maxpipes = 2`) and a non-default pipe size: some connections splice, the others fall
/// back to copying, and every stream arrives intact both ways.
#[test]
fn concurrent_transfers_with_scarce_pipes_are_intact() {
    const CONNS: u64 = 8;
    const LEN: u64 = 6 * MIB + 1;
    let up = Arc::new(Pattern::new(51));
    let down = Arc::new(Pattern::new(52));
    let (reports, rx) = channel::<Report>();
    let be = full_duplex_backend(up.clone(), down.clone(), LEN, reports);
    let halb = Conf::new()
        .shards(2)
        .global("maxpipes = 2")
        .global("pipesize = 262144")
        .server("s1", be.addr)
        .start();
    let clients: Vec<_> = (0..CONNS)
        .map(|_| {
            let (up, down, addr) = (up.clone(), down.clone(), halb.addr);
            thread::spawn(move || -> Result<Verified, String> {
                let mut c = try_connect(addr).map_err(|e| e.to_string())?;
                let mut w = c.try_clone().unwrap();
                let writer = thread::spawn(move || {
                    let r = up.write_to(&mut w, LEN);
                    shutdown_write(&w);
                    r
                });
                let got = down.read_verify(&mut c, LEN + MIB);
                writer.join().unwrap().map_err(|e| e.to_string())?;
                got.map_err(|e| e.to_string())
            })
        })
        .collect();
    for (i, c) in clients.into_iter().enumerate() {
        let got = c.join().unwrap().expect("client");
        assert!(got.is_exact(LEN), "client {i} got {got:?}");
    }
    for _ in 0..CONNS {
        let seen = backend_report(&rx);
        assert!(seen.is_exact(LEN), "backend got {seen:?}");
    }
    let logs = halb.wait_access_logs(CONNS as usize, LOG_TIMEOUT);
    for l in logs {
        assert_eq!(l.get("end"), "closed", "{}", l.line);
        assert_eq!((l.num("bytes_in"), l.num("bytes_out")), (LEN, LEN));
    }
}
