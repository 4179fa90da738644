//! A parsed request seen through the traits of the rule engine ([`RequestFacts`]) and
//! of the balancers ([`HeaderLookup`]): borrowed views, nothing copied.

use std::net::IpAddr;

use crate::balance::HeaderLookup;
use crate::http::acl::RequestFacts;
use crate::http::RequestHead;

/// One request: its head, the buffer it was parsed from, and its connection.
pub struct Facts<'a> {
    /// The parsed head (ranges into `buf`).
    pub head: &'a RequestHead,
    /// The bytes the head was parsed from.
    pub buf: &'a [u8],
    /// The client's address, if on IP.
    pub client: Option<IpAddr>,
    /// Whether the client connection is TLS.
    pub tls: bool,
}

impl Facts<'_> {
    /// The request-target without a scheme and authority (absolute-form targets,
    /// `http://host/p?q`, become `/p?q`; `*` and origin-form stay as they are).
    pub fn origin_target(&self) -> &[u8] {
        origin_target(self.head.target_bytes(self.buf))
    }
}

/// The path-and-query part of a request-target (RFC 9112 §3.2).
pub fn origin_target(target: &[u8]) -> &[u8] {
    if target.first() == Some(&b'/') || target == b"*" {
        return target;
    }
    // absolute-form: scheme "://" authority path-abempty [ "?" query ]
    let Some(after_scheme) = target
        .windows(3)
        .position(|w| w == b"://")
        .map(|i| &target[i + 3..])
    else {
        return target;
    };
    match after_scheme.iter().position(|&b| b == b'/' || b == b'?') {
        Some(i) if after_scheme[i] == b'/' => &after_scheme[i..],
        Some(i) => &after_scheme[i..],
        None => b"/",
    }
}

impl RequestFacts for Facts<'_> {
    fn path(&self) -> &[u8] {
        let t = self.origin_target();
        match t.iter().position(|&b| b == b'?') {
            Some(i) => &t[..i],
            None => t,
        }
    }

    fn query(&self) -> Option<&[u8]> {
        let t = self.origin_target();
        t.iter().position(|&b| b == b'?').map(|i| &t[i + 1..])
    }

    fn method(&self) -> &[u8] {
        self.head.method_bytes(self.buf)
    }

    fn any_header_value(&self, name: &str, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.head.headers.values(self.buf, name).any(f)
    }

    fn src(&self) -> Option<IpAddr> {
        self.client
    }

    fn ssl(&self) -> bool {
        self.tls
    }
}

impl HeaderLookup for Facts<'_> {
    fn header(&self, name: &[u8]) -> Option<&[u8]> {
        let buf = self.buf;
        self.head
            .headers
            .fields
            .iter()
            .find(|f| buf[f.name.clone()].eq_ignore_ascii_case(name))
            .map(|f| &buf[f.value.clone()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_target_strips_scheme_and_authority() {
        assert_eq!(origin_target(b"/a?b"), b"/a?b");
        assert_eq!(origin_target(b"http://h:8/x/y?q=1"), b"/x/y?q=1");
        assert_eq!(origin_target(b"http://h?q"), b"?q");
        assert_eq!(origin_target(b"http://h"), b"/");
        assert_eq!(origin_target(b"*"), b"*");
    }
}
