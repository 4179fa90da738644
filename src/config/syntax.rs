//! TOML syntax errors as one-line diagnostics, with a best-effort key path.

use toml_edit::TomlError;

use super::reader::Reader;

/// Line, key path and message for a TOML syntax error in `text`.
///
/// The parser stops at the first syntax error, so there is only one. The key path is
/// taken from a "duplicate key" message when there is one, otherwise from the offending
/// line itself (`[table.header]` or `key = ...` under the last header); `-` when neither
/// gives a key.
pub(super) fn describe(
    reader: &Reader<'_>,
    text: &str,
    err: &TomlError,
) -> (usize, String, String) {
    let offset = err.span().map_or(0, |s| s.start).min(text.len());
    let line = reader.line_at(offset);
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..offset].chars().count() + 1;
    let raw = err.message().trim();
    let mut message = format!(
        "TOML syntax error at column {column}: {}",
        raw.replace('\n', ": ")
    );
    let key = match duplicate_key(raw) {
        Some(key) => {
            message.push_str(" (each section and each key may appear only once)");
            key
        }
        None => key_of_line(text, line_start).unwrap_or_else(|| "-".to_string()),
    };
    (line, key, message)
}

/// `duplicate key `K` in table `T`` → `T.K`; `... in document root` → `K`.
fn duplicate_key(message: &str) -> Option<String> {
    let rest = &message[message.find("duplicate key `")? + "duplicate key `".len()..];
    let (key, rest) = rest.split_once('`')?;
    match rest
        .strip_prefix(" in table `")
        .and_then(|t| t.split_once('`'))
    {
        Some((table, _)) if !table.is_empty() => Some(format!("{table}.{key}")),
        _ => Some(key.to_string()),
    }
}

/// The key path written on the line starting at `line_start`, if it looks like one.
fn key_of_line(text: &str, line_start: usize) -> Option<String> {
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    if let Some(header) = header_name(line) {
        return Some(header);
    }
    let (key, _) = line.split_once('=')?;
    let key = clean_key(key)?;
    let table = text[..line_start]
        .lines()
        .rev()
        .find_map(|l| header_name(l.trim()));
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key,
    })
}

/// `[a.b]` / `[[a.b]]` → `a.b`.
fn header_name(line: &str) -> Option<String> {
    let inner = line.strip_prefix('[')?;
    let inner = inner.strip_prefix('[').unwrap_or(inner);
    let end = inner.find(']')?;
    clean_key(&inner[..end])
}

/// A dotted key with its whitespace removed, if it is made of key characters.
fn clean_key(key: &str) -> Option<String> {
    let key: String = key.split('.').map(str::trim).collect::<Vec<_>>().join(".");
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '"'));
    ok.then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_key_messages() {
        assert_eq!(
            duplicate_key("invalid table header\nduplicate key `web` in table `frontend`"),
            Some("frontend.web".into())
        );
        assert_eq!(
            duplicate_key("duplicate key `a` in document root"),
            Some("a".into())
        );
        assert_eq!(duplicate_key("invalid basic string"), None);
    }

    #[test]
    fn keys_from_lines() {
        let text = "[global]\nshards = 2\n\n[frontend.web]\nbind = [\n";
        assert_eq!(key_of_line(text, 0), Some("global".into()));
        assert_eq!(key_of_line(text, 9), Some("global.shards".into()));
        assert_eq!(
            key_of_line(text, text.find("bind").unwrap()),
            Some("frontend.web.bind".into())
        );
        assert_eq!(key_of_line("a b c\n", 0), None);
        assert_eq!(
            key_of_line("[[backend.app.server]]\n", 0),
            Some("backend.app.server".into())
        );
    }
}
