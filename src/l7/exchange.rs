//! One request/response exchange on an established server connection: the request body
//! goes up while the response comes down, concurrently (so `Expect: 100-continue`, early
//! responses and large uploads all work), each through a bounded buffer.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::pin::pin;
use std::task::Poll;

use futures_lite::future::poll_fn;

use super::io::{fill, write_all, Buffer, Wait};
use crate::http::{
    parse_response, response_framing, BodyFraming, ChunkedDecoder, HttpError, Limits, Method,
    Parsed, ResponseHead, Version,
};
use crate::l4::idle::IdleWatch;
use crate::runtime::shard::{Shard, COPY_BUFFER};
use crate::stream::Stream;
use crate::sys;

/// Limits on a server's response head: it must fit in one buffer.
pub const RESPONSE_LIMITS: Limits = Limits {
    max_head: COPY_BUFFER - 1,
    max_request_line: COPY_BUFFER - 1,
    max_headers: 256,
};

/// Response bytes copied into the head's write so head and start of body go in one
/// `send`.
const COALESCE: usize = 16 * 1024;

/// What is left of a message body to forward.
#[derive(Debug, Clone)]
pub enum BodyLeft {
    /// Nothing (no body, or all of it forwarded).
    Done,
    /// This many bytes.
    Length(u64),
    /// The rest of a chunked body.
    Chunked(ChunkedDecoder),
}

impl BodyLeft {
    /// Whether the body has been forwarded completely.
    pub fn is_done(&self) -> bool {
        matches!(self, BodyLeft::Done)
    }

    /// Take what `data` holds of the body: returns how many bytes of `data` belong to it
    /// (to forward as they are) and the body bytes among them (chunk data for chunked).
    pub fn advance(&mut self, data: &[u8]) -> Result<(usize, u64), HttpError> {
        match self {
            BodyLeft::Done => Ok((0, 0)),
            BodyLeft::Length(left) => {
                let n = (*left).min(data.len() as u64);
                *left -= n;
                if *left == 0 {
                    *self = BodyLeft::Done;
                }
                Ok((n as usize, n))
            }
            BodyLeft::Chunked(decoder) => {
                let p = decoder.advance(data)?;
                if p.done {
                    *self = BodyLeft::Done;
                }
                Ok((p.consumed, p.data as u64))
            }
        }
    }
}

/// Why the request body could not be forwarded.
#[derive(Debug)]
pub enum UploadError {
    /// The client closed before the end of the body.
    ClientClosed,
    /// Reading the client failed.
    Client(io::Error),
    /// Writing to the server failed.
    Server(io::Error),
    /// The chunked framing of the body is invalid (400).
    BadBody(HttpError),
    /// The body is larger than `max_body_size` (413).
    TooLarge,
}

/// Everything the upload needs.
pub struct Upload<'a> {
    pub shard: &'a Shard,
    pub client: &'a Stream,
    pub buf: &'a mut Buffer,
    pub capacity: usize,
    pub server: &'a Stream,
    pub watch: &'a IdleWatch,
    pub left: BodyLeft,
    /// Body bytes forwarded so far (checked against `max_body`).
    pub body_bytes: u64,
    pub max_body: Option<u64>,
    pub client_wait: Wait,
    pub server_wait: Wait,
    /// Request bytes received (head and body), for the log.
    pub bytes_in: &'a Cell<u64>,
}

impl Upload<'_> {
    /// Forward the rest of the request body. Bytes after its end stay in the buffer (the
    /// next pipelined request).
    pub async fn run(&mut self) -> Result<(), UploadError> {
        while !self.left.is_done() {
            if self.buf.is_empty() {
                let n = fill(
                    self.shard,
                    self.client,
                    self.buf,
                    self.capacity,
                    self.watch,
                    self.client_wait,
                )
                .await
                .map_err(UploadError::Client)?;
                if n == 0 {
                    return Err(UploadError::ClientClosed);
                }
                self.watch.touch();
            }
            let (take, body) = self
                .left
                .advance(self.buf.bytes())
                .map_err(UploadError::BadBody)?;
            self.body_bytes += body;
            if self.max_body.is_some_and(|max| self.body_bytes > max) {
                return Err(UploadError::TooLarge);
            }
            write_all(
                self.server,
                &self.buf.bytes()[..take],
                self.watch,
                self.server_wait,
            )
            .await
            .map_err(UploadError::Server)?;
            self.watch.touch();
            self.bytes_in.set(self.bytes_in.get() + take as u64);
            self.buf.consume(take);
        }
        Ok(())
    }
}

/// What the response looked like, once forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Downloaded {
    /// A final response was forwarded completely.
    Complete {
        status: u16,
        /// The server connection may be reused.
        server_keep: bool,
        /// The client was told the connection stays open.
        client_keep: bool,
    },
    /// `101 Switching Protocols` was relayed: the connection becomes a tunnel.
    Tunnel,
}

/// Why no (complete) response reached the client.
#[derive(Debug)]
pub enum DownloadError {
    /// The server closed or failed before sending any response byte. `stale` if it was a
    /// clean close or reset (the classic reused-connection race).
    NoResponse {
        stale: bool,
        error: Option<io::Error>,
    },
    /// The server's response head or framing was invalid; nothing was sent (502).
    BadResponse(HttpError),
    /// The server timed out (`timeouts.server`), see `started`.
    Timeout { started: bool },
    /// The response had started when the server failed or sent an invalid body.
    ServerFailed,
    /// The client failed while the response was sent.
    Client(io::Error),
}

/// Writes a response head (edits applied) to `out`: `(out, head, buf, close)`.
pub type WriteHead<'a> = dyn Fn(&mut Vec<u8>, &ResponseHead, &[u8], bool) + 'a;

/// Everything the download needs.
pub struct Download<'a> {
    pub shard: &'a Shard,
    pub server: &'a Stream,
    pub buf: &'a mut Buffer,
    pub client: &'a Stream,
    pub watch: &'a IdleWatch,
    pub method: Method,
    pub client_version: Version,
    /// The client connection may stay open if the response allows it.
    pub client_keep: bool,
    /// The request asked for an upgrade (a 101 is acceptable).
    pub upgrade: bool,
    pub client_wait: Wait,
    pub server_wait: Wait,
    /// Where the response head is built.
    pub out: &'a mut Vec<u8>,
    /// Response bytes sent to the client, for the log.
    pub bytes_out: &'a Cell<u64>,
    /// Set once the response head has been received.
    pub head_at: &'a Cell<Option<std::time::Instant>>,
    /// Writes the final response head (status line and fields, edits applied) to `out`:
    /// `(out, head, buf, connection close?)`.
    pub write_head: &'a WriteHead<'a>,
}

impl Download<'_> {
    /// Receive the response (skipping interim ones after relaying them) and forward it.
    pub async fn run(&mut self) -> Result<Downloaded, DownloadError> {
        let mut received_any = false;
        loop {
            // Parse what is there, or read more.
            let head = if self.buf.is_empty() {
                None
            } else {
                match parse_response(self.buf.bytes(), &RESPONSE_LIMITS) {
                    Ok(Parsed::Complete(h)) => Some(h),
                    Ok(Parsed::Partial) => None,
                    Err(e) => return Err(DownloadError::BadResponse(e)),
                }
            };
            let Some(head) = head else {
                let got = fill(
                    self.shard,
                    self.server,
                    self.buf,
                    COPY_BUFFER,
                    self.watch,
                    self.server_wait,
                )
                .await;
                match got {
                    Ok(0) => {
                        return Err(self.no_response(received_any, None));
                    }
                    Ok(_) => {
                        received_any = true;
                        self.watch.touch();
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::OutOfMemory => {
                        return Err(DownloadError::BadResponse(
                            HttpError::HeadTooLarge.in_response(),
                        ))
                    }
                    Err(e) => return Err(self.no_response(received_any, Some(e))),
                }
            };
            if (100..200).contains(&head.status) && head.status != 101 {
                // Interim (100 Continue, 103 Early Hints): relayed to HTTP/1.1 clients
                // (RFC 9110 §15.2: never to HTTP/1.0 ones), then the final one follows.
                if self.client_version == Version::Http11 {
                    self.out.clear();
                    (self.write_head)(self.out, &head, self.buf.bytes(), false);
                    self.send_out().await?;
                }
                self.buf.consume(head.head_len);
                continue;
            }
            self.head_at.set(Some(std::time::Instant::now()));
            return self.forward_final(head).await;
        }
    }

    fn no_response(&self, received_any: bool, error: Option<io::Error>) -> DownloadError {
        if self.watch.expired() == Some(crate::l4::End::ServerTimeout) {
            return DownloadError::Timeout { started: false };
        }
        if received_any {
            // A truncated head.
            return DownloadError::BadResponse(HttpError::BadRequestLine.in_response());
        }
        let stale = match &error {
            None => true,
            Some(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
            ),
        };
        DownloadError::NoResponse { stale, error }
    }

    async fn send_out(&mut self) -> Result<(), DownloadError> {
        write_all(self.client, self.out, self.watch, self.client_wait)
            .await
            .map_err(DownloadError::Client)?;
        self.bytes_out
            .set(self.bytes_out.get() + self.out.len() as u64);
        self.watch.touch();
        Ok(())
    }

    async fn forward_final(&mut self, head: ResponseHead) -> Result<Downloaded, DownloadError> {
        let framing = response_framing(self.method, &head, self.buf.bytes())
            .map_err(DownloadError::BadResponse)?;
        let mut left = match framing {
            BodyFraming::Tunnel if self.upgrade && head.status == 101 => {
                self.out.clear();
                (self.write_head)(self.out, &head, self.buf.bytes(), false);
                self.buf.consume(head.head_len);
                self.send_out().await?;
                return Ok(Downloaded::Tunnel);
            }
            BodyFraming::Tunnel => {
                return Err(DownloadError::BadResponse(
                    HttpError::BadRequestLine.in_response(),
                ))
            }
            // HTTP/1.0 has no chunked (RFC 9112 §7): the request went out as 1.0, so a
            // chunked answer is a broken server.
            BodyFraming::Chunked if self.client_version == Version::Http10 => {
                return Err(DownloadError::BadResponse(
                    HttpError::TransferEncodingInHttp10.in_response(),
                ))
            }
            BodyFraming::None => BodyLeft::Done,
            BodyFraming::Length(n) => BodyLeft::Length(n),
            BodyFraming::Chunked => BodyLeft::Chunked(ChunkedDecoder::new()),
            BodyFraming::CloseDelimited => BodyLeft::Length(u64::MAX),
        };
        let close_delimited = framing == BodyFraming::CloseDelimited;
        let client_keep = self.client_keep && !close_delimited;
        let server_keep = head.keep_alive(self.buf.bytes()) && !close_delimited;
        let status = head.status;

        // The head, plus what is already here of the body when it is small. A server
        // that wrote the head and the body separately (sendfile) usually has the body
        // in flight already: one non-blocking look saves a send and a wait.
        self.out.clear();
        (self.write_head)(self.out, &head, self.buf.bytes(), !client_keep);
        self.buf.consume(head.head_len);
        if self.buf.is_empty() && !left.is_done() {
            let _ = super::io::fill_now(self.shard, self.server, self.buf, COPY_BUFFER);
        }
        if !self.buf.is_empty() && self.buf.len() <= COALESCE {
            let (take, _) = left
                .advance(self.buf.bytes())
                .map_err(|e| DownloadError::BadResponse(e.in_response()))?;
            self.out.extend_from_slice(&self.buf.bytes()[..take]);
            self.buf.consume(take);
        }
        self.send_out().await?;

        // The rest of the body.
        while !left.is_done() {
            if self.buf.is_empty() {
                let got = fill(
                    self.shard,
                    self.server,
                    self.buf,
                    COPY_BUFFER,
                    self.watch,
                    self.server_wait,
                )
                .await;
                match got {
                    Ok(0) if close_delimited => break,
                    Ok(0) => return Err(self.failed_after_start()),
                    Ok(_) => self.watch.touch(),
                    Err(_) => return Err(self.failed_after_start()),
                }
            }
            let (take, _) = left
                .advance(self.buf.bytes())
                .map_err(|_| DownloadError::ServerFailed)?;
            write_all(
                self.client,
                &self.buf.bytes()[..take],
                self.watch,
                self.client_wait,
            )
            .await
            .map_err(DownloadError::Client)?;
            self.watch.touch();
            self.bytes_out.set(self.bytes_out.get() + take as u64);
            self.buf.consume(take);
        }
        // Stray bytes after the response: the connection is out of step, do not reuse.
        let server_keep = server_keep && self.buf.is_empty();
        Ok(Downloaded::Complete {
            status,
            server_keep,
            client_keep,
        })
    }

    fn failed_after_start(&self) -> DownloadError {
        if self.watch.expired() == Some(crate::l4::End::ServerTimeout) {
            DownloadError::Timeout { started: true }
        } else {
            DownloadError::ServerFailed
        }
    }
}

/// The outcome of running an upload and a download together.
pub struct Joined {
    /// `None`: the download finished while the upload was still waiting (the server
    /// answered before the whole body arrived); the client connection must close.
    pub upload: Option<Result<(), UploadError>>,
    pub download: Result<Downloaded, DownloadError>,
}

/// Run the upload and the download on the same task until the download is done. If the
/// upload fails, the server socket is shut down so that the download stops too (the
/// caller then reports the upload's error).
pub async fn run_both(
    upload: impl Future<Output = Result<(), UploadError>>,
    download: impl Future<Output = Result<Downloaded, DownloadError>>,
    server_fd: std::os::fd::RawFd,
) -> Joined {
    let mut up = pin!(upload);
    let mut down = pin!(download);
    let mut up_out: Option<Result<(), UploadError>> = None;
    let mut down_out: Option<Result<Downloaded, DownloadError>> = None;
    poll_fn(|cx| {
        if up_out.is_none() {
            if let Poll::Ready(r) = up.as_mut().poll(cx) {
                if r.is_err() {
                    let _ = sys::shutdown(server_fd, Shutdown::Both);
                }
                up_out = Some(r);
            }
        }
        if down_out.is_none() {
            if let Poll::Ready(r) = down.as_mut().poll(cx) {
                down_out = Some(r);
            }
        }
        if down_out.is_some() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    Joined {
        upload: up_out,
        download: down_out.expect("download finished"),
    }
}
