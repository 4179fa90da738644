//! L7 (`mode http`): the HTTP/1 reverse proxy, the I/O shell around [`crate::http`].
//!
//! Per client connection, requests are handled one at a time, in order (pipelined ones
//! wait in the read buffer): read and parse the head within `timeouts.http_request`,
//! apply the frontend's `http_request` rules (deny, redirect, header edits), pick the
//! backend (`use_backend`, else `default_backend`) and the server (cookie persistence,
//! else the balancer), take an idle pooled connection or connect (with retries), send the
//! rewritten head, then stream the request body up while the response comes down
//! ([`exchange`]). After a clean exchange the server connection goes back to the shard's
//! pool and the client connection waits up to `timeouts.http_keep_alive` for its next
//! request. Any protocol error answers with an error page and closes the client
//! connection; nothing of a rejected request reaches a server. A `deny` rule answers its
//! error page and, like a redirect, keeps the connection when the client wants it and the
//! request has no body (HAProxy's `http-request deny` behaviour).

pub mod exchange;
pub mod facts;
pub mod io;
pub mod log;
pub mod pool;

use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Instant;

use crate::balance::PickContext;
use crate::config::{Backend, Frontend, HttpFrontend, HttpReuse, RequestAction};
use crate::http::acl::Condition;
use crate::http::rewrite::{
    field_hook, write_request, write_response, ConnectionHeader, FieldHook, HeaderRule, Peer,
    RequestEdits, ResponseEdits,
};
use crate::http::{
    parse_request, request_framing, BodyFraming, Method, Parsed, RequestHead, ResponseHead, Version,
};
use crate::l4::idle::{Deadline, Side};
use crate::l4::{connect_server, End};
use crate::runtime::shard::{Shard, ShardView, Tracked, COPY_BUFFER};
use crate::stats::collect::status_class;
use crate::stats::report::Counters;
use crate::stream::Stream;
use crate::sys;
use exchange::{BodyLeft, Download, DownloadError, Downloaded, Upload, UploadError};
use facts::Facts;
use io::{fill, write_all, Buffer, Wait};
use log::{Outcome, Record};

/// The state of one client connection.
struct Conn<'s> {
    shard: &'s Shard,
    tracked: &'s Tracked,
    socket: Stream,
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
    /// Bytes received from the client and not yet handled.
    buf: Buffer,
    /// The head (and start of body) sent to the server; kept for a replay.
    req_out: Vec<u8>,
    /// Response heads written to the client.
    resp_out: Vec<u8>,
    /// The header rules that apply to the current request / its response.
    request_rules: Vec<HeaderRule>,
    response_rules: Vec<HeaderRule>,
    /// Whether the access log is on (the request line is captured only then).
    log_on: bool,
}

/// The result of waiting for a request head.
enum Head {
    /// A complete head at the start of the buffer; the instant the request started.
    Ready(RequestHead, Instant),
    /// The client closed, or the keep-alive wait ended: close without a word.
    Closed,
    /// Answer this status and close (bad head, head timeout).
    Failed(u16, Outcome, Instant),
}

/// Serve one accepted client connection of `mode http` frontend `frontend_name`. Each
/// request uses the snapshot in force when it starts (a reload applies to the next
/// request); the connection closes if a reload removed its frontend.
pub async fn serve(
    client: Stream,
    peer: Option<SocketAddr>,
    shard: Rc<Shard>,
    frontend_name: Rc<str>,
) {
    let (ticket, tracked) = shard.connections.register_http(client.fd());
    let mut frontend_slot = None;
    let mut conn = Conn {
        shard: &shard,
        tracked: &tracked,
        socket: client,
        peer,
        local: None,
        buf: Buffer::default(),
        req_out: Vec::new(),
        resp_out: Vec::new(),
        request_rules: Vec::new(),
        response_rules: Vec::new(),
        log_on: tracing::enabled!(target: "halb::access", tracing::Level::INFO),
    };
    let mut first = true;
    let mut found = FrontendLookup::default();
    loop {
        let view = shard.view();
        let Some(frontend_index) = found.index(&view, &frontend_name) else {
            break;
        };
        let frontend = &view.snapshot.config.frontends[frontend_index];
        let Some(http) = frontend.http.as_deref() else {
            break;
        };
        let slot = view.snapshot.frontend_stats[frontend_index];
        if frontend_slot.is_none() {
            frontend_slot = Some(slot);
            shard.stats.session_started(slot);
            // TLS termination: the handshake first, bounded like a request head.
            let handshake = Deadline {
                limit: frontend.timeouts.http_request,
                end: End::ClientTimeout,
            };
            let started = Instant::now();
            let shaken = conn.socket.accept_handshake(&tracked.idle, handshake).await;
            crate::l4::count_handshake(&shard, slot, &conn.socket, shaken.is_ok());
            if let Err(e) = shaken {
                let mut record = Record::new(peer, &frontend.name, started);
                record.end = match crate::l4::tls_failure_end(&tracked.idle, &shard) {
                    End::Shutdown => Outcome::Shutdown,
                    End::ClientTimeout => Outcome::ClientTimeout,
                    _ => Outcome::TlsHandshakeFailed,
                };
                record.log();
                tracing::debug!(
                    target: "halb::tls",
                    "frontend {}: client {}: TLS handshake failed: {e}",
                    frontend.name,
                    crate::l4::OrDash(peer)
                );
                break;
            }
        }
        let head = conn.read_head(frontend, http, first).await;
        first = false;
        let keep = match head {
            Head::Closed => false,
            Head::Failed(status, outcome, started) => {
                let mut record = Record::new(peer, &frontend.name, started);
                record.end = outcome;
                conn.answer_error(http, frontend.timeouts.client, status, &mut record)
                    .await;
                conn.account(&view, slot, &record);
                record.log();
                false
            }
            Head::Ready(head, started) => {
                // The head may have waited a long time (keep-alive): decide on the
                // snapshot in force now, not the one the wait started with.
                let now = shard.view();
                let fresh = if Rc::ptr_eq(&now, &view) {
                    None
                } else {
                    found.index(&now, &frontend_name).and_then(|i| {
                        let f = &now.snapshot.config.frontends[i];
                        f.http.as_deref().map(|h| (f, h))
                    })
                };
                match fresh {
                    Some((frontend, http)) => {
                        conn.handle(&now, frontend, slot, http, head, started).await
                    }
                    None => {
                        conn.handle(&view, frontend, slot, http, head, started)
                            .await
                    }
                }
            }
        };
        if !keep || shard.stopping() || tracked.idle.expired().is_some() {
            break;
        }
    }
    conn.buf.discard(&shard);
    if conn.socket.is_tls() && !shard.hard_stopping() {
        // close_notify, so the client can tell our close from a truncation (best effort:
        // not waiting for room).
        let _ = crate::tls::stream::Transport::shutdown(&conn.socket);
    }
    shard.connections.unregister(ticket);
    if let Some(slot) = frontend_slot {
        shard.stats.session_ended(slot);
    }
}

/// The index of a connection's frontend in the snapshot in force, looked up by name
/// only when the snapshot generation changes (not once per request).
#[derive(Default)]
struct FrontendLookup {
    /// `(generation, index)` of the last lookup.
    last: Option<(u64, usize)>,
}

impl FrontendLookup {
    fn index(&mut self, view: &ShardView, name: &str) -> Option<usize> {
        let generation = view.snapshot.generation;
        match self.last {
            Some((g, i)) if g == generation => Some(i),
            _ => {
                let i = view.snapshot.frontend_index(name)?;
                self.last = Some((generation, i));
                Some(i)
            }
        }
    }
}

impl Conn<'_> {
    /// Wait for the next request head: up to `http_keep_alive` for its first byte (not
    /// for the connection's first request), then `http_request` for all of it.
    async fn read_head(&mut self, frontend: &Frontend, http: &HttpFrontend, first: bool) -> Head {
        let shard = self.shard;
        let watch = &self.tracked.idle;
        let capacity = (http.limits.max_head + 1).max(COPY_BUFFER);
        let mut started = Instant::now();
        if self.buf.is_empty() && !first {
            self.buf.release(shard);
            self.tracked.set_between_requests(true);
            watch.touch();
            let wait = Wait {
                side: Side::Upstream,
                deadline: Deadline {
                    limit: frontend.timeouts.http_keep_alive,
                    end: End::KeepAliveTimeout,
                },
            };
            let got = fill(shard, &self.socket, &mut self.buf, capacity, watch, wait).await;
            self.tracked.set_between_requests(false);
            match got {
                Ok(n) if n > 0 => {}
                _ => return Head::Closed,
            }
            if shard.stopping() {
                return Head::Closed;
            }
            started = Instant::now();
            watch.touch();
        }
        let wait = Wait {
            side: Side::Upstream,
            deadline: Deadline {
                limit: frontend.timeouts.http_request,
                end: End::RequestTimeout,
            },
        };
        loop {
            if !self.buf.is_empty() {
                match parse_request(self.buf.bytes(), &http.limits) {
                    Ok(Parsed::Complete(head)) => return Head::Ready(head, started),
                    Ok(Parsed::Partial) => {}
                    Err(e) => return Head::Failed(e.status(), Outcome::BadRequest, started),
                }
            }
            let got = fill(shard, &self.socket, &mut self.buf, capacity, watch, wait).await;
            match got {
                Ok(0) | Err(_) => {
                    if watch.expired() == Some(End::RequestTimeout) {
                        return Head::Failed(408, Outcome::RequestTimeout, started);
                    }
                    if self.buf.is_empty() {
                        return Head::Closed;
                    }
                    // A half-closed client with a truncated head.
                    return Head::Failed(400, Outcome::BadRequest, started);
                }
                Ok(_) => {}
            }
        }
    }

    /// Send the error page for `status` (the connection closes afterwards).
    async fn answer_error(
        &mut self,
        http: &HttpFrontend,
        client_timeout: std::time::Duration,
        status: u16,
        record: &mut Record<'_>,
    ) {
        let page = http.errors.page(status);
        record.status = Some(status);
        let wait = self.client_wait_for(client_timeout);
        if write_all(&self.socket, page, &self.tracked.idle, wait)
            .await
            .is_ok()
        {
            record.bytes_out += page.len() as u64;
        }
    }

    fn client_wait_for(&self, limit: std::time::Duration) -> Wait {
        Wait {
            side: Side::Downstream,
            deadline: Deadline {
                limit,
                end: End::ClientTimeout,
            },
        }
    }

    /// Handle one request whose head is at the start of the buffer. Returns whether the
    /// client connection stays open for another request.
    async fn handle(
        &mut self,
        view: &ShardView,
        frontend: &Frontend,
        frontend_slot: usize,
        http: &HttpFrontend,
        head: RequestHead,
        started: Instant,
    ) -> bool {
        let mut record = Record::new(self.peer, &frontend.name, started);
        record.head_done = Some(Instant::now());
        if self.log_on {
            record.capture_request(&head, self.buf.bytes());
        }
        let keep = self
            .handle_request(view, frontend, http, &head, &mut record)
            .await;
        if self.shard.hard_stopping() && !keep {
            record.end = match record.end {
                Outcome::Done | Outcome::Redirected | Outcome::Denied => record.end,
                _ => Outcome::Shutdown,
            };
        }
        self.account(view, frontend_slot, &record);
        record.log();
        keep
    }

    /// Count a finished request in the shard's stats (frontend, backend, server), and
    /// observe the server's answer (`observe = "layer7"`).
    fn account(&self, view: &ShardView, frontend_slot: usize, record: &Record<'_>) {
        let stats = &self.shard.stats;
        let class = record.status.map(status_class);
        let count = |c: &mut Counters| {
            c.http_requests += 1;
            c.bytes_in += record.bytes_in;
            c.bytes_out += record.bytes_out;
            if let Some(k) = class {
                c.http_responses[k] += 1;
            }
        };
        stats.update(frontend_slot, |c| {
            count(c);
            match record.end {
                Outcome::Denied => c.denied += 1,
                Outcome::BadRequest
                | Outcome::BadBody
                | Outcome::RequestTimeout
                | Outcome::MethodRefused => c.request_errors += 1,
                _ => {}
            }
        });
        let Some(b) = record.backend_index else {
            return;
        };
        let response_error = matches!(
            record.end,
            Outcome::BadResponse | Outcome::ServerError | Outcome::ServerTimeout
        );
        let backend_slot = view.snapshot.backends[b].stats;
        let server_slot = record.server_index.map(|s| Shard::server_slot(view, b, s));
        for slot in std::iter::once(backend_slot).chain(server_slot) {
            stats.update(slot, |c| {
                count(c);
                c.response_errors += u64::from(response_error);
            });
            if server_slot.is_some() {
                stats.session_ended(slot);
            }
        }
        if let Some(s) = record.server_index {
            let server_failed = response_error
                || (record.response_head.is_some() && record.status.is_some_and(|st| st >= 500));
            self.shard.observe(view, b, s, server_failed, true);
        }
    }

    /// Fail the request with an error page; the connection closes.
    async fn fail(
        &mut self,
        (http, client_timeout): (&HttpFrontend, std::time::Duration),
        status: u16,
        outcome: Outcome,
        record: &mut Record<'_>,
    ) -> bool {
        record.end = outcome;
        self.answer_error(http, client_timeout, status, record)
            .await;
        false
    }

    async fn handle_request<'v>(
        &mut self,
        view: &'v ShardView,
        frontend: &Frontend,
        http: &HttpFrontend,
        head: &RequestHead,
        record: &mut Record<'v>,
    ) -> bool {
        let config = &view.snapshot.config;
        let ctx_fail = (http, frontend.timeouts.client);
        let client_ip = self.peer.map(|p| p.ip());
        let buf = self.buf.bytes();
        let framing = match request_framing(head, buf) {
            Ok(f) => f,
            Err(e) => {
                return self
                    .fail(ctx_fail, e.status(), Outcome::BadRequest, record)
                    .await
            }
        };
        if head.method == Method::Connect {
            return self
                .fail(ctx_fail, 405, Outcome::MethodRefused, record)
                .await;
        }
        if let (Some(max), BodyFraming::Length(n)) = (http.max_body_size, framing) {
            if n > max {
                return self.fail(ctx_fail, 413, Outcome::BadBody, record).await;
            }
        }
        let client_keep = head.keep_alive(buf);

        // Rules, routing and the balancing key all look at the request as received.
        let facts = Facts {
            head,
            buf,
            client: client_ip,
            tls: self.socket.is_tls(),
        };
        let holds = |c: &Option<Condition>| c.as_ref().map_or(true, |c| c.eval(&facts));
        self.request_rules.clear();
        let mut verdict: Option<&RequestAction> = None;
        for rule in &http.request_rules {
            if !holds(&rule.condition) {
                continue;
            }
            match &rule.action {
                RequestAction::Header(h) => self.request_rules.push(h.clone()),
                action => {
                    verdict = Some(action);
                    break;
                }
            }
        }
        self.response_rules.clear();
        for rule in &http.response_rules {
            if holds(&rule.condition) {
                self.response_rules.push(rule.rule.clone());
            }
        }
        let backend_index = http
            .use_backends
            .iter()
            .find(|u| u.condition.eval(&facts))
            .map(|u| u.backend_index)
            .or(frontend.default_backend_index);
        let upgrade = head.version == Version::Http11
            && head.headers.has_token(buf, "connection", "upgrade")
            && head.headers.get(buf, "upgrade").is_some();

        match verdict {
            Some(RequestAction::Deny(status)) => {
                // As for a redirect, the connection stays open only if no body would have
                // to be skipped, and only if the page has a keep-alive variant (built-in
                // pages do; an errorfile only with Content-Length and no close of its
                // own). Otherwise the close page, and the connection closes.
                let keep = client_keep && framing == BodyFraming::None && !self.shard.stopping();
                let page = keep.then(|| http.errors.keep_alive(*status)).flatten();
                let Some(page) = page else {
                    return self.fail(ctx_fail, *status, Outcome::Denied, record).await;
                };
                let response = page.response(head.version, head.method);
                record.end = Outcome::Denied;
                record.status = Some(*status);
                let wait = self.client_wait_for(frontend.timeouts.client);
                if write_all(&self.socket, response, &self.tracked.idle, wait)
                    .await
                    .is_err()
                {
                    return false;
                }
                record.bytes_out = response.len() as u64;
                record.bytes_in = head.head_len as u64;
                self.buf.consume(head.head_len);
                return true;
            }
            Some(RequestAction::Redirect(redirect)) => {
                // The connection stays open only if no body would have to be skipped.
                let keep = client_keep && framing == BodyFraming::None && !self.shard.stopping();
                let host = head.headers.get(buf, "host");
                self.resp_out.clear();
                let built = crate::http::redirect::write_redirect(
                    &mut self.resp_out,
                    &redirect.kind,
                    redirect.code,
                    facts.origin_target(),
                    host,
                    !keep,
                );
                if built.is_err() {
                    return self.fail(ctx_fail, 400, Outcome::BadRequest, record).await;
                }
                record.end = Outcome::Redirected;
                record.status = Some(redirect.code);
                let wait = self.client_wait_for(frontend.timeouts.client);
                if write_all(&self.socket, &self.resp_out, &self.tracked.idle, wait)
                    .await
                    .is_err()
                {
                    record.end = Outcome::ClientError;
                    return false;
                }
                record.bytes_out = self.resp_out.len() as u64;
                record.bytes_in = head.head_len as u64;
                self.buf.consume(head.head_len);
                return keep;
            }
            _ => {}
        }

        let Some(backend_index) = backend_index else {
            return self.fail(ctx_fail, 404, Outcome::NoBackend, record).await;
        };
        let backend = &config.backends[backend_index];
        record.backend = &backend.name;
        record.backend_index = Some(backend_index);

        // What is already here of the body must be well-formed before anything is sent.
        let mut left = match framing {
            BodyFraming::Length(n) => BodyLeft::Length(n),
            BodyFraming::Chunked => BodyLeft::Chunked(crate::http::ChunkedDecoder::new()),
            _ => BodyLeft::Done,
        };
        let body_here = &buf[head.head_len..];
        let (take, body_bytes) = match left.advance(body_here) {
            Ok(t) => t,
            Err(e) => {
                return self
                    .fail(ctx_fail, e.status(), Outcome::BadBody, record)
                    .await
            }
        };
        if http.max_body_size.is_some_and(|max| body_bytes > max) {
            return self.fail(ctx_fail, 413, Outcome::BadBody, record).await;
        }
        // Whether the request can be sent again as a whole (see the stale-connection
        // replay below): idempotent, and its body is complete in the first write.
        let replayable = head.method.is_idempotent() && left.is_done();

        // The server: the one the persistence cookie names if it is usable, else the
        // balancer's choice.
        let pinned = backend
            .cookie
            .as_ref()
            .and_then(|c| c.request_server(head.headers.values(buf, "cookie")));
        // UP or DRAIN: a draining server keeps its persistent clients.
        let pinned_usable = pinned.filter(|&i| {
            view.snapshot.backends[backend_index]
                .live
                .get(i)
                .is_some_and(|s| s.pinnable)
        });
        let ctx = PickContext {
            client_ip,
            uri: Some(facts.origin_target()),
            headers: Some(&facts),
        };
        let reuse = reuse_allowed(backend, head.method);
        record.connect_start = Some(Instant::now());
        let connected = choose_and_connect(
            self.shard,
            view,
            backend_index,
            backend,
            &ctx,
            pinned_usable,
            PoolUse {
                reuse,
                probe: !replayable,
            },
            &[],
        )
        .await;
        let (server, server_index, reused) = match connected {
            Ok(c) => c,
            Err((outcome, retries)) => {
                record.retries = retries;
                return self.fail(ctx_fail, 503, outcome, record).await;
            }
        };
        record.retries = server.retries;
        record.connected = Some(Instant::now());
        record.server = &backend.servers[server_index].name;
        record.server_index = Some(server_index);
        self.shard
            .stats
            .session_started(view.snapshot.backends[backend_index].stats);
        self.shard
            .stats
            .session_started(Shard::server_slot(view, backend_index, server_index));
        // The server in use: a stale pooled connection whose server then refuses may move
        // the request to another one (see `reconnect`).
        let chosen = Cell::new(server_index);

        // The head to send, and as much of the body as is already here.
        let pooling = !backend.http_server_close
            && backend.http_reuse != HttpReuse::Never
            && backend.pool_max_idle > 0;
        let connection = if upgrade {
            ConnectionHeader::Upgrade
        } else if !pooling {
            ConnectionHeader::Close
        } else if head.version == Version::Http10 {
            ConnectionHeader::KeepAlive
        } else {
            ConnectionHeader::Omit
        };
        let needs_local =
            http.forwarding.x_forwarded_port || http.forwarding.forwarded.is_some_and(|f| f.by);
        if needs_local && self.local.is_none() {
            self.local = sys::local_addr(self.socket.fd()).ok();
        }
        let peer = Peer {
            client: client_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            local: self
                .local
                .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))),
            https: self.socket.is_tls(),
        };
        let cookie_hook = field_hook(|v| match backend.cookie.as_ref() {
            Some(c) => c.forward_cookie(v),
            None => Some(std::borrow::Cow::Borrowed(v)),
        });
        let edits = RequestEdits {
            target: None,
            rules: &self.request_rules,
            forwarding: &http.forwarding,
            peer,
            connection,
            hook: backend
                .cookie
                .as_ref()
                .map(|_| ("cookie", &cookie_hook as &FieldHook<'_>)),
        };
        self.req_out.clear();
        if write_request(&mut self.req_out, head, buf, &edits).is_err() {
            drop_server(self.shard, view, backend_index, server_index, None);
            return self
                .fail(ctx_fail, 500, Outcome::InternalError, record)
                .await;
        }
        self.req_out.extend_from_slice(&body_here[..take]);
        let method = head.method;
        let version = head.version;
        let client_keep = client_keep && !self.shard.stopping();
        record.bytes_in = (head.head_len + take) as u64;
        self.buf.consume(head.head_len + take);

        // Send, and run the exchange; a reused connection that turns out stale before
        // any response byte is replaced by a fresh one for a replayable request.
        let mut server = server.socket;
        let mut reused = reused;
        let watch = &self.tracked.idle;
        let server_wait = |side| Wait {
            side,
            deadline: Deadline {
                limit: backend.timeouts.server,
                end: End::ServerTimeout,
            },
        };
        let client_wait = |side| Wait {
            side,
            deadline: Deadline {
                limit: frontend.timeouts.client,
                end: End::ClientTimeout,
            },
        };
        let bytes_in = Cell::new(record.bytes_in);
        let bytes_out = Cell::new(0u64);
        let head_at = Cell::new(None);
        let cookie = backend.cookie.as_ref();
        let response_rules = &self.response_rules;
        let cookie_extra = std::cell::RefCell::new(Vec::new());
        let write_head = |out: &mut Vec<u8>, h: &ResponseHead, b: &[u8], close: bool| {
            let connection = if close {
                ConnectionHeader::Close
            } else if version == Version::Http10 {
                ConnectionHeader::KeepAlive
            } else if h.status == 101 {
                ConnectionHeader::Upgrade
            } else {
                ConnectionHeader::Omit
            };
            let mut extra = cookie_extra.borrow_mut();
            extra.clear();
            if let Some(c) = cookie.filter(|_| h.status >= 200) {
                if let Some(insert) =
                    c.on_response(chosen.get(), pinned, h.headers.values(b, "cache-control"))
                {
                    extra.extend_from_slice(insert.set_cookie);
                    if insert.cache_private {
                        extra.extend_from_slice(crate::http::cookie::CACHE_PRIVATE);
                    }
                }
            }
            let set_cookie_hook = field_hook(|v| match cookie {
                Some(c) => c.rewrite_set_cookie(chosen.get(), pinned, v),
                None => Some(std::borrow::Cow::Borrowed(v)),
            });
            write_response(
                out,
                h,
                b,
                &ResponseEdits {
                    rules: if h.status >= 200 { response_rules } else { &[] },
                    connection,
                    hook: cookie.map(|_| ("set-cookie", &set_cookie_hook as &FieldHook<'_>)),
                    extra: &extra,
                },
            );
        };
        shard_attach(
            self,
            &server,
            Shard::server_slot(view, backend_index, server_index),
        );
        let capacity = (http.limits.max_head + 1).max(COPY_BUFFER);
        let mut server_buf = Buffer::default();
        let outcome = loop {
            watch.touch();
            if let Err(e) =
                write_all(&server, &self.req_out, watch, server_wait(Side::Upstream)).await
            {
                if reused && replayable {
                    match reconnect(
                        self,
                        view,
                        backend_index,
                        backend,
                        &chosen,
                        &mut server,
                        client_ip,
                        record,
                    )
                    .await
                    {
                        Ok(()) => {
                            reused = false;
                            continue;
                        }
                        Err(outcome) => break Err((503, outcome)),
                    }
                }
                tracing::debug!("sending the request to {}: {e}", record.server);
                break Err((502, Outcome::ServerError));
            }
            let mut upload = Upload {
                shard: self.shard,
                client: &self.socket,
                buf: &mut self.buf,
                capacity,
                server: &server,
                watch,
                left: left.clone(),
                body_bytes,
                max_body: http.max_body_size,
                client_wait: client_wait(Side::Upstream),
                server_wait: server_wait(Side::Upstream),
                bytes_in: &bytes_in,
            };
            let mut download = Download {
                shard: self.shard,
                server: &server,
                buf: &mut server_buf,
                client: &self.socket,
                watch,
                method,
                client_version: version,
                client_keep,
                upgrade,
                client_wait: client_wait(Side::Downstream),
                server_wait: server_wait(Side::Downstream),
                out: &mut self.resp_out,
                bytes_out: &bytes_out,
                head_at: &head_at,
                write_head: &write_head,
            };
            let joined = exchange::run_both(upload.run(), download.run(), server.fd()).await;
            match joined.download {
                Err(DownloadError::NoResponse { stale: true, .. })
                    if reused
                        && replayable
                        && joined.upload.as_ref().map_or(true, |u| u.is_ok()) =>
                {
                    server_buf.discard(self.shard);
                    match reconnect(
                        self,
                        view,
                        backend_index,
                        backend,
                        &chosen,
                        &mut server,
                        client_ip,
                        record,
                    )
                    .await
                    {
                        Ok(()) => {
                            reused = false;
                            continue;
                        }
                        Err(outcome) => break Err((503, outcome)),
                    }
                }
                result => break Ok((joined.upload, result)),
            }
        };
        record.bytes_in = bytes_in.get();
        record.bytes_out = bytes_out.get();
        record.response_head = head_at.get();

        let (upload, download) = match outcome {
            Err((status, outcome)) => {
                server_buf.discard(self.shard);
                self.shard.connections.detach_server(self.tracked);
                drop_server(self.shard, view, backend_index, chosen.get(), None);
                return self.fail(ctx_fail, status, outcome, record).await;
            }
            Ok(r) => r,
        };
        let upload_done = matches!(upload, Some(Ok(())));
        let keep = match download {
            Ok(Downloaded::Complete {
                status,
                server_keep,
                client_keep,
            }) => {
                record.status = Some(status);
                record.end = match &upload {
                    Some(Err(e)) => upload_outcome(e),
                    _ => Outcome::Done,
                };
                server_buf.discard(self.shard);
                self.shard.connections.detach_server(self.tracked);
                let park = (server_keep && upload_done && pooling).then_some(backend);
                drop_server(
                    self.shard,
                    view,
                    backend_index,
                    chosen.get(),
                    park.map(|b| (b, server)),
                );
                return client_keep && upload_done;
            }
            Ok(Downloaded::Tunnel) => {
                record.status = Some(101);
                // Bytes that arrived early on either side go first.
                let mut ok = true;
                if !self.buf.is_empty() {
                    ok = write_all(
                        &server,
                        self.buf.bytes(),
                        watch,
                        server_wait(Side::Upstream),
                    )
                    .await
                    .is_ok();
                    self.buf.consume(self.buf.len());
                }
                if ok && !server_buf.is_empty() {
                    ok = write_all(
                        &self.socket,
                        server_buf.bytes(),
                        watch,
                        client_wait(Side::Downstream),
                    )
                    .await
                    .is_ok();
                    server_buf.consume(server_buf.len());
                }
                server_buf.discard(self.shard);
                self.buf.discard(self.shard);
                if ok {
                    let tunnel = Deadline {
                        limit: backend.timeouts.tunnel,
                        end: End::TunnelTimeout,
                    };
                    let limits = crate::l4::IdleLimits {
                        client: tunnel,
                        server: tunnel,
                        splice: backend.splice,
                    };
                    let (end, up, down) =
                        crate::l4::forward(self.shard, watch, &self.socket, &server, limits).await;
                    record.bytes_in += up;
                    record.bytes_out += down;
                    record.end = match end {
                        End::TunnelTimeout => Outcome::TunnelTimeout,
                        End::Closed => Outcome::Tunnel,
                        End::Shutdown => Outcome::Shutdown,
                        End::ServerError | End::ServerTimeout => Outcome::ServerError,
                        _ => Outcome::ClientError,
                    };
                } else {
                    record.end = Outcome::ClientError;
                }
                self.shard.connections.detach_server(self.tracked);
                drop_server(self.shard, view, backend_index, chosen.get(), None);
                false
            }
            Err(e) => {
                server_buf.discard(self.shard);
                self.shard.connections.detach_server(self.tracked);
                drop_server(self.shard, view, backend_index, chosen.get(), None);
                // A server timeout before the response: 504, whichever side noticed.
                if self.tracked.idle.expired() == Some(End::ServerTimeout) {
                    if bytes_out.get() == 0 {
                        return self
                            .fail(ctx_fail, 504, Outcome::ServerTimeout, record)
                            .await;
                    }
                    record.end = Outcome::ServerTimeout;
                    return false;
                }
                // The upload's failure explains the download's, if there was one.
                if let Some(Err(up)) = &upload {
                    let outcome = upload_outcome(up);
                    return match up {
                        UploadError::BadBody(err) if bytes_out.get() == 0 => {
                            self.fail(ctx_fail, err.status(), outcome, record).await
                        }
                        UploadError::TooLarge if bytes_out.get() == 0 => {
                            self.fail(ctx_fail, 413, outcome, record).await
                        }
                        _ => {
                            record.end = outcome;
                            false
                        }
                    };
                }
                match e {
                    DownloadError::BadResponse(err) => {
                        tracing::debug!("server {}: {err}", record.server);
                        self.fail(ctx_fail, 502, Outcome::BadResponse, record).await
                    }
                    DownloadError::NoResponse { error, .. } => {
                        if let Some(err) = error {
                            tracing::debug!("server {}: {err}", record.server);
                        }
                        self.fail(ctx_fail, 502, Outcome::ServerError, record).await
                    }
                    DownloadError::Timeout { started: false } => {
                        self.fail(ctx_fail, 504, Outcome::ServerTimeout, record)
                            .await
                    }
                    DownloadError::Timeout { started: true } => {
                        record.end = Outcome::ServerTimeout;
                        false
                    }
                    DownloadError::ServerFailed => {
                        record.end = Outcome::ServerError;
                        false
                    }
                    DownloadError::Client(_) => {
                        record.end = if self.tracked.idle.expired() == Some(End::ClientTimeout) {
                            Outcome::ClientTimeout
                        } else {
                            Outcome::ClientError
                        };
                        false
                    }
                }
            }
        };
        keep
    }
}

fn upload_outcome(e: &UploadError) -> Outcome {
    match e {
        UploadError::ClientClosed | UploadError::Client(_) => Outcome::ClientError,
        UploadError::Server(_) => Outcome::ServerError,
        UploadError::BadBody(_) | UploadError::TooLarge => Outcome::BadBody,
    }
}

/// Whether a request with `method` may use an idle pooled connection of `backend`.
fn reuse_allowed(backend: &Backend, method: Method) -> bool {
    if backend.http_server_close || backend.pool_max_idle == 0 {
        return false;
    }
    match backend.http_reuse {
        HttpReuse::Always => true,
        HttpReuse::Safe => method.is_idempotent(),
        HttpReuse::Never => false,
    }
}

/// How a request may use the shard's pool of idle server connections.
#[derive(Debug, Clone, Copy)]
struct PoolUse {
    /// It may take an idle connection ([`reuse_allowed`]).
    reuse: bool,
    /// A taken connection must be probed first (the request could not be replayed).
    probe: bool,
}

/// A connected server.
struct Connected {
    socket: Stream,
    retries: u32,
}

/// Pick a server and get a connection to it: an idle pooled one when `pool.reuse`, else
/// a new one, retrying per the backend's `retries` and `redispatch`. `pool.probe`: check
/// that a pooled connection is still open before using it (one `recv`); requests that
/// can be replayed skip it and rely on the replay instead. Servers in `avoid` count as
/// already tried.
#[allow(clippy::too_many_arguments)]
async fn choose_and_connect(
    shard: &Shard,
    view: &ShardView,
    backend_index: usize,
    backend: &Backend,
    ctx: &PickContext<'_>,
    pinned: Option<usize>,
    pool: PoolUse,
    avoid: &[usize],
) -> Result<(Connected, usize, bool), (Outcome, u32)> {
    let mut tried: Vec<usize> = avoid.to_vec();
    let mut retries = 0u32;
    let mut last: Option<usize> = None;
    loop {
        let pick = match (last, pinned) {
            (None, Some(p)) => Some(p),
            (Some(previous), _) if !backend.redispatch => Some(previous),
            _ => {
                let mut balancer = view.balancer(backend_index);
                balancer.pick(ctx, &tried).or_else(|| {
                    if tried.is_empty() {
                        None
                    } else {
                        balancer.pick(ctx, &[])
                    }
                })
            }
        };
        let Some(index) = pick else {
            let outcome = if tried.is_empty() {
                Outcome::NoServer
            } else {
                Outcome::ConnectFailed
            };
            return Err((outcome, retries));
        };
        let address = backend.servers[index].address;
        if retries > 0 {
            let redispatched = last != Some(index);
            for slot in [
                view.snapshot.backends[backend_index].stats,
                Shard::server_slot(view, backend_index, index),
            ] {
                shard.stats.update(slot, |c| {
                    c.retries += 1;
                    c.redispatches += u64::from(redispatched);
                });
            }
        }
        if pool.reuse {
            let key = (address, backend.servers[index].tls.is_some());
            if let Some(socket) = shard.server_pool.borrow_mut().take(key, pool.probe) {
                view.balancer(backend_index).connection_started(index);
                return Ok((Connected { socket, retries }, index, true));
            }
        }
        match connect_server(view, backend_index, backend, index).await {
            Ok(socket) => {
                let _ = sys::set_nodelay(socket.fd());
                view.balancer(backend_index).connection_started(index);
                return Ok((Connected { socket, retries }, index, false));
            }
            Err(e) => {
                tracing::debug!(
                    "backend {} server {} ({}): connect failed: {}",
                    backend.name,
                    backend.servers[index].name,
                    address,
                    e
                );
                for slot in [
                    view.snapshot.backends[backend_index].stats,
                    Shard::server_slot(view, backend_index, index),
                ] {
                    shard.stats.update(slot, |c| c.connection_errors += 1);
                }
                // Only errors here: with `observe = "layer7"` the answer decides success.
                shard.observe(view, backend_index, index, true, false);
                if !tried.contains(&index) {
                    tried.push(index);
                }
                last = Some(index);
                if retries >= backend.retries {
                    return Err((Outcome::ConnectFailed, retries));
                }
                retries += 1;
            }
        }
    }
}

/// Replace a stale reused connection with a fresh one: to the same server first; if that
/// server refuses (it died while its connection sat in the pool), move the request to
/// another server per the backend's `retries` and `redispatch`, as for any failed connect.
#[allow(clippy::too_many_arguments)]
async fn reconnect<'v>(
    conn: &Conn<'_>,
    view: &'v ShardView,
    backend_index: usize,
    backend: &'v Backend,
    chosen: &Cell<usize>,
    server: &mut Stream,
    client_ip: Option<IpAddr>,
    record: &mut Record<'v>,
) -> Result<(), Outcome> {
    let shard = conn.shard;
    let index = chosen.get();
    let address = backend.servers[index].address;
    match connect_server(view, backend_index, backend, index).await {
        Ok(socket) => {
            let _ = sys::set_nodelay(socket.fd());
            *server = socket;
            shard_attach(conn, server, conn.tracked.server_slot());
            return Ok(());
        }
        Err(e) => {
            tracing::debug!(
                "backend {} server {} ({}): reconnect failed: {}",
                backend.name,
                backend.servers[index].name,
                address,
                e
            );
            for slot in [
                view.snapshot.backends[backend_index].stats,
                Shard::server_slot(view, backend_index, index),
            ] {
                shard.stats.update(slot, |c| c.connection_errors += 1);
            }
            shard.observe(view, backend_index, index, true, false);
        }
    }
    if !backend.redispatch || backend.retries == 0 {
        return Err(Outcome::ConnectFailed);
    }
    // The request's balancing key is gone with its head: balance on the client address
    // (hashing algorithms fall back to round robin).
    let ctx = PickContext {
        client_ip,
        ..Default::default()
    };
    let pool = PoolUse {
        reuse: false,
        probe: false,
    };
    let (connected, next, _) = choose_and_connect(
        shard,
        view,
        backend_index,
        backend,
        &ctx,
        None,
        pool,
        &[index],
    )
    .await
    .map_err(|(outcome, _)| outcome)?;
    // Move the request's accounting from the refused server to the new one (the
    // balancer count of the new one was taken by `choose_and_connect`).
    shard.connection_ended(view, backend_index, index);
    shard
        .stats
        .session_ended(Shard::server_slot(view, backend_index, index));
    let slot = Shard::server_slot(view, backend_index, next);
    shard.stats.session_started(slot);
    shard.stats.update(slot, |c| {
        c.retries += 1;
        c.redispatches += 1;
    });
    shard
        .stats
        .update(view.snapshot.backends[backend_index].stats, |c| {
            c.retries += 1;
            c.redispatches += 1;
        });
    record.server = &backend.servers[next].name;
    record.server_index = Some(next);
    record.retries += 1 + connected.retries;
    chosen.set(next);
    let _ = sys::set_nodelay(connected.socket.fd());
    *server = connected.socket;
    shard_attach(conn, server, slot);
    Ok(())
}

fn shard_attach(conn: &Conn<'_>, server: &Stream, server_slot: usize) {
    conn.shard
        .connections
        .attach_server(conn.tracked, server.fd(), server_slot);
}

/// The exchange with `server_index` is over: update the balancer, and park the
/// connection in the shard's pool when given (`Some((backend, socket))`).
fn drop_server(
    shard: &Shard,
    view: &ShardView,
    backend_index: usize,
    server_index: usize,
    park: Option<(&Backend, Stream)>,
) {
    shard.connection_ended(view, backend_index, server_index);
    if let Some((backend, socket)) = park {
        let server = &backend.servers[server_index];
        shard.server_pool.borrow_mut().put(
            (server.address, server.tls.is_some()),
            socket,
            backend.pool_max_idle as usize,
            Instant::now() + backend.pool_idle_timeout,
        );
    }
}
