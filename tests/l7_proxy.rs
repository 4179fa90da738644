//! The L7 proxy (`mode = "http"`) through the real binary, per docs/http.md: routing with
//! every ACL fetch, header rules on requests and responses, redirects, deny, forwarding
//! headers, keep-alive (client side and pooled backend connections, stale-connection
//! retries, `http_reuse`), HTTP/1.0, pipelining, 100-continue, chunked bodies both ways,
//! bodyless responses, upgrades, the 408/503/504 error paths, hashing balancers and cookie
//! persistence.
//!
//! Backends are [`HttpBackend`]s: they record every request (headers, body, which
//! connection), so the tests check what the server saw as well as what the client got.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::http::*;
use common::*;

/// Request header fields as `(name, value)` pairs.
type Fields<'a> = Vec<(&'a str, &'a str)>;

/// A response with this status, or a panic showing the whole response.
fn expect_status(r: &Response, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: expected {status}, got:\n{r}");
}

// ---------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------

/// Every ACL fetch routes to its own backend through `use_backend`; the rest goes to the
/// default backend.
#[test]
fn routing_per_acl_kind() {
    let kinds = [
        ("path", "path /exact"),
        ("beg", "path_beg /api /v1"),
        ("end", "path_end .jpg .png"),
        ("sub", "path_sub admin"),
        ("reg", "path_reg ^/re/[0-9]+$"),
        ("host", "hdr(host) exact.example"),
        ("hbeg", "hdr_beg(host) -i www."),
        ("hend", "hdr_end(host) .org"),
        ("hsub", "hdr_sub(x-tag) blue"),
        ("hreg", "hdr_reg(x-ver) ^v[0-9]+$"),
        ("method", "method DELETE PURGE"),
        ("param", "url_param(id) 42"),
        ("src", ""), // filled below
    ];
    let src_ip = fresh_ip();
    let other_ip = fresh_ip();
    let backends: HashMap<&str, HttpBackend> = kinds
        .iter()
        .map(|(k, _)| (*k, HttpBackend::new(k)))
        .collect();
    let dflt = HttpBackend::new("default");
    let mut conf = Conf::http().server("d", dflt.addr);
    for (k, def) in &kinds {
        let def = if *k == "src" {
            format!("src {src_ip}/32")
        } else {
            def.to_string()
        };
        conf = conf.acl(&format!("is_{k}"), &def);
    }
    for (k, _) in &kinds {
        conf = conf.use_backend(&format!("b_{k}"), &format!("is_{k}"));
    }
    for (k, _) in &kinds {
        conf = conf.extra_backend(&format!("b_{k}"), &[], &[(k, backends[k].addr)]);
    }
    let halb = conf.start();

    // (method, path, headers, expected backend)
    let cases: Vec<(&str, &str, Fields, &str)> = vec![
        ("GET", "/exact", vec![], "path"),
        ("GET", "/exact?q=1", vec![], "path"),
        ("GET", "/exact/more", vec![], "default"),
        ("GET", "/api/users", vec![], "beg"),
        ("GET", "/v1/x", vec![], "beg"),
        ("GET", "/img/a.jpg", vec![], "end"),
        ("GET", "/img/a.png?size=2", vec![], "end"),
        ("GET", "/img/a.jpeg", vec![], "default"),
        ("GET", "/x/admin/y", vec![], "sub"),
        ("GET", "/re/123", vec![], "reg"),
        ("GET", "/re/12a", vec![], "default"),
        ("GET", "/h", vec![("Host", "exact.example")], "host"),
        ("GET", "/h", vec![("Host", "exact.example:8080")], "default"),
        ("GET", "/h", vec![("Host", "WWW.Example.com")], "hbeg"),
        ("GET", "/h", vec![("Host", "example.org")], "hend"),
        ("GET", "/h", vec![("Host", "example.org.net")], "default"),
        ("GET", "/h", vec![("X-Tag", "light-blue-ish")], "hsub"),
        ("GET", "/h", vec![("X-Tag", "red, navyblue")], "hsub"),
        ("GET", "/h", vec![("X-Ver", "v12")], "hreg"),
        ("GET", "/h", vec![("X-Ver", "v12x")], "default"),
        ("DELETE", "/thing", vec![], "method"),
        ("PURGE", "/thing", vec![], "method"),
        ("delete", "/thing", vec![], "default"),
        ("GET", "/search?id=42", vec![], "param"),
        ("GET", "/search?x=1&id=42&y", vec![], "param"),
        ("GET", "/search?id=421", vec![], "default"),
        ("GET", "/search?xid=42", vec![], "default"),
        ("GET", "/neutral", vec![], "default"),
    ];
    let mut failures = Vec::new();
    for (method, path, headers, want) in &cases {
        match request(halb.addr, method, path, headers, b"") {
            Ok(r) if r.status == 200 && r.server() == *want => {
                let be = if *want == "default" {
                    &dflt
                } else {
                    &backends[want]
                };
                let last = be.last();
                if last.target != *path || last.method != *method {
                    failures.push(format!(
                        "{method} {path}: backend {want} last saw {} {}",
                        last.method, last.target
                    ));
                }
            }
            Ok(r) => failures.push(format!(
                "{method} {path} {headers:?}: expected backend {want}, got {} from {:?}",
                r.status,
                r.server()
            )),
            Err(e) => failures.push(format!("{method} {path}: {e}")),
        }
    }
    // src: the same request from the listed address and from another one.
    let r = get_from(src_ip, halb.addr, "/neutral", &[]);
    if r.server() != "src" {
        failures.push(format!("from {src_ip}: expected backend src, got {r}"));
    }
    let r = get_from(other_ip, halb.addr, "/neutral", &[]);
    if r.server() != "default" {
        failures.push(format!(
            "from {other_ip}: expected backend default, got {r}"
        ));
    }
    assert!(
        failures.is_empty(),
        "routing failures:\n{}",
        failures.join("\n")
    );
}

/// Without `default_backend`, a request no rule routes gets a 404 (and the connection is
/// closed, as after every error page); a routed one is served.
#[test]
fn no_default_backend_is_404() {
    let api = HttpBackend::new("api");
    let halb = Conf::http()
        .no_default_backend()
        .server("a", api.addr)
        .acl("is_api", "path_beg /api")
        .use_backend("be", "is_api")
        .start();
    let mut c = Client::connect(halb.addr);
    let r = c.get("/other", &[]);
    expect_status(&r, 404, "unrouted request");
    assert!(r.says_close(), "error page without Connection: close: {r}");
    assert_eq!(c.closed_within(Duration::from_secs(5)), Ok(true));
    let r = get(halb.addr, "/api/x", &[]);
    expect_status(&r, 200, "routed request");
    assert_eq!(r.text(), "api");
    assert_eq!(api.request_count(), 1, "{:?}", api.requests());
}

// ---------------------------------------------------------------------------------------
// Header rules, redirects, deny
// ---------------------------------------------------------------------------------------

/// set/add/del on requests, with and without conditions, and on responses.
#[test]
fn header_rules_on_requests_and_responses() {
    let be = HttpBackend::start(
        "be",
        Behaviour::new()
            .header("X-Backend-Secret", "s3cr3t")
            .header("X-Powered-By", "test"),
    );
    let halb = Conf::http()
        .server("s1", be.addr)
        .acl("is_public", "path_beg /public")
        .http_request(&["set_header = { name = \"X-Env\", value = \"prod\" }"])
        .http_request(&["add_header = { name = \"X-Via\", value = \"halb\" }"])
        .http_request(&["del_header = \"X-Debug\""])
        .http_request(&["del_header = \"X-Secret\"", "if = \"is_public\""])
        .http_request(&[
            "set_header = { name = \"X-Zone\", value = \"internal\" }",
            "unless = \"is_public\"",
        ])
        .http_response(&[
            "set_header = { name = \"Strict-Transport-Security\", value = \"max-age=31536000\" }",
        ])
        .http_response(&["add_header = { name = \"X-Resp-Via\", value = \"halb\" }"])
        .http_response(&["del_header = \"X-Backend-Secret\""])
        .http_response(&[
            "set_header = { name = \"X-Public\", value = \"yes\" }",
            "if = \"is_public\"",
        ])
        .start();

    let headers = [
        ("X-Env", "dev"),
        ("X-Env", "test"),
        ("X-Via", "client"),
        ("X-Debug", "1"),
        ("X-Secret", "s"),
        ("X-Zone", "spoofed"),
    ];
    let r = get(halb.addr, "/public/page", &headers);
    expect_status(&r, 200, "public");
    let seen = be.last();
    assert_eq!(seen.header_all("x-env"), ["prod"], "{seen:?}");
    assert_eq!(seen.header_all("x-via"), ["client", "halb"], "{seen:?}");
    assert!(!seen.has("x-debug"), "X-Debug not removed: {seen:?}");
    assert!(
        !seen.has("x-secret"),
        "X-Secret not removed on /public: {seen:?}"
    );
    assert_eq!(
        seen.header_all("x-zone"),
        ["spoofed"],
        "X-Zone set on /public: {seen:?}"
    );
    assert_eq!(
        r.header_all("strict-transport-security"),
        ["max-age=31536000"],
        "{r}"
    );
    assert_eq!(r.header_all("x-resp-via"), ["halb"], "{r}");
    assert!(
        !r.has("x-backend-secret"),
        "X-Backend-Secret not removed: {r}"
    );
    assert_eq!(r.header("x-powered-by"), Some("test"), "{r}");
    assert_eq!(r.header_all("x-public"), ["yes"], "{r}");

    let r = get(halb.addr, "/private", &headers);
    expect_status(&r, 200, "private");
    let seen = be.last();
    assert_eq!(
        seen.header_all("x-secret"),
        ["s"],
        "X-Secret removed on /private: {seen:?}"
    );
    assert_eq!(seen.header_all("x-zone"), ["internal"], "{seen:?}");
    assert_eq!(seen.header_all("x-env"), ["prod"], "{seen:?}");
    assert!(!r.has("x-public"), "X-Public set on /private: {r}");
    assert_eq!(
        r.header_all("strict-transport-security"),
        ["max-age=31536000"],
        "{r}"
    );
}

/// The three redirect forms and every code; the backend sees none of them.
#[test]
fn redirects() {
    let be = HttpBackend::new("be");
    let halb = Conf::http()
        .server("s1", be.addr)
        .acl("r301", "path_beg /r301")
        .acl("r302", "path_beg /r302")
        .acl("r303", "path_beg /r303")
        .acl("r307", "path_beg /r307")
        .acl("r308", "path_beg /r308")
        .http_request(&["redirect = \"scheme https\"", "code = 301", "if = \"r301\""])
        .http_request(&[
            "redirect = \"location https://example.com/new\"",
            "if = \"r302\"",
        ])
        .http_request(&["redirect = \"prefix /new\"", "code = 303", "if = \"r303\""])
        .http_request(&[
            "redirect = \"location /moved\"",
            "code = 307",
            "if = \"r307\"",
        ])
        .http_request(&[
            "redirect = \"location /moved\"",
            "code = 308",
            "if = \"r308\"",
        ])
        .start();
    let cases = [
        ("/r301/x?q=1", 301, "https://shop.example/r301/x?q=1"),
        ("/r302", 302, "https://example.com/new"),
        ("/r303/a?b=c", 303, "/new/r303/a?b=c"),
        ("/r307/z", 307, "/moved"),
        ("/r308/z", 308, "/moved"),
    ];
    let mut failures = Vec::new();
    for (path, code, location) in cases {
        match request(halb.addr, "GET", path, &[("Host", "shop.example")], b"") {
            Ok(r) if r.status == code && r.header("location") == Some(location) => {}
            Ok(r) => failures.push(format!(
                "GET {path}: expected {code} Location: {location}, got\n{r}"
            )),
            Err(e) => failures.push(format!("GET {path}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        be.request_count(),
        0,
        "redirected requests reached the backend: {:?}",
        be.requests()
    );
    let r = get(halb.addr, "/other", &[]);
    expect_status(&r, 200, "not redirected");
}

/// `deny = true` (403) and `deny = 429`: the error page, nothing forwarded, and (as in
/// HAProxy) the keep-alive connection stays open: the next request on it is served.
#[test]
fn deny_with_status_keeps_the_connection() {
    let be = HttpBackend::new("be");
    let halb = Conf::http()
        .server("s1", be.addr)
        .acl("is_admin", "path_beg /admin")
        .acl("is_rate", "path_beg /rate")
        .http_request(&["deny = true", "if = \"is_admin\""])
        .http_request(&["deny = 429", "if = \"is_rate\""])
        .start();
    let mut c = Client::connect(halb.addr);
    for (path, status) in [("/admin/x", 403), ("/rate", 429), ("/admin/y", 403)] {
        let r = c.get(path, &[]);
        expect_status(&r, status, path);
        assert!(!r.has("connection"), "{r}");
        assert!(r.text().contains(&format!("<h1>{status} ")), "{r}");
        let r = c.get("/ok", &[]);
        expect_status(&r, 200, "after a deny, same connection");
        assert_eq!(r.server(), "be", "{r}");
    }
    // HEAD: the head only, and the connection goes on.
    let r = c.request("HEAD", "/admin", &[], b"").unwrap();
    expect_status(&r, 403, "HEAD");
    assert!(r.body.is_empty() && !r.has("connection"), "{r}");
    expect_status(&c.get("/ok", &[]), 200, "after a HEAD deny");
    // Pipelined: deny, then a routed request, answered in order.
    c.send(
        &[
            build_request("GET", "/admin", &[], b""),
            build_request("GET", "/ok2", &[], b""),
        ]
        .concat(),
    )
    .unwrap();
    expect_status(&c.read_response("GET").unwrap(), 403, "pipelined deny");
    expect_status(
        &c.read_response("GET").unwrap(),
        200,
        "pipelined after deny",
    );
    assert!(c.pending().is_empty());
    assert_eq!(be.request_count(), 5, "{:?}", be.requests());
    assert_eq!(be.accepted(), 1, "one backend connection (pooled)");
    assert!(
        be.requests().iter().all(|r| r.target.starts_with("/ok")),
        "{:?}",
        be.requests()
    );
    // HTTP/1.0 with keep-alive: told so, and kept.
    let mut c10 = Client::connect(halb.addr);
    c10.send(b"GET /admin HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let r = c10.read_response("GET").unwrap();
    expect_status(&r, 403, "HTTP/1.0 keep-alive");
    assert_eq!(r.header("connection"), Some("keep-alive"), "{r}");
    c10.send(b"GET /ok HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    expect_status(
        &c10.read_response("GET").unwrap(),
        200,
        "HTTP/1.0 after a deny",
    );
    // The log still says denied.
    let client = c.local_addr().to_string();
    let l = halb
        .wait_access_log(|l| l.fields.get("client") == Some(&client) && l.line.contains("/rate"));
    assert_eq!(l.get("end"), "denied", "{}", l.line);
    assert_eq!(l.num("status"), 429, "{}", l.line);
    assert!(l.num("bytes_out") > 0, "{}", l.line);
}

/// A deny closes the connection as before when keeping it is not possible or not wanted:
/// a request body to skip, `Connection: close`, HTTP/1.0 without keep-alive.
#[test]
fn deny_closes_when_the_connection_cannot_stay() {
    let be = HttpBackend::new("be");
    let halb = Conf::http()
        .server("s1", be.addr)
        .acl("is_admin", "path_beg /admin")
        .http_request(&["deny = true", "if = \"is_admin\""])
        .start();
    let cases: [(&str, &[u8]); 4] = [
        (
            "body",
            b"POST /admin HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
        ),
        (
            "chunked body",
            b"POST /admin HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "Connection: close",
            b"GET /admin HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        ),
        ("HTTP/1.0", b"GET /admin HTTP/1.0\r\nHost: h\r\n\r\n"),
    ];
    for (what, request) in cases {
        let mut c = Client::connect(halb.addr);
        c.send(request).unwrap();
        let r = c.read_response("GET").unwrap();
        expect_status(&r, 403, what);
        assert!(r.says_close(), "{what}: {r}");
        assert_eq!(c.closed_within(Duration::from_secs(5)), Ok(true), "{what}");
    }
    assert_eq!(be.request_count(), 0, "{:?}", be.requests());
}

/// A custom errorfile for the deny status: kept alive when it has a Content-Length and
/// no `Connection: close`; otherwise the connection closes after it.
#[test]
fn deny_with_errorfile() {
    let dir = TempDir::new();
    let framed =
        b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nno\n";
    let unframed = b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\n\r\nslow down\n";
    let said_close =
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nConnection: close\r\n\r\nno\n";
    let path = |name: &str, bytes: &[u8]| {
        let p = dir.path.join(name);
        std::fs::write(&p, bytes).unwrap();
        toml_str(&path_str(&p))
    };
    let be = HttpBackend::new("be");
    let halb = Conf::http()
        .frontend(&format!(
            "errorfile = {{ 403 = {}, 429 = {}, 404 = {} }}",
            path("403.http", framed),
            path("429.http", unframed),
            path("404.http", said_close)
        ))
        .server("s1", be.addr)
        .acl("is_admin", "path_beg /admin")
        .acl("is_rate", "path_beg /rate")
        .acl("is_gone", "path_beg /gone")
        .http_request(&["deny = true", "if = \"is_admin\""])
        .http_request(&["deny = 429", "if = \"is_rate\""])
        .http_request(&["deny = 404", "if = \"is_gone\""])
        .start();
    // Content-Length, no close: the file as is, and the connection goes on.
    let mut c = Client::connect(halb.addr);
    c.send(b"GET /admin HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    let r = c.read_response("GET").unwrap();
    assert_eq!([&r.raw_head[..], &r.raw_body[..]].concat(), framed, "{r}");
    expect_status(&c.get("/ok", &[]), 200, "after the errorfile deny");
    // No Content-Length (close-delimited), or Connection: close: sent as is, then closed.
    for (p, file) in [("/rate", &unframed[..]), ("/gone", &said_close[..])] {
        let request = format!("GET {p} HTTP/1.1\r\nHost: h\r\n\r\n");
        let reply = send_raw(halb.addr, request.as_bytes());
        assert_eq!(reply.bytes, file, "{p}: {}", reply.text());
        assert!(
            reply.closed,
            "{p}: connection not closed after the errorfile"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Forwarding headers
// ---------------------------------------------------------------------------------------

/// forwardfor appends the client address after the client's own X-Forwarded-For;
/// X-Forwarded-Proto/Port replace spoofed values; Forwarded is `for=<client>`.
#[test]
fn forwarding_headers() {
    let be = HttpBackend::new("be");
    let halb = Conf::http()
        .server("s1", be.addr)
        .frontend("forwardfor = true")
        .frontend("x_forwarded_proto = true")
        .frontend("x_forwarded_port = true")
        .frontend("forwarded = true")
        .start();
    let src = fresh_ip();
    let r = get_from(
        src,
        halb.addr,
        "/",
        &[
            ("X-Forwarded-For", "1.2.3.4"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Port", "1"),
        ],
    );
    expect_status(&r, 200, "forwarded");
    let seen = be.last();
    let src_s = src.to_string();
    let port = halb.addr.port().to_string();
    assert_eq!(
        seen.header_all("x-forwarded-for"),
        ["1.2.3.4", src_s.as_str()],
        "{seen:?}"
    );
    assert_eq!(seen.header_all("x-forwarded-proto"), ["http"], "{seen:?}");
    assert_eq!(
        seen.header_all("x-forwarded-port"),
        [port.as_str()],
        "{seen:?}"
    );
    assert_eq!(
        seen.header_all("forwarded"),
        [format!("for={src}")],
        "{seen:?}"
    );
}

/// `forwardfor = { except = ... }` skips X-Forwarded-For for those clients only;
/// `forwarded = { proto = true, by = true }` adds proto and by.
#[test]
fn forwardfor_except_and_forwarded_options() {
    let be = HttpBackend::new("be");
    let (inside, outside) = (fresh_ip(), fresh_ip());
    let halb = Conf::http()
        .server("s1", be.addr)
        .frontend(&format!("forwardfor = {{ except = \"{inside}/32\" }}"))
        .frontend("forwarded = { proto = true, by = true }")
        .start();
    expect_status(&get_from(inside, halb.addr, "/in", &[]), 200, "inside");
    let seen = be.last();
    assert!(
        !seen.has("x-forwarded-for"),
        "XFF added for an excepted client: {seen:?}"
    );
    let fwd = seen.header_all("forwarded");
    assert_eq!(fwd.len(), 1, "{seen:?}");
    let prefix = format!("for={inside};proto=http;by=");
    assert!(
        fwd[0].starts_with(&prefix),
        "Forwarded {:?} does not start with {prefix:?}",
        fwd[0]
    );
    assert!(
        fwd[0].contains(&halb.addr.ip().to_string()),
        "Forwarded by= is not the proxy's address {}: {:?}",
        halb.addr,
        fwd[0]
    );

    expect_status(&get_from(outside, halb.addr, "/out", &[]), 200, "outside");
    let seen = be.last();
    assert_eq!(
        seen.header_all("x-forwarded-for"),
        [outside.to_string()],
        "{seen:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Keep-alive, pooling, pipelining
// ---------------------------------------------------------------------------------------

/// 200 requests over 10 concurrent keep-alive client connections: every answer right,
/// every client connection kept open, and the backend accepted far fewer connections
/// than it got requests (pooled, reused backend connections).
#[test]
fn keep_alive_and_backend_reuse() {
    let be = HttpBackend::new("be");
    let halb = Conf::http().server("s1", be.addr).start();
    let addr = halb.addr;
    let workers: Vec<_> = (0..10)
        .map(|w| {
            thread::spawn(move || -> Result<(), String> {
                let mut c = Client::connect(addr);
                for i in 0..20 {
                    let path = format!("/ka/{w}/{i}");
                    let r = c
                        .request("GET", &path, &[], b"")
                        .map_err(|e| format!("{path}: {e}"))?;
                    if r.status != 200
                        || r.text() != "be"
                        || r.header("x-target") != Some(path.as_str())
                    {
                        return Err(format!("{path}: {r}"));
                    }
                    if r.says_close() {
                        return Err(format!("{path}: keep-alive response says close: {r}"));
                    }
                }
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap().unwrap();
    }
    assert_eq!(be.request_count(), 200);
    assert!(
        be.accepted() <= 20,
        "backend accepted {} connections for 200 requests: no pooling",
        be.accepted()
    );
}

/// HTTP/1.0 without keep-alive: the response says `Connection: close` and the proxy
/// closes. With `Connection: keep-alive` the connection stays open for another request.
#[test]
fn http10_close_and_keep_alive() {
    let be = HttpBackend::new("be");
    let halb = Conf::http().server("s1", be.addr).start();
    let reply = send_raw(halb.addr, b"GET /ten HTTP/1.0\r\n\r\n");
    let resps = reply.responses();
    assert_eq!(resps.len(), 1, "{}", reply.text());
    expect_status(&resps[0], 200, "HTTP/1.0");
    assert!(
        resps[0].says_close(),
        "HTTP/1.0 response without Connection: close: {}",
        resps[0]
    );
    assert!(
        reply.closed,
        "HTTP/1.0 connection left open: {}",
        reply.text()
    );
    assert_eq!(resps[0].text(), "be");

    let mut c = Client::connect(halb.addr);
    for i in 0..3 {
        c.send(format!("GET /ten-ka/{i} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").as_bytes())
            .unwrap();
        let r = c.read_final("GET").unwrap();
        expect_status(&r, 200, "HTTP/1.0 keep-alive");
        assert!(
            r.header_all("connection")
                .iter()
                .any(|v| v.eq_ignore_ascii_case("keep-alive")),
            "HTTP/1.0 keep-alive response without Connection: keep-alive: {r}"
        );
        assert_eq!(r.header("x-target"), Some(format!("/ten-ka/{i}").as_str()));
    }
}

/// A backend that closes after every response (`Connection: close`): a new backend
/// connection per request, while the client's keep-alive connection stays open.
#[test]
fn backend_close_keeps_the_client_connection() {
    let be = HttpBackend::start("be", Behaviour::new().close());
    let halb = Conf::http().server("s1", be.addr).start();
    let mut c = Client::connect(halb.addr);
    for i in 0..5 {
        let path = format!("/bc/{i}");
        let r = c
            .request("GET", &path, &[], b"")
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        expect_status(&r, 200, &path);
        assert_eq!(r.header("x-target"), Some(path.as_str()));
        assert!(
            !r.says_close(),
            "the backend's close reached the client: {r}"
        );
    }
    assert_eq!(be.accepted(), 5);
}

/// `http_keep_alive = "1s"`: an idle client connection between requests is closed,
/// without any response bytes (no 408 for a connection that sent nothing).
#[test]
fn idle_keep_alive_connection_is_closed_silently() {
    let be = HttpBackend::new("be");
    let halb = Conf::http()
        .server("s1", be.addr)
        .timeout("http_keep_alive = \"1s\"")
        .start();
    let mut c = Client::connect(halb.addr);
    expect_status(&c.get("/first", &[]), 200, "first");
    assert_eq!(
        c.closed_within(Duration::from_secs(8)),
        Ok(true),
        "idle keep-alive connection not closed (or answered) within 8 s of a 1 s limit"
    );
}

/// Pipelined requests written at once (the first one slow, a HEAD and a POST among them)
/// are answered in order.
#[test]
fn pipelined_requests_answered_in_order() {
    let be = HttpBackend::new("be");
    let halb = Conf::http().server("s1", be.addr).start();
    let mut c = Client::connect(halb.addr);
    let mut all = Vec::new();
    all.extend(build_request(
        "GET",
        "/p0",
        &[("X-Test-Delay-Ms", "300")],
        b"",
    ));
    all.extend(build_request("GET", "/p1", &[], b""));
    all.extend(build_request("HEAD", "/p2", &[("X-Test-Len", "50")], b""));
    all.extend(build_request(
        "POST",
        "/p3",
        &[("X-Test-Echo", "1")],
        b"posted body",
    ));
    all.extend(build_request("GET", "/p4", &[("X-Test-Chunked", "1")], b""));
    c.send(&all).unwrap();
    let methods = ["GET", "GET", "HEAD", "POST", "GET"];
    for (i, m) in methods.iter().enumerate() {
        let r = c
            .read_final(m)
            .unwrap_or_else(|e| panic!("response {i}: {e}"));
        expect_status(&r, 200, &format!("pipelined {i}"));
        assert_eq!(
            r.header("x-target"),
            Some(format!("/p{i}").as_str()),
            "out of order: {r}"
        );
        match i {
            2 => {
                assert!(r.body.is_empty(), "HEAD response with a body: {r}");
                assert_eq!(r.header("content-length"), Some("50"), "{r}");
            }
            3 => assert_eq!(r.text(), "posted body"),
            _ => assert_eq!(r.text(), "be"),
        }
    }
    assert_eq!(
        c.pending(),
        b"",
        "extra bytes after the pipelined responses"
    );
}

/// The backend closes every connection right after its first response, without saying
/// so: idempotent requests that meet a stale pooled connection are replayed on a fresh
/// one; POSTs (http_reuse = "safe") never meet one. Every request succeeds.
#[test]
fn stale_pooled_connections_are_retried_or_avoided() {
    let be = HttpBackend::start("be", Behaviour::new().drop_idle().echo());
    let halb = Conf::http().server("s1", be.addr).start();
    let mut c = Client::connect(halb.addr);
    for i in 0..10 {
        let path = format!("/stale/{i}");
        let r = c
            .request("GET", &path, &[], b"")
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        expect_status(&r, 200, &path);
        assert_eq!(r.header("x-target"), Some(path.as_str()));
        // Give the backend's FIN time to arrive, so the next request meets a dead
        // pooled connection (not an assertion: the test holds either way).
        thread::sleep(Duration::from_millis(50));
    }
    for i in 0..10 {
        let path = format!("/stale-post/{i}");
        let body = format!("body {i}");
        let r = c
            .request("POST", &path, &[], body.as_bytes())
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        expect_status(&r, 200, &path);
        assert_eq!(r.text(), body);
        thread::sleep(Duration::from_millis(50));
    }
    let reqs = be.requests();
    assert_eq!(reqs.len(), 20, "{reqs:?}");
    assert!(reqs.iter().all(|r| r.seq == 0));
    // Each target exactly once: replays happen only when the request never arrived.
    let targets: HashSet<&str> = reqs.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(targets.len(), 20);
}

/// The server closes a reused connection as the request arrives (before any response
/// byte): the proxy replays idempotent requests on a fresh connection, so every GET
/// succeeds, and each is answered exactly once; the replay path really ran.
#[test]
fn request_on_a_connection_closed_under_it_is_replayed() {
    let be = HttpBackend::start("be", Behaviour::new().drop_on_reuse());
    let halb = Conf::http().server("s1", be.addr).start();
    let mut c = Client::connect(halb.addr);
    for i in 0..10 {
        let path = format!("/replay/{i}");
        for (method, body) in [("GET", &b""[..]), ("PUT", b"put body"), ("DELETE", b"")] {
            let r = c
                .request(method, &path, &[], body)
                .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
            expect_status(&r, 200, &format!("{method} {path}"));
            assert_eq!(r.header("x-target"), Some(path.as_str()));
            assert_eq!(r.header("x-method"), Some(method));
        }
    }
    let reqs = be.requests();
    assert_eq!(reqs.len(), 30, "{reqs:#?}");
    assert!(reqs.iter().all(|r| r.seq == 0));
    let dropped = be.dropped();
    assert!(
        !dropped.is_empty(),
        "no request met a reused connection, so the replay path was not exercised"
    );
}

/// The same race under http_reuse = "always": a POST that meets the closing connection
/// is not replayed (docs/http.md: nothing but idempotent requests is) → 502.
#[test]
fn post_on_a_connection_closed_under_it_is_not_replayed() {
    let be = HttpBackend::start("be", Behaviour::new().drop_on_reuse());
    let halb = Conf::http()
        .server("s1", be.addr)
        .backend("http_reuse = \"always\"")
        .start();
    let mut c = Client::connect(halb.addr);
    expect_status(&c.get("/first", &[]), 200, "first GET");
    let r = c.request("POST", "/post", &[], b"once").unwrap();
    expect_status(&r, 502, "POST on a connection the server closed");
    assert_eq!(be.dropped(), ["POST /post"]);
    assert!(
        be.requests().iter().all(|r| r.method != "POST"),
        "the POST was replayed: {:#?}",
        be.requests()
    );
}

/// http_reuse = "safe" (default): a POST goes on a fresh backend connection even when an
/// idle one is pooled; GETs reuse.
#[test]
fn reuse_safe_gives_post_a_fresh_connection() {
    let be = HttpBackend::start("be", Behaviour::new().echo());
    let halb = Conf::http().server("s1", be.addr).start();
    let mut c = Client::connect(halb.addr);
    for round in 0..3 {
        expect_status(&c.get(&format!("/g{round}"), &[]), 200, "GET");
        let r = c
            .request("POST", &format!("/post{round}"), &[], b"data")
            .unwrap();
        expect_status(&r, 200, "POST");
        assert_eq!(r.text(), "data");
        expect_status(&c.get(&format!("/after{round}"), &[]), 200, "GET after");
    }
    let reqs = be.requests();
    for r in &reqs {
        if r.method == "POST" {
            assert_eq!(
                r.seq, 0,
                "POST {} reused a backend connection: {reqs:#?}",
                r.target
            );
        }
    }
    let reused_gets = reqs
        .iter()
        .filter(|r| r.method == "GET" && r.seq > 0)
        .count();
    assert!(
        reused_gets > 0,
        "no GET reused a pooled connection: {reqs:#?}"
    );
}

/// http_reuse = "always": a POST may go on a pooled connection too.
#[test]
fn reuse_always_reuses_for_post() {
    let be = HttpBackend::start("be", Behaviour::new().echo());
    let halb = Conf::http()
        .server("s1", be.addr)
        .backend("http_reuse = \"always\"")
        .start();
    let mut c = Client::connect(halb.addr);
    for round in 0..3 {
        expect_status(&c.get(&format!("/g{round}"), &[]), 200, "GET");
        let r = c
            .request("POST", &format!("/post{round}"), &[], b"x")
            .unwrap();
        expect_status(&r, 200, "POST");
    }
    let reqs = be.requests();
    assert!(
        reqs.iter().any(|r| r.method == "POST" && r.seq > 0),
        "no POST reused a pooled connection under http_reuse = always: {reqs:#?}"
    );
    assert_eq!(be.accepted(), 1, "{reqs:#?}");
}

/// http_reuse = "never" and http_server_close = true: one backend connection per
/// request, while the client connection stays open.
#[test]
fn reuse_never_and_server_close() {
    for line in ["http_reuse = \"never\"", "http_server_close = true"] {
        let be = HttpBackend::new("be");
        let halb = Conf::http().server("s1", be.addr).backend(line).start();
        let mut c = Client::connect(halb.addr);
        for i in 0..5 {
            let r = c.get(&format!("/n{i}"), &[]);
            expect_status(&r, 200, line);
            assert!(
                !r.says_close(),
                "{line}: the client connection is closed too: {r}"
            );
        }
        let reqs = be.requests();
        assert!(
            reqs.iter().all(|r| r.seq == 0),
            "{line}: a backend connection was reused: {reqs:#?}"
        );
        assert_eq!(be.accepted(), 5, "{line}");
        // The proxy closes each backend connection itself.
        for id in 0..5 {
            assert!(
                be.wait_conn_closed(id, Duration::from_secs(5)),
                "{line}: backend connection {id} left open"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------

/// `Expect: 100-continue`: forwarded, the interim `100 Continue` relayed, then the body.
#[test]
fn expect_100_continue() {
    let be = HttpBackend::start("be", Behaviour::new().echo().continue_100());
    let halb = Conf::http().server("s1", be.addr).start();
    let mut c = Client::connect(halb.addr);
    c.send(b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    let interim = c.read_response("POST").expect("interim response");
    expect_status(&interim, 100, "interim");
    c.send(b"hello world").unwrap();
    let r = c.read_final("POST").unwrap();
    expect_status(&r, 200, "final");
    assert_eq!(r.text(), "hello world");
    let seen = be.last();
    assert_eq!(seen.header("expect"), Some("100-continue"), "{seen:?}");
    assert_eq!(seen.body, b"hello world");
    // The connection is still usable.
    expect_status(&c.get("/next", &[]), 200, "after 100-continue");
}

/// Content-Length bodies of a few MiB both ways, byte for byte, on one connection.
#[test]
fn content_length_bodies_pass_byte_exact() {
    let be = HttpBackend::start("be", Behaviour::new().echo());
    let halb = Conf::http().server("s1", be.addr).start();
    let mut c = Client::connect(halb.addr);
    let up = pattern(3 << 20);
    let mut w = c.stream.try_clone().unwrap();
    let req = build_request("POST", "/upload", &[], &up);
    // Written from another thread: the echo may start before the upload ends.
    let writer = thread::spawn(move || w.write_all(&req));
    let r = c.read_final("POST").unwrap();
    writer.join().unwrap().unwrap();
    expect_status(&r, 200, "upload");
    assert!(
        r.body == up,
        "echoed upload differs ({} bytes)",
        r.body.len()
    );
    assert!(be.last().body == up, "backend got a different upload");
    let r = c.get("/download", &[("X-Test-Len", "3145728")]);
    expect_status(&r, 200, "download");
    assert_eq!(r.header("content-length"), Some("3145728"));
    assert!(r.body == pattern(3 << 20), "download differs");
}

/// A chunked request body (extension, odd chunk sizes, trailer) reaches the backend
/// byte for byte, framing included; a chunked response comes back byte for byte.
#[test]
fn chunked_bodies_pass_byte_exact() {
    let be = HttpBackend::start("be", Behaviour::new().echo());
    let halb = Conf::http().server("s1", be.addr).start();
    let body = pattern(300_000);
    let mut raw = b"5;ext=\"v\"\r\n".to_vec();
    raw.extend_from_slice(&body[..5]);
    raw.extend_from_slice(b"\r\n");
    let rest = chunked_encode(&body[5..], &[1, 4095, 70_000, 13, 65_536]);
    raw.extend_from_slice(&rest[..rest.len() - 5]); // without "0\r\n\r\n"
    raw.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
    let mut req =
        b"POST /chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    req.extend_from_slice(&raw);

    let mut c = Client::connect(halb.addr);
    c.send(&req).unwrap();
    let r = c.read_final("POST").unwrap();
    expect_status(&r, 200, "chunked upload");
    assert!(
        r.body == body,
        "echoed body differs ({} bytes back)",
        r.body.len()
    );
    let seen = be.last();
    assert!(seen.chunked, "{:?}", seen.headers);
    assert!(seen.body == body, "backend decoded body differs");
    assert!(
        seen.raw_body == raw,
        "chunked framing changed on the way: first difference at byte {:?}",
        seen.raw_body.iter().zip(&raw).position(|(a, b)| a != b)
    );

    // Chunked response, then another request on the same connection.
    let r = c.get(
        "/chunked-down",
        &[("X-Test-Len", "500000"), ("X-Test-Chunked", "1")],
    );
    expect_status(&r, 200, "chunked download");
    assert!(
        r.header_all("transfer-encoding")
            .iter()
            .any(|v| v.eq_ignore_ascii_case("chunked")),
        "{r}"
    );
    let want = pattern(500_000);
    assert!(
        r.body == want,
        "chunked response payload differs ({} bytes)",
        r.body.len()
    );
    assert!(
        r.raw_body == chunked_encode(&want, CHUNK_SIZES),
        "chunked response framing changed on the way"
    );
    let r = c.get("/after", &[]);
    expect_status(&r, 200, "after chunked");
    assert_eq!(r.header("x-target"), Some("/after"));
}

/// HEAD, 204 and 304 responses carry no body even with framing fields: the next
/// response on the same keep-alive connection is intact.
#[test]
fn bodyless_responses_on_keep_alive() {
    let be = HttpBackend::new("be");
    let halb = Conf::http().server("s1", be.addr).start();
    let mut c = Client::connect(halb.addr);
    let steps: Vec<(&str, Fields, u16)> = vec![
        ("HEAD", vec![("X-Test-Len", "1000")], 200),
        (
            "HEAD",
            vec![("X-Test-Len", "1000"), ("X-Test-Chunked", "1")],
            200,
        ),
        ("GET", vec![("X-Test-Status", "204")], 204),
        ("GET", vec![("X-Test-Status", "304")], 304),
    ];
    for (i, (method, headers, status)) in steps.iter().enumerate() {
        let path = format!("/bodyless/{i}");
        let r = c
            .request(method, &path, headers, b"")
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        expect_status(&r, *status, &path);
        assert!(r.body.is_empty());
        let next = format!("/next/{i}");
        let r = c.get(&next, &[]);
        expect_status(&r, 200, &next);
        assert_eq!(
            r.header("x-target"),
            Some(next.as_str()),
            "desynchronised after {method} {status}"
        );
        assert_eq!(r.text(), "be");
    }
    assert_eq!(c.pending(), b"");
}

/// An Upgrade request answered 101 becomes a tunnel: bytes go both ways unchanged.
#[test]
fn websocket_upgrade_tunnel_echo() {
    let be = HttpBackend::start("be", Behaviour::new().upgrade());
    let halb = Conf::http().server("s1", be.addr).start();
    let mut c = Client::connect(halb.addr);
    c.send(
        b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .unwrap();
    let r = c.read_response("GET").unwrap();
    expect_status(&r, 101, "upgrade");
    assert_eq!(r.header("upgrade"), Some("websocket"), "{r}");
    let seen = be.last();
    assert_eq!(
        seen.header("upgrade"),
        Some("websocket"),
        "Upgrade not forwarded: {seen:?}"
    );
    let early = c.take_pending();
    assert!(
        early.is_empty(),
        "bytes after the 101: {}",
        show(&early, 100)
    );
    // Small messages, one at a time.
    for i in 0..5 {
        let msg = format!("message number {i}");
        c.send(msg.as_bytes()).unwrap();
        let mut got = vec![0u8; msg.len()];
        c.stream
            .read_exact(&mut got)
            .expect("echo through the tunnel");
        assert_eq!(got, msg.as_bytes());
    }
    // 1 MiB both ways at once.
    let big = pattern(1 << 20);
    let mut w = c.stream.try_clone().unwrap();
    let to_send = big.clone();
    let writer = thread::spawn(move || w.write_all(&to_send));
    let mut got = Vec::with_capacity(big.len());
    let mut buf = vec![0u8; 64 * 1024];
    while got.len() < big.len() {
        let n = c.stream.read(&mut buf).expect("tunnel read");
        assert!(n > 0, "tunnel closed after {} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
    }
    writer.join().unwrap().unwrap();
    assert!(got == big, "tunnel corrupted the stream");
}

// ---------------------------------------------------------------------------------------
// Timeouts and unavailable servers
// ---------------------------------------------------------------------------------------

/// A head sent one byte every 300 ms never completes: 408 once `http_request` (1 s)
/// passes, then a close; the backend sees nothing.
#[test]
fn slowloris_head_gets_408() {
    let be = HttpBackend::new("be");
    let halb = Conf::http()
        .server("s1", be.addr)
        .timeout("http_request = \"1s\"")
        .start();
    let mut s = connect(halb.addr);
    let mut w = s.try_clone().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let head = format!("GET / HTTP/1.1\r\nHost: h\r\nX-Slow: {}", "a".repeat(200));
    let writer = thread::spawn(move || {
        for b in head.bytes() {
            if stop2.load(Ordering::SeqCst) || w.write_all(&[b]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(300));
        }
    });
    let reply = read_all(&mut s);
    stop.store(true, Ordering::SeqCst);
    let _ = writer.join();
    let resps = reply.responses();
    assert_eq!(resps.len(), 1, "expected one 408, got: {}", reply.text());
    expect_status(&resps[0], 408, "slowloris");
    assert!(reply.closed, "connection not closed after the 408");
    assert_eq!(be.raw_len(), 0, "bytes reached the backend");
}

/// A backend that never answers: 504 once `timeouts.server` (1 s) passes.
#[test]
fn silent_backend_gets_504() {
    let be = Backend::silent();
    let halb = Conf::http()
        .server("s1", be.addr)
        .timeout("server = \"1s\"")
        .start();
    let mut c = Client::connect(halb.addr);
    let r = c.get("/slow", &[]);
    expect_status(&r, 504, "silent backend");
    assert_eq!(c.closed_within(Duration::from_secs(5)), Ok(true));
}

/// No usable server (all refuse): 503, never a hung client.
#[test]
fn no_usable_server_gets_503() {
    let halb = Conf::http()
        .server("dead1", dead_addr())
        .server("dead2", dead_addr())
        .start();
    for i in 0..3 {
        let mut c = Client::connect(halb.addr);
        let r = c.get(&format!("/x{i}"), &[]);
        expect_status(&r, 503, "all servers dead");
        assert_eq!(c.closed_within(Duration::from_secs(5)), Ok(true));
    }
}

/// A server that never completes the handshake: 503 after the connect timeouts.
#[test]
fn unreachable_server_gets_503() {
    let hole = Blackhole::new();
    let halb = Conf::http()
        .server("hole", hole.addr)
        .timeout("connect = \"300ms\"")
        .defaults("retries = 1")
        .start();
    let r = get(halb.addr, "/", &[]);
    expect_status(&r, 503, "blackholed server");
}

/// `errorfile = { 503 = PATH }`: the file is sent as is instead of the built-in page.
#[test]
fn errorfile_replaces_the_builtin_page() {
    let dir = TempDir::new();
    let path = dir.path.join("503.http");
    let page = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 14\r\nX-Custom: yes\r\n\r\ncustom outage\n";
    std::fs::write(&path, page).unwrap();
    let halb = Conf::http()
        .frontend(&format!(
            "errorfile = {{ 503 = {} }}",
            toml_str(&path_str(&path))
        ))
        .server("dead", dead_addr())
        .start();
    let reply = send_raw(halb.addr, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(reply.bytes, page, "got: {}", reply.text());
    assert!(reply.closed, "connection not closed after the error page");
}

/// One access-log line per request, with the fields of docs/http.md.
#[test]
fn access_log_line_per_request() {
    let be = HttpBackend::new("be");
    let halb = Conf::http().server("s1", be.addr).start();
    let mut c = Client::connect(halb.addr);
    for i in 0..3 {
        expect_status(&c.get(&format!("/logged/{i}"), &[]), 200, "logged");
    }
    let client = c.local_addr().to_string();
    for i in 0..3 {
        let want = format!("request=\"GET /logged/{i} HTTP/1.1\"");
        let l = halb.wait_access_log(|l| l.line.contains(&want));
        assert_eq!(l.get("client"), client, "{}", l.line);
        assert_eq!(l.get("frontend"), "fe", "{}", l.line);
        assert_eq!(l.get("backend"), "be", "{}", l.line);
        assert_eq!(l.get("server"), "s1", "{}", l.line);
        assert_eq!(l.num("status"), 200, "{}", l.line);
        assert!(l.num("bytes_out") > 0, "{}", l.line);
        assert_eq!(l.get("timers").split('/').count(), 5, "{}", l.line);
        assert_eq!(l.num("retries"), 0, "{}", l.line);
    }
}

// ---------------------------------------------------------------------------------------
// Balancing
// ---------------------------------------------------------------------------------------

/// Three servers a, b, c in `be` with `balance = BALANCE`.
fn three(balance: &str) -> (Vec<HttpBackend>, Halb) {
    let bs: Vec<HttpBackend> = ["a", "b", "c"]
        .iter()
        .map(|n| HttpBackend::new(n))
        .collect();
    let mut conf = Conf::http().backend(&format!("balance = {}", toml_str(balance)));
    for b in &bs {
        conf = conf.server(&b.name, b.addr);
    }
    let halb = conf.start();
    (bs, halb)
}

/// Every key always lands on the same server; the keys are spread over several servers.
fn assert_sticky(picks: &HashMap<String, Vec<String>>) {
    for (key, servers) in picks {
        let set: HashSet<&String> = servers.iter().collect();
        assert_eq!(set.len(), 1, "key {key} went to {servers:?}");
    }
    let used: HashSet<&String> = picks.values().map(|v| &v[0]).collect();
    assert!(used.len() >= 2, "every key went to {used:?}: no spreading");
}

#[test]
fn balance_uri_is_sticky() {
    let (_bs, halb) = three("uri");
    let mut picks: HashMap<String, Vec<String>> = HashMap::new();
    for i in 0..20 {
        for q in 0..3 {
            // The query string is not part of the default uri hash.
            let r = get(halb.addr, &format!("/u/{i}?q={q}"), &[]);
            expect_status(&r, 200, "uri");
            picks.entry(format!("/u/{i}")).or_default().push(r.server());
        }
    }
    assert_sticky(&picks);
}

#[test]
fn balance_url_param_is_sticky_and_round_robin_without_it() {
    let (_bs, halb) = three("url_param(id)");
    let mut picks: HashMap<String, Vec<String>> = HashMap::new();
    for i in 0..20 {
        for extra in ["", "&x=1", "&y=2"] {
            let r = get(halb.addr, &format!("/p?id=user{i}{extra}"), &[]);
            expect_status(&r, 200, "url_param");
            picks
                .entry(format!("user{i}"))
                .or_default()
                .push(r.server());
        }
    }
    assert_sticky(&picks);
    let names: Vec<String> = (0..6)
        .map(|i| get(halb.addr, &format!("/p?other={i}"), &[]).server())
        .collect();
    let t = tally(&names);
    assert_eq!(
        (t.get("a"), t.get("b"), t.get("c")),
        (Some(&2), Some(&2), Some(&2)),
        "requests without the parameter are not round robin: {names:?}"
    );
}

#[test]
fn balance_hdr_is_sticky() {
    let (_bs, halb) = three("hdr(x-user)");
    let mut picks: HashMap<String, Vec<String>> = HashMap::new();
    for i in 0..20 {
        let user = format!("user-{i}");
        for q in 0..3 {
            let r = get(halb.addr, &format!("/h{q}"), &[("X-User", &user)]);
            expect_status(&r, 200, "hdr");
            picks.entry(user.clone()).or_default().push(r.server());
        }
    }
    assert_sticky(&picks);
    let names: Vec<String> = (0..6)
        .map(|i| get(halb.addr, &format!("/n{i}"), &[]).server())
        .collect();
    let used: HashSet<&String> = names.iter().collect();
    assert_eq!(
        used.len(),
        3,
        "requests without the header are not round robin: {names:?}"
    );
}

#[test]
fn balance_source_is_sticky() {
    let (_bs, halb) = three("source");
    let mut picks: HashMap<String, Vec<String>> = HashMap::new();
    for _ in 0..20 {
        let ip = fresh_ip();
        for q in 0..3 {
            let r = get_from(ip, halb.addr, &format!("/s{q}"), &[]);
            expect_status(&r, 200, "source");
            picks.entry(ip.to_string()).or_default().push(r.server());
        }
    }
    assert_sticky(&picks);
}

// ---------------------------------------------------------------------------------------
// Cookie persistence
// ---------------------------------------------------------------------------------------

/// The `Set-Cookie` the proxy inserted for `name`, if any: its value.
fn inserted_cookie(r: &Response, name: &str) -> Option<String> {
    r.header_all("set-cookie").iter().find_map(|v| {
        let first = v.split(';').next()?.trim();
        let (n, val) = first.split_once('=')?;
        (n == name).then(|| val.to_string())
    })
}

/// `cookie insert indirect nocache`: the first response sets `SRV=<server value>;
/// path=/` (and `Cache-Control: private`), requests with it stick to that server, which
/// never sees the cookie; no new cookie while it is valid.
#[test]
fn cookie_insert_persistence() {
    let (s1, s2) = (HttpBackend::new("s1"), HttpBackend::new("s2"));
    let halb = Conf::http()
        .backend("cookie = { name = \"SRV\", mode = \"insert\", indirect = true, nocache = true }")
        .server_with("s1", s1.addr, &["cookie = \"v1\""])
        .server_with("s2", s2.addr, &["cookie = \"v2\""])
        .start();
    let value_of = |server: &str| if server == "s1" { "v1" } else { "v2" };

    let r = get(halb.addr, "/", &[]);
    expect_status(&r, 200, "first");
    let first = r.server();
    let v = inserted_cookie(&r, "SRV").unwrap_or_else(|| panic!("no SRV cookie inserted: {r}"));
    assert_eq!(
        v,
        value_of(&first),
        "cookie value does not name the server that answered: {r}"
    );
    assert!(
        r.header_all("set-cookie")
            .contains(&format!("SRV={v}; path=/").as_str()),
        "Set-Cookie not in HAProxy's format: {r}"
    );
    assert!(
        r.header_all("cache-control")
            .iter()
            .any(|c| c.contains("private")),
        "nocache: no Cache-Control: private: {r}"
    );

    for (server, value) in [("s1", "v1"), ("s2", "v2")] {
        let cookie = format!("other=1; SRV={value}; more=2");
        for i in 0..6 {
            let r = get(halb.addr, &format!("/c{i}"), &[("Cookie", &cookie)]);
            expect_status(&r, 200, "with cookie");
            assert_eq!(r.server(), server, "cookie {value} not honoured: {r}");
            assert_eq!(
                inserted_cookie(&r, "SRV"),
                None,
                "cookie re-inserted while valid: {r}"
            );
        }
        let be = if server == "s1" { &s1 } else { &s2 };
        let seen = be.last();
        let c = seen.header_all("cookie").join("; ");
        assert!(
            !c.contains("SRV"),
            "indirect: the backend saw the cookie: {c:?}"
        );
        assert!(
            c.contains("other=1") && c.contains("more=2"),
            "other cookies lost: {c:?}"
        );
    }
}

/// A cookie naming a server that is down: with redispatch the request goes to a live
/// server and the client gets that server's cookie.
#[test]
fn cookie_naming_a_dead_server_redispatches() {
    let s1 = HttpBackend::new("s1");
    let halb = Conf::http()
        .defaults("redispatch = true")
        .backend("cookie = { name = \"SRV\", mode = \"insert\", indirect = true }")
        .server_with("s1", s1.addr, &["cookie = \"v1\""])
        .server_with("s2", dead_addr(), &["cookie = \"v2\""])
        .start();
    for i in 0..3 {
        let r = get(halb.addr, &format!("/d{i}"), &[("Cookie", "SRV=v2")]);
        expect_status(&r, 200, "redispatched");
        assert_eq!(r.server(), "s1");
        assert_eq!(inserted_cookie(&r, "SRV").as_deref(), Some("v1"), "{r}");
    }
}

/// `cookie prefix`: the server's own cookie gets `<server value>~` in front on the way
/// out and loses it on the way back in.
#[test]
fn cookie_prefix_persistence() {
    let (s1, s2) = (HttpBackend::new("s1"), HttpBackend::new("s2"));
    let halb = Conf::http()
        .backend("cookie = { name = \"JSESSIONID\", mode = \"prefix\" }")
        .server_with("s1", s1.addr, &["cookie = \"w1\""])
        .server_with("s2", s2.addr, &["cookie = \"w2\""])
        .start();
    let r = get(
        halb.addr,
        "/login",
        &[("X-Test-Header", "Set-Cookie: JSESSIONID=abc123; Path=/")],
    );
    expect_status(&r, 200, "login");
    let server = r.server();
    let w = if server == "s1" { "w1" } else { "w2" };
    assert_eq!(
        r.header_all("set-cookie"),
        [format!("JSESSIONID={w}~abc123; Path=/")],
        "prefixed cookie: {r}"
    );
    let cookie = format!("JSESSIONID={w}~abc123");
    for i in 0..6 {
        let r = get(halb.addr, &format!("/app{i}"), &[("Cookie", &cookie)]);
        expect_status(&r, 200, "with cookie");
        assert_eq!(r.server(), server, "prefix cookie not honoured: {r}");
    }
    let be = if server == "s1" { &s1 } else { &s2 };
    assert_eq!(
        be.last().header_all("cookie"),
        ["JSESSIONID=abc123"],
        "the backend did not get its own cookie value back"
    );
}
