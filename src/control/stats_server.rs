//! The `[stats]` listener on the control thread: one request per connection (HTTP/1.x,
//! `Connection: close`), routed by [`crate::stats::route`], answered with a report built
//! from the shards' counters gathered at that moment.

use std::cell::RefCell;
use std::io;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::admin::read_until;
use super::Control;
use crate::l4::socket::Socket;
use crate::stats::route::{see_other, Response};
use crate::stats::{ActionKind, Route};

/// Largest request (head and body) the stats listener reads.
pub const MAX_REQUEST: usize = 16 * 1024;

/// How long a stats client may take to send its request and read the answer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Bind the stats listener (SO_REUSEADDR, non-blocking).
pub fn bind(address: std::net::SocketAddr) -> io::Result<OwnedFd> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(address),
        socket2::Type::STREAM.nonblocking().cloexec(),
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(128)?;
    Ok(OwnedFd::from(socket))
}

/// Serve the stats page on `listener` forever.
pub async fn serve(listener: OwnedFd, control: Rc<RefCell<Control>>) {
    let listener = match Socket::accepted(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("stats: cannot watch the listener: {e}");
            return;
        }
    };
    loop {
        let fd = match listener.accept().await {
            Ok((fd, _)) => fd,
            Err(e) => {
                tracing::warn!("stats: accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let control = Rc::clone(&control);
        glommio::spawn_local(async move {
            let Ok(client) = Socket::accepted(fd) else {
                return;
            };
            let _ = crate::sys::set_nodelay(client.fd());
            let _ = glommio::timer::timeout(CLIENT_TIMEOUT, async {
                one_request(&client, &control).await;
                Ok(())
            })
            .await;
        })
        .detach();
    }
}

/// Whether `bytes` hold a whole request: the head, and as much body as Content-Length.
fn complete(bytes: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(bytes) {
        Ok(httparse::Status::Complete(head)) => {
            let length = content_length(request.headers).unwrap_or(0);
            bytes.len() >= head + length
        }
        Ok(httparse::Status::Partial) => false,
        Err(_) => true,
    }
}

fn content_length(headers: &[httparse::Header<'_>]) -> Option<usize> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .and_then(|v| v.trim().parse().ok())
}

async fn one_request(client: &Socket, control: &Rc<RefCell<Control>>) {
    let Ok(bytes) = read_until(client, MAX_REQUEST, complete).await else {
        return;
    };
    let response = answer(&bytes, control).await;
    let _ = client.send_all(&response).await;
    let _ = crate::sys::shutdown(client.fd(), std::net::Shutdown::Write);
    // Let the client read the answer before the close (no reset on unread input).
    let _ = read_until(client, 4096, |_| false).await;
}

async fn answer(bytes: &[u8], control: &Rc<RefCell<Control>>) -> Vec<u8> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let head = match request.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return Response::text(400, "bad request").to_bytes(false),
    };
    let method = request.method.unwrap_or("").to_string();
    let target = request.path.unwrap_or("").to_string();
    let field = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.to_vec())
    };
    let authorization = field("authorization");
    let content_type = field("content-type");
    let length = content_length(request.headers).unwrap_or(0);
    if head + length > bytes.len() {
        return Response::text(413, "request too large").to_bytes(false);
    }
    let body = &bytes[head..head + length];
    let head_only = method == "HEAD";
    let Some(cfg) = control.borrow().config().stats.clone() else {
        return Response::text(404, "stats are not configured").to_bytes(false);
    };
    let route = crate::stats::route(
        &cfg,
        &method,
        &target,
        authorization.as_deref(),
        content_type.as_deref(),
        body,
    );
    match route {
        Route::Respond(r) => r.to_bytes(head_only),
        Route::Action(action) => {
            let now = Instant::now();
            let result = {
                let mut c = control.borrow_mut();
                match action.what {
                    ActionKind::State(admin) => {
                        c.set_state(&action.backend, &action.server, admin, now)
                    }
                    ActionKind::Weight(w) => c.set_weight(&action.backend, &action.server, w),
                }
            };
            match result {
                Ok(message) => {
                    tracing::info!("stats page: {message}");
                    see_other(&cfg.uri).to_bytes(false)
                }
                Err(e) => Response::text(400, &e).to_bytes(false),
            }
        }
        page => {
            let hub = Arc::clone(control.borrow().hub());
            let counters = super::gather(&hub).await;
            let report = control.borrow().report(&counters, Instant::now());
            match page.render(&cfg, &report) {
                Some(r) => r.to_bytes(head_only),
                None => Response::text(500, "nothing to render").to_bytes(false),
            }
        }
    }
}
