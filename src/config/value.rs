//! Parsers for the string-encoded values of the config: durations, addresses, names,
//! the HTTP `balance` forms and `redirect` actions.
//!
//! Each returns `Err(message)` with a complete, human sentence; the caller adds file,
//! line and key.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::model::{Balance, RedirectKind, UriHashOptions};

/// The duration units, largest first, with their length in milliseconds.
const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parses a duration such as `"500ms"`, `"5s"`, `"1m30s"`, `"1h"` or `"2d"`.
///
/// A duration is one or more `<integer><unit>` parts with units `ms`, `s`, `m`, `h`, `d`,
/// each unit at most once and from the largest to the smallest. A bare number is an
/// error (the unit is never guessed), and so are fractions (`"1.5s"`: write `"1500ms"`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const HINT: &str = "units: ms, s, m, h, d";
    if text.is_empty() {
        return Err(format!(
            "empty duration: write a number with a unit, e.g. \"5s\" ({HINT})"
        ));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "duration \"{text}\" has no unit: write \"{text}s\" ({HINT})"
        ));
    }
    if text.contains(char::is_whitespace) {
        return Err(format!(
            "invalid duration \"{text}\": write it without spaces, e.g. \"1m30s\" ({HINT})"
        ));
    }
    if text.contains('.') {
        return Err(format!(
            "duration \"{text}\" has a fraction: use a smaller unit instead (e.g. \"1500ms\" for 1.5s)"
        ));
    }
    let bytes = text.as_bytes();
    let mut pos = 0;
    let mut total_ms: u64 = 0;
    // Index into UNITS of the last unit seen; the next one must be smaller.
    let mut last_unit: Option<usize> = None;
    while pos < bytes.len() {
        let start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos == start {
            return Err(format!(
                "invalid duration \"{text}\": expected a number at \"{}\" ({HINT})",
                &text[start..]
            ));
        }
        let number: u64 = text[start..pos]
            .parse()
            .map_err(|_| format!("duration \"{text}\" is too large"))?;
        let unit_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_alphabetic() {
            pos += 1;
        }
        let unit = &text[unit_start..pos];
        if unit.is_empty() {
            return Err(format!(
                "invalid duration \"{text}\": \"{}\" has no unit ({HINT})",
                &text[start..pos]
            ));
        }
        let Some(idx) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(format!(
                "invalid duration \"{text}\": unknown unit \"{unit}\" ({HINT})"
            ));
        };
        if last_unit.is_some_and(|last| idx <= last) {
            return Err(format!(
                "invalid duration \"{text}\": units must go from the largest to the smallest, each at most once (e.g. \"1m30s\")"
            ));
        }
        last_unit = Some(idx);
        total_ms = number
            .checked_mul(UNITS[idx].1)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| format!("duration \"{text}\" is too large"))?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration the way the config writes it: `"1m30s"`, `"500ms"`, `"0s"`.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, len) in UNITS {
        let len = u128::from(len);
        if ms >= len {
            out.push_str(&format!("{}{unit}", ms / len));
            ms %= len;
        }
    }
    out
}

/// Parses a listen address: `ip:port`, `[ipv6]:port`, or `:port` for every address
/// (which expands to `0.0.0.0:port` and `[::]:port`). Port 0 is refused: every shard
/// must bind the same port.
pub fn parse_bind_address(text: &str) -> Result<Vec<SocketAddr>, String> {
    unbracketed_ipv6(text)?;
    if let Some(port) = text.strip_prefix(':') {
        let port = parse_port(text, port)?;
        return Ok(vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
        ]);
    }
    if let Some(port) = text.strip_prefix("*:") {
        return Err(format!(
            "\"{text}\": write \":{port}\" to listen on every address"
        ));
    }
    parse_ip_port(text).map(|a| vec![a])
}

/// Parses a server address: `ip:port` or `[ipv6]:port`. Hostnames are not resolved.
pub fn parse_server_address(text: &str) -> Result<SocketAddr, String> {
    unbracketed_ipv6(text)?;
    if text.starts_with(':') {
        return Err(format!(
            "\"{text}\": a server address needs an IP address (\":port\" is only for bind), e.g. \"10.0.0.11{text}\""
        ));
    }
    let addr = parse_ip_port(text)?;
    if addr.ip().is_unspecified() {
        return Err(format!(
            "\"{text}\": cannot connect to the unspecified address {}: write the server's IP address",
            addr.ip()
        ));
    }
    Ok(addr)
}

/// `ip:port` or `[ipv6]:port`, with a port in 1..=65535.
fn parse_ip_port(text: &str) -> Result<SocketAddr, String> {
    if text.is_empty() {
        return Err("empty address: write ip:port, e.g. \"10.0.0.11:80\"".to_string());
    }
    if let Some(rest) = text.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err(format!("\"{text}\": missing \"]\" after the IPv6 address"));
        };
        let ip: Ipv6Addr = host
            .parse()
            .map_err(|_| format!("\"{text}\": \"{host}\" is not a valid IPv6 address"))?;
        let Some(port) = after.strip_prefix(':') else {
            return Err(format!("\"{text}\": missing port: write \"[{host}]:PORT\""));
        };
        let port = parse_port(text, port)?;
        return Ok(SocketAddr::new(IpAddr::V6(ip), port));
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        if text.parse::<Ipv4Addr>().is_ok() {
            return Err(format!("\"{text}\": missing port: write \"{text}:PORT\""));
        }
        return Err(format!(
            "\"{text}\": expected ip:port, e.g. \"10.0.0.11:80\"{}",
            hostname_hint(text)
        ));
    };
    if host.contains(':') {
        return Err(format!(
            "\"{text}\": an IPv6 address needs brackets: write \"[{host}]:{port}\""
        ));
    }
    let port = parse_port(text, port)?;
    match host.parse::<Ipv4Addr>() {
        Ok(ip) => Ok(SocketAddr::new(IpAddr::V4(ip), port)),
        Err(_) if looks_like_hostname(host) => Err(format!(
            "\"{text}\": \"{host}\" is a hostname, not an IP address: hostnames are not resolved, write an IP address (e.g. \"10.0.0.11:{port}\")"
        )),
        Err(_) => Err(format!("\"{text}\": \"{host}\" is not a valid IP address")),
    }
}

/// Refuses an IPv6 address written without brackets (`::1`, `2001:db8::1:80`),
/// suggesting the bracketed form.
fn unbracketed_ipv6(text: &str) -> Result<(), String> {
    if text.parse::<Ipv6Addr>().is_err() {
        return Ok(());
    }
    let suggestion = match text.rsplit_once(':') {
        Some((host, port))
            if host.parse::<Ipv6Addr>().is_ok()
                && !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            format!("\"[{host}]:{port}\" (or \"[{text}]:PORT\")")
        }
        _ => format!("\"[{text}]:PORT\""),
    };
    Err(format!(
        "\"{text}\": an IPv6 address needs brackets and a port: write {suggestion}"
    ))
}

/// A port number 1..=65535.
fn parse_port(whole: &str, port: &str) -> Result<u16, String> {
    if port.is_empty() {
        return Err(format!("\"{whole}\": missing port number after \":\""));
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "\"{whole}\": invalid port \"{port}\" (expected 1..65535)"
        ));
    }
    match port.parse::<u32>() {
        Ok(p @ 1..=65535) => Ok(p as u16),
        _ => Err(format!(
            "\"{whole}\": port {port} is out of range (expected 1..65535)"
        )),
    }
}

fn looks_like_hostname(host: &str) -> bool {
    !host.is_empty()
        && host.bytes().any(|b| b.is_ascii_alphabetic())
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn hostname_hint(text: &str) -> &'static str {
    if looks_like_hostname(text) {
        " (hostnames are not resolved: write an IP address)"
    } else {
        ""
    }
}

/// Checks a frontend, backend or server name: ASCII letters, digits, `-`, `_` and `.`
/// only, so that names are safe in log lines (`server=NAME`) and in `backend/server`
/// notation.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("name is empty".to_string());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "name \"{name}\" contains {c:?}: names may only contain ASCII letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(())
}

/// Parses the HTTP-only forms of `balance`: `uri [whole] [len N] [depth N]` (options in
/// any order, each at most once, N ≥ 1), `url_param(NAME)` and `hdr(NAME)`.
///
/// Returns `None` when `text` is not one of these forms (the caller handles the L4
/// algorithms and unknown words), otherwise the balance or a message.
pub fn parse_http_balance(text: &str) -> Option<Result<Balance, String>> {
    let mut words = text.split_whitespace();
    let first = words.next()?;
    if first == "uri" {
        return Some(parse_uri_options(text, words));
    }
    for (fetch, header) in [("url_param", false), ("hdr", true)] {
        let Some(rest) = first.strip_prefix(fetch) else {
            continue;
        };
        if !rest.is_empty() && !rest.starts_with('(') {
            continue; // another word, e.g. "hdrs"
        }
        return Some(parse_fetch_name(text, fetch, rest, header).map(|name| {
            if header {
                Balance::Hdr(name)
            } else {
                Balance::UrlParam(name)
            }
        }));
    }
    None
}

fn parse_uri_options<'a>(
    text: &str,
    mut words: impl Iterator<Item = &'a str>,
) -> Result<Balance, String> {
    const FORM: &str = "expected \"uri\" followed by any of \"whole\", \"len N\", \"depth N\"";
    let mut opts = UriHashOptions::default();
    let mut seen: Vec<&str> = Vec::new();
    while let Some(word) = words.next() {
        if seen.contains(&word) {
            return Err(format!("balance \"{text}\": \"{word}\" is given twice"));
        }
        match word {
            "whole" => opts.whole = true,
            "len" | "depth" => {
                let n = words
                    .next()
                    .and_then(|n| n.parse::<u32>().ok())
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| {
                        format!(
                            "balance \"{text}\": \"{word}\" needs a number from 1 to {}, e.g. \"uri {word} 2\"",
                            u32::MAX
                        )
                    })?;
                if word == "len" {
                    opts.len = n;
                } else {
                    opts.depth = n;
                }
            }
            other => {
                let hint = super::suggest::did_you_mean(other, ["whole", "len", "depth"]);
                return Err(format!(
                    "balance \"{text}\": unknown option \"{other}\"{hint}: {FORM}"
                ));
            }
        }
        seen.push(word);
    }
    Ok(Balance::Uri(opts))
}

/// The NAME of `fetch(NAME)`; `rest` is what follows `fetch` in the first word.
fn parse_fetch_name(text: &str, fetch: &str, rest: &str, header: bool) -> Result<String, String> {
    let noun = if header {
        "header name"
    } else {
        "query parameter name"
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    if rest.is_empty() {
        let example = if header { "host" } else { "userid" };
        let name = words.get(1).copied().unwrap_or(example);
        return Err(format!(
            "balance \"{text}\": write the {noun} in parentheses: \"{fetch}({name})\""
        ));
    }
    let Some(name) = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .filter(|_| words.len() == 1)
    else {
        return Err(format!(
            "balance \"{text}\": expected \"{fetch}(NAME)\" with a {noun} and nothing after it"
        ));
    };
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    // A query parameter name cannot hold the `&` that separates parameters or a `#`.
    let separator = |b: u8| !header && (b == b'&' || b == b'#');
    let ok = !name.is_empty() && name.bytes().all(|b| token(b) && !separator(b));
    if !ok {
        return Err(format!(
            "balance \"{text}\": \"{name}\" is not a valid {noun}: use letters, digits and {}",
            if header {
                "!#$%&'*+-.^_`|~"
            } else {
                "!$%'*+-.^_`|~"
            }
        ));
    }
    Ok(name.to_string())
}

/// Parses a `redirect` action: `"scheme S"`, `"location URL"` or `"prefix P"`.
///
/// The argument is one word (no whitespace, no control characters, nothing after it);
/// a scheme is `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` (RFC 3986 §3.1).
pub fn parse_redirect(text: &str) -> Result<RedirectKind, String> {
    const FORMS: &str =
        "expected \"scheme https\", \"location https://example.com/\" or \"prefix /new\"";
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(format!(
            "redirect {text:?} contains the control character {c:?}: CR, LF and other control characters are not allowed"
        ));
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let Some(&kind) = words.first() else {
        return Err(format!("empty redirect: {FORMS}"));
    };
    if !["scheme", "location", "prefix"].contains(&kind) {
        let hint = super::suggest::did_you_mean(kind, ["scheme", "location", "prefix"]);
        return Err(format!("unknown redirect kind \"{kind}\"{hint}: {FORMS}"));
    }
    let arg = match words[1..] {
        [arg] => arg,
        [] => return Err(format!("redirect \"{kind}\" needs an argument: {FORMS}")),
        _ => {
            return Err(format!(
                "redirect \"{text}\": \"{kind}\" takes one argument without spaces (percent-encode a space as %20)"
            ))
        }
    };
    if !arg.is_ascii() {
        return Err(format!(
            "redirect \"{text}\": the argument must be ASCII (percent-encode other characters)"
        ));
    }
    Ok(match kind {
        "scheme" => {
            let valid = arg.starts_with(|c: char| c.is_ascii_alphabetic())
                && arg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
            if !valid {
                return Err(format!(
                    "redirect \"{text}\": \"{arg}\" is not a URI scheme (e.g. \"https\")"
                ));
            }
            RedirectKind::Scheme(arg.to_string())
        }
        "location" => RedirectKind::Location(arg.to_string()),
        _ => RedirectKind::Prefix(arg.to_string()),
    })
}

/// Parses one `expect_status` range string `"LOW-HIGH"` (both 100..=599, LOW <= HIGH).
pub fn parse_status_range(text: &str) -> Result<(u16, u16), String> {
    let form = "expected a status such as 200 or a range \"LOW-HIGH\" such as \"200-399\"";
    let Some((lo, hi)) = text.split_once('-') else {
        if text.trim().parse::<u16>().is_ok() {
            return Err(format!(
                "\"{text}\": write a single status as an integer ({}), or a range \"LOW-HIGH\"",
                text.trim()
            ));
        }
        return Err(format!("\"{text}\": {form}"));
    };
    let status = |part: &str| -> Result<u16, String> {
        let v: u16 = part
            .trim()
            .parse()
            .map_err(|_| format!("\"{text}\": \"{part}\" is not a status: {form}"))?;
        if !(100..=599).contains(&v) {
            return Err(format!(
                "\"{text}\": status {v} is out of range (expected 100..=599)"
            ));
        }
        Ok(v)
    };
    let (lo, hi) = (status(lo)?, status(hi)?);
    if lo > hi {
        return Err(format!(
            "\"{text}\": the range is empty ({lo} is above {hi}): write \"{hi}-{lo}\""
        ));
    }
    Ok((lo, hi))
}

/// The methods an HTTP check may name in lower case by mistake (methods are case-sensitive).
const KNOWN_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"];

/// Checks the `method` of an HTTP check: an HTTP token (RFC 9110 §5.6.2), at most 32
/// characters; a standard method written in lower case is refused with the right spelling.
pub fn check_method(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("empty method: write e.g. \"GET\" or \"HEAD\"".to_string());
    }
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if let Some(c) = text.chars().find(|c| !c.is_ascii() || !token(*c as u8)) {
        return Err(format!(
            "method {text:?} contains {c:?}: a method is a token (letters, digits and !#$%&'*+-.^_`|~), e.g. \"GET\""
        ));
    }
    if text.len() > 32 {
        return Err(format!("method \"{text}\" is longer than 32 characters"));
    }
    let upper = text.to_ascii_uppercase();
    if upper != text && KNOWN_METHODS.contains(&upper.as_str()) {
        return Err(format!(
            "method \"{text}\": methods are case-sensitive, write \"{upper}\""
        ));
    }
    Ok(())
}

/// Checks the `path` of an HTTP check: an origin-form request target (`/` then visible
/// ASCII: no spaces, control or non-ASCII characters).
pub fn check_request_path(text: &str) -> Result<(), String> {
    if !text.starts_with('/') {
        return Err(format!(
            "path \"{text}\" must start with '/', e.g. \"/health\""
        ));
    }
    if let Some(c) = text.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "path {text:?} contains {c:?}: spaces, control characters and non-ASCII characters are not allowed (percent-encode them, e.g. %20)"
        ));
    }
    Ok(())
}

/// Checks the `host` of an HTTP check (the `Host` header value): visible ASCII, no spaces.
pub fn check_host_header(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("must not be empty (leave host out to send the checked address)".to_string());
    }
    if let Some(c) = text.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "host {text:?} contains {c:?}: a Host header may not contain spaces, CR, LF or other control characters (write a name such as \"app.example.com\", IDNs in punycode)"
        ));
    }
    Ok(())
}

/// Parses the `address` of a check: an IP address alone (the port is `port`); `[v6]` is
/// accepted. Hostnames are not resolved; the unspecified addresses are refused.
pub fn parse_check_address(text: &str) -> Result<IpAddr, String> {
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        if ip.is_unspecified() {
            return Err(format!(
                "\"{text}\": cannot check the unspecified address {ip}: write an IP address, or leave address out to check the server's"
            ));
        }
        return Ok(ip);
    }
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return Err(format!(
            "\"{text}\": address is an IP address without a port: write address = \"{}\" and port = {}",
            sa.ip(),
            sa.port()
        ));
    }
    if looks_like_hostname(text) {
        return Err(format!(
            "\"{text}\" is a hostname, not an IP address: hostnames are not resolved, write an IP address"
        ));
    }
    if text.is_empty() {
        return Err("empty address: write an IP address such as \"10.0.0.11\"".to_string());
    }
    Err(format!("\"{text}\" is not a valid IP address"))
}

/// Parses the `[stats]` listen address: exactly one `ip:port` or `[ipv6]:port`. The
/// `":port"` form (two listeners) is refused with the forms to write instead.
pub fn parse_stats_bind(text: &str) -> Result<SocketAddr, String> {
    if let Some(port) = text.strip_prefix(':') {
        return Err(format!(
            "\"{text}\": the stats page listens on one address: write \"127.0.0.1:{port}\" to keep it local, or \"0.0.0.0:{port}\" / \"[::]:{port}\" for every address"
        ));
    }
    match parse_bind_address(text)?.as_slice() {
        [addr] => Ok(*addr),
        _ => Err(format!(
            "\"{text}\": expected one address such as \"127.0.0.1:8404\""
        )),
    }
}

/// Checks the `[stats]` `uri`: a path starting with `/`, without `;` or `?` (the page
/// adds `;csv`, `;json`), not `/metrics` (always served), visible ASCII only.
pub fn check_stats_uri(text: &str) -> Result<(), String> {
    if !text.starts_with('/') {
        return Err(format!(
            "uri \"{text}\" must start with '/', e.g. \"/stats\""
        ));
    }
    if text == "/metrics" {
        return Err(
            "uri \"/metrics\" is reserved: /metrics always serves the Prometheus metrics; choose another path, e.g. \"/stats\""
                .to_string(),
        );
    }
    if let Some(c) = text.chars().find(|c| matches!(c, ';' | '?')) {
        return Err(format!(
            "uri \"{text}\" contains {c:?}: write the path alone (\";csv\" and \";json\" are added to it, a query string is not allowed)"
        ));
    }
    if let Some(c) = text.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "uri {text:?} contains {c:?}: spaces, control characters and non-ASCII characters are not allowed"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("5s"), Ok(ms(5_000)));
        assert_eq!(parse_duration("1m"), Ok(ms(60_000)));
        assert_eq!(parse_duration("1m30s"), Ok(ms(90_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("2d"), Ok(ms(172_800_000)));
        assert_eq!(parse_duration("1h1m1s1ms"), Ok(ms(3_661_001)));
        assert_eq!(parse_duration("0s"), Ok(ms(0)));
    }

    #[test]
    fn bad_durations() {
        let e = parse_duration("5").unwrap_err();
        assert!(e.contains("write \"5s\""), "{e}");
        assert!(parse_duration("").unwrap_err().contains("empty"));
        assert!(parse_duration("5x")
            .unwrap_err()
            .contains("unknown unit \"x\""));
        assert!(parse_duration("5 s")
            .unwrap_err()
            .contains("without spaces"));
        assert!(parse_duration("1.5s").unwrap_err().contains("fraction"));
        assert!(parse_duration("s")
            .unwrap_err()
            .contains("expected a number"));
        assert!(parse_duration("30s1m").unwrap_err().contains("largest"));
        assert!(parse_duration("1s1s").unwrap_err().contains("largest"));
        assert!(parse_duration("5S").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("-5s")
            .unwrap_err()
            .contains("expected a number"));
        assert!(parse_duration("99999999999999999999s")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_duration("9999999999999999d")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn format_round_trips() {
        for text in ["0s", "500ms", "5s", "1m30s", "1h", "2d", "1d2h3m4s5ms"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    }

    #[test]
    fn bind_addresses() {
        assert_eq!(
            parse_bind_address("127.0.0.1:80"),
            Ok(vec!["127.0.0.1:80".parse().unwrap()])
        );
        assert_eq!(
            parse_bind_address("[::1]:443"),
            Ok(vec!["[::1]:443".parse().unwrap()])
        );
        assert_eq!(
            parse_bind_address(":8080"),
            Ok(vec![
                "0.0.0.0:8080".parse().unwrap(),
                "[::]:8080".parse().unwrap()
            ])
        );
        assert!(parse_bind_address("*:80").unwrap_err().contains("\":80\""));
        assert!(parse_bind_address(":0")
            .unwrap_err()
            .contains("out of range"));
        assert!(parse_bind_address(":")
            .unwrap_err()
            .contains("missing port"));
    }

    #[test]
    fn server_addresses() {
        assert_eq!(
            parse_server_address("10.0.0.1:3306"),
            Ok("10.0.0.1:3306".parse().unwrap())
        );
        assert_eq!(
            parse_server_address("[2001:db8::1]:80"),
            Ok("[2001:db8::1]:80".parse().unwrap())
        );
        let cases = [
            ("db1.example.com:3306", "hostname"),
            ("localhost:80", "hostname"),
            ("localhost", "hostnames are not resolved"),
            ("10.0.0.1", "missing port"),
            ("10.0.0.1:", "missing port"),
            ("10.0.0.1:0", "out of range"),
            ("10.0.0.1:65536", "out of range"),
            ("10.0.0.1:http", "invalid port"),
            ("::1", "brackets"),
            ("::1:80", "brackets"),
            ("[::1]", "missing port"),
            ("[::1:80", "missing \"]\""),
            ("[10.0.0.1]:80", "not a valid IPv6"),
            ("300.0.0.1:80", "not a valid IP"),
            (":80", "needs an IP address"),
            ("0.0.0.0:80", "unspecified"),
            ("", "empty address"),
        ];
        for (text, phrase) in cases {
            let err = parse_server_address(text).unwrap_err();
            assert!(err.contains(phrase), "{text:?}: {err}");
        }
    }

    #[test]
    fn http_balances() {
        let uri = |whole, len, depth| Some(Ok(Balance::Uri(UriHashOptions { whole, len, depth })));
        assert_eq!(parse_http_balance("uri"), uri(false, 0, 0));
        assert_eq!(
            parse_http_balance("uri depth 1 len 4 whole"),
            uri(true, 4, 1)
        );
        assert_eq!(
            parse_http_balance("url_param(id)"),
            Some(Ok(Balance::UrlParam("id".into())))
        );
        assert_eq!(
            parse_http_balance("hdr(Host)"),
            Some(Ok(Balance::Hdr("Host".into())))
        );
        // Not an HTTP form: left to the caller.
        for text in ["roundrobin", "", "uris", "hdrs(x)", "url_params(x)"] {
            assert_eq!(parse_http_balance(text), None, "{text:?}");
        }
        for (text, phrase) in [
            ("uri len 4 len 5", "given twice"),
            ("uri depth -1", "needs a number"),
            ("uri len 99999999999", "needs a number"),
            ("uri deph 2", "did you mean \"depth\""),
            ("hdr()", "not a valid header name"),
            ("hdr(a,b)", "not a valid header name"),
            ("url_param(a#b)", "not a valid query parameter name"),
            ("url_param(x) check_post", "nothing after it"),
            ("hdr", "\"hdr(host)\""),
        ] {
            let err = parse_http_balance(text).unwrap().unwrap_err();
            assert!(err.contains(phrase), "{text:?}: {err}");
        }
    }

    #[test]
    fn redirects() {
        assert_eq!(
            parse_redirect("scheme https"),
            Ok(RedirectKind::Scheme("https".into()))
        );
        assert_eq!(
            parse_redirect("  location   https://example.com/a?b=c "),
            Ok(RedirectKind::Location("https://example.com/a?b=c".into()))
        );
        assert_eq!(
            parse_redirect("prefix https://www.example.com"),
            Ok(RedirectKind::Prefix("https://www.example.com".into()))
        );
        for (text, phrase) in [
            ("", "empty redirect"),
            ("scheme", "needs an argument"),
            ("prefix /a\r\nSet-Cookie: x", "control character"),
            ("location /a\tb", "control character"),
            ("location /a b", "without spaces"),
            ("location /é", "ASCII"),
            ("scheme 1http", "not a URI scheme"),
            ("rewrite /x", "unknown redirect kind"),
            ("locaton /x", "did you mean \"location\""),
        ] {
            let err = parse_redirect(text).unwrap_err();
            assert!(err.contains(phrase), "{text:?}: {err}");
        }
    }

    #[test]
    fn check_values() {
        assert_eq!(parse_status_range("200-399"), Ok((200, 399)));
        assert_eq!(parse_status_range("204-204"), Ok((204, 204)));
        for (text, phrase) in [
            ("200", "as an integer (200)"),
            ("399-200", "write \"200-399\""),
            ("99-200", "status 99 is out of range"),
            ("200-600", "status 600 is out of range"),
            ("2xx", "expected a status"),
            ("a-b", "\"a\" is not a status"),
        ] {
            let err = parse_status_range(text).unwrap_err();
            assert!(err.contains(phrase), "{text:?}: {err}");
        }
        assert!(check_method("GET").is_ok());
        assert!(check_method("PROPFIND").is_ok());
        assert!(check_method("get").unwrap_err().contains("write \"GET\""));
        assert!(check_method("G ET").unwrap_err().contains("' '"));
        assert!(check_method("GET\r\n").unwrap_err().contains("'\\r'"));
        assert!(check_method("").unwrap_err().contains("empty"));
        assert!(check_request_path("/health?full=1").is_ok());
        assert!(check_request_path("health")
            .unwrap_err()
            .contains("start with '/'"));
        assert!(check_request_path("/a b").unwrap_err().contains("' '"));
        assert!(check_host_header("app.example:8080").is_ok());
        assert!(check_host_header("a\r\nX: y")
            .unwrap_err()
            .contains("'\\r'"));
        assert!(check_host_header("a b").unwrap_err().contains("' '"));
        assert_eq!(
            parse_check_address("10.0.0.1"),
            Ok("10.0.0.1".parse().unwrap())
        );
        assert_eq!(parse_check_address("[::1]"), Ok("::1".parse().unwrap()));
        for (text, phrase) in [
            ("10.0.0.1:80", "port = 80"),
            ("0.0.0.0", "unspecified"),
            ("db.example.com", "hostname"),
            ("1.2.3", "not a valid IP address"),
        ] {
            let err = parse_check_address(text).unwrap_err();
            assert!(err.contains(phrase), "{text:?}: {err}");
        }
    }

    #[test]
    fn stats_values() {
        assert_eq!(
            parse_stats_bind("127.0.0.1:8404"),
            Ok("127.0.0.1:8404".parse().unwrap())
        );
        assert!(parse_stats_bind(":8404")
            .unwrap_err()
            .contains("\"127.0.0.1:8404\""));
        assert!(parse_stats_bind("localhost:8404")
            .unwrap_err()
            .contains("hostname"));
        assert!(check_stats_uri("/haproxy-stats").is_ok());
        assert!(check_stats_uri("/").is_ok());
        for (text, phrase) in [
            ("stats", "must start with '/'"),
            ("/metrics", "reserved"),
            ("/stats;csv", "';'"),
            ("/stats?x", "'?'"),
            ("/st ats", "' '"),
        ] {
            let err = check_stats_uri(text).unwrap_err();
            assert!(err.contains(phrase), "{text:?}: {err}");
        }
    }

    #[test]
    fn names() {
        assert!(check_name("web-1_a.b").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("my web").unwrap_err().contains("' '"));
        assert!(check_name("a/b").is_err());
    }
}
