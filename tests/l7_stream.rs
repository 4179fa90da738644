//! Large HTTP bodies stream through halb with bounded buffers: a 1 GiB download and a
//! 1 GiB upload (Content-Length and chunked) arrive byte-exact, while halb's resident
//! memory stays far below the body size.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;

const GIB: u64 = 1 << 30;
/// halb's resident set must stay under this while a 1 GiB body goes through.
const RSS_BOUND_KIB: u64 = 64 * 1024;

/// halb's resident set size in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Samples halb's RSS every 50 ms until dropped; `max()` is the largest seen.
struct RssWatch {
    stop: Arc<AtomicBool>,
    max: Arc<AtomicU64>,
    thread: Option<thread::JoinHandle<()>>,
}

impl RssWatch {
    fn start(pid: u32) -> RssWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let max = Arc::new(AtomicU64::new(0));
        let (s, m) = (Arc::clone(&stop), Arc::clone(&max));
        let thread = thread::spawn(move || {
            // Bounded: at most 10 minutes of sampling.
            for _ in 0..12_000 {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                m.fetch_max(rss_kib(pid), Ordering::Relaxed);
                thread::sleep(Duration::from_millis(50));
            }
        });
        RssWatch {
            stop,
            max,
            thread: Some(thread),
        }
    }

    fn max(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.max.load(Ordering::Relaxed)
    }
}

/// A one-shot origin: for each connection, reads one request head, then either streams
/// `download` bytes of the pattern (Content-Length) or reads the request body
/// (Content-Length or chunked), verifies it against the pattern and answers with the
/// number of body bytes that matched.
fn origin(download: u64) -> SocketAddr {
    let listener = TcpListener::bind((fresh_ip(), 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().take(4).flatten() {
            thread::spawn(move || {
                let _ = serve_one(stream, download);
            });
        }
    });
    addr
}

fn serve_one(stream: TcpStream, download: u64) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut out = stream.try_clone()?;
    let mut r = BufReader::with_capacity(BLOCK, stream);
    let mut length = None;
    let mut chunked = false;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end().to_ascii_lowercase();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("content-length:") {
            length = v.trim().parse::<u64>().ok();
        }
        if line.starts_with("transfer-encoding:") && line.ends_with("chunked") {
            chunked = true;
        }
    }
    if download > 0 {
        write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Length: {download}\r\nConnection: close\r\n\r\n"
        )?;
        return Pattern::new(7).write_to(&mut out, download);
    }
    let verified = if chunked {
        let mut body = ChunkedReader {
            inner: &mut r,
            left: 0,
            done: false,
        };
        Pattern::new(9).read_verify(&mut body, u64::MAX)?
    } else {
        let len = length.unwrap_or(0);
        Pattern::new(9).read_verify(&mut (&mut r).take(len), len)?
    };
    let body = if verified.is_exact(verified.bytes) {
        format!("{}", verified.bytes)
    } else {
        format!("mismatch after {}", verified.bytes)
    };
    write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Decodes a chunked body (no extensions, no trailers: what the test client sends).
struct ChunkedReader<'a, R: BufRead> {
    inner: &'a mut R,
    left: u64,
    done: bool,
}

impl<R: BufRead> Read for ChunkedReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            self.inner.read_line(&mut line)?;
            if line == "\r\n" {
                line.clear();
                self.inner.read_line(&mut line)?;
            }
            self.left = u64::from_str_radix(line.trim(), 16)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            if self.left == 0 {
                self.done = true;
                let mut end = String::new();
                self.inner.read_line(&mut end)?;
                return Ok(0);
            }
        }
        let n = (buf.len() as u64).min(self.left) as usize;
        let got = self.inner.read(&mut buf[..n])?;
        self.left -= got as u64;
        if got == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if self.left == 0 {
            let mut crlf = [0u8; 2];
            self.inner.read_exact(&mut crlf)?;
            self.left = 0;
        }
        Ok(got)
    }
}

/// Writes the pattern as a chunked body in 64 KiB chunks.
struct ChunkedWriter<W: Write>(W);

impl<W: Write> Write for ChunkedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        write!(self.0, "{:x}\r\n", buf.len())?;
        self.0.write_all(buf)?;
        self.0.write_all(b"\r\n")?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

fn client(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
    s
}

/// Reads a response head; returns it as text.
fn read_head(r: &mut impl BufRead) -> String {
    let mut head = String::new();
    for _ in 0..100 {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        head.push_str(&line);
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    head
}

#[test]
fn a_1_gib_download_streams_through_with_bounded_memory() {
    let halb = Conf::http().server("s1", origin(GIB)).start();
    let watch = RssWatch::start(halb.pid());
    let mut s = client(halb.addr);
    s.write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut r = BufReader::with_capacity(BLOCK, s);
    let head = read_head(&mut r);
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(
        head.contains(&format!("Content-Length: {GIB}\r\n")),
        "{head}"
    );
    let verified = Pattern::new(7).read_verify(&mut r, GIB).unwrap();
    assert!(verified.is_exact(GIB), "{verified:?}");
    let max = watch.max();
    eprintln!("halb max RSS: {max} KiB");
    assert!(
        max < RSS_BOUND_KIB,
        "halb grew to {max} KiB while streaming 1 GiB"
    );
}

#[test]
fn a_1_gib_upload_streams_through_with_bounded_memory() {
    for chunked in [false, true] {
        let halb = Conf::http().server("s1", origin(0)).start();
        let watch = RssWatch::start(halb.pid());
        let mut s = client(halb.addr);
        if chunked {
            s.write_all(b"PUT /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
                .unwrap();
            let mut w = ChunkedWriter(&mut s);
            Pattern::new(9).write_to(&mut w, GIB).unwrap();
            s.write_all(b"0\r\n\r\n").unwrap();
        } else {
            write!(
                s,
                "PUT /up HTTP/1.1\r\nHost: t\r\nContent-Length: {GIB}\r\n\r\n"
            )
            .unwrap();
            Pattern::new(9).write_to(&mut s, GIB).unwrap();
        }
        let mut r = BufReader::new(s);
        let head = read_head(&mut r);
        assert!(
            head.starts_with("HTTP/1.1 200 "),
            "chunked={chunked}: {head}"
        );
        let mut body = String::new();
        r.read_to_string(&mut body).unwrap();
        assert_eq!(body, GIB.to_string(), "chunked={chunked}");
        let max = watch.max();
        eprintln!("halb max RSS (chunked={chunked}): {max} KiB");
        eprintln!("halb max RSS: {max} KiB");
        assert!(
            max < RSS_BOUND_KIB,
            "halb grew to {max} KiB while receiving 1 GiB (chunked={chunked})"
        );
    }
}
