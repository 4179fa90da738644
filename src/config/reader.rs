//! Walking a parsed TOML document with positions: typed getters that record a
//! [`Diagnostic`] (file, line, key path, message) for every problem and keep going.
//!
//! Every item of a `toml_edit::ImDocument` keeps its byte span; [`Reader`] turns spans into
//! line numbers, and [`Field`] carries the key path and line of one item while it is
//! converted into the model.

use std::path::Path;
use std::time::Duration;

use toml_edit::{ArrayOfTables, Item, TableLike, Value};

use super::error::Diagnostic;
use super::suggest;
use super::value::parse_duration;

/// The keys a table accepts, and the ones reserved for later issues.
pub(super) struct Spec {
    /// How the table is named in messages, e.g. `[frontend.NAME]`.
    pub section: &'static str,
    /// Keys accepted now.
    pub keys: &'static [&'static str],
    /// Keys that belong to a later feature: `(key, what it arrives with)`.
    pub later: &'static [(&'static str, &'static str)],
}

impl Spec {
    fn knows(&self, key: &str) -> bool {
        self.keys.contains(&key) || self.later.iter().any(|(k, _)| *k == key)
    }

    fn all_keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.keys
            .iter()
            .copied()
            .chain(self.later.iter().map(|(k, _)| *k))
    }
}

/// One item of the document being converted: where it is and what it is.
#[derive(Clone)]
pub(super) struct Field<'d> {
    /// Dotted key path, e.g. `backend.app.server[1].weight`.
    pub path: String,
    /// 1-based line of the item (its value, or its table header).
    pub line: usize,
    /// The item itself.
    pub node: Node<'d>,
}

/// The shapes an item can have.
#[derive(Clone, Copy)]
pub(super) enum Node<'d> {
    /// A plain value (string, number, array, inline table...).
    Value(&'d Value),
    /// A `[table]` (standard, implicit or dotted).
    Table(&'d dyn TableLike),
    /// An `[[array.of.tables]]`.
    TableArray(&'d ArrayOfTables),
}

impl<'d> Field<'d> {
    /// The item as a table (a `[table]` or an inline `{ ... }` table).
    pub fn as_table(&self) -> Option<&'d dyn TableLike> {
        match self.node {
            Node::Table(t) => Some(t),
            Node::Value(Value::InlineTable(t)) => Some(t),
            _ => None,
        }
    }
}

/// Appends `key` to a dotted key path, quoting it when it is not a bare TOML key.
pub(super) fn join(parent: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let key = if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

/// Describes a value for "expected X, found Y" messages: `an integer (5)`.
pub(super) fn describe(node: Node<'_>) -> String {
    match node {
        Node::Value(v) => match v {
            Value::String(s) => format!("a string ({:?})", s.value()),
            Value::Integer(i) => format!("an integer ({})", i.value()),
            Value::Float(f) => format!("a float ({})", f.value()),
            Value::Boolean(b) => format!("a boolean ({})", b.value()),
            Value::Datetime(d) => format!("a date-time ({})", d.value()),
            Value::Array(_) => "an array".to_string(),
            Value::InlineTable(_) => "a table".to_string(),
        },
        Node::Table(_) => "a table".to_string(),
        Node::TableArray(_) => "an array of tables".to_string(),
    }
}

/// Converts spans to lines and collects diagnostics.
pub(super) struct Reader<'a> {
    file: &'a Path,
    line_starts: Vec<usize>,
    diags: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl<'a> Reader<'a> {
    /// A reader for `text`, the contents of `file`.
    pub fn new(file: &'a Path, text: &str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Reader {
            file,
            line_starts,
            diags: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// 1-based line of a byte offset.
    pub fn line_at(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }

    /// Line of a span, or `fallback` when the item has none (implicit tables).
    pub fn line_of(&self, span: Option<std::ops::Range<usize>>, fallback: usize) -> usize {
        span.map_or(fallback, |s| self.line_at(s.start))
    }

    /// Records a problem.
    pub fn error(&mut self, line: usize, key: &str, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            file: self.file.to_path_buf(),
            line,
            key: key.to_string(),
            message: message.into(),
        });
    }

    /// Records something worth knowing that does not make the file invalid (an expired
    /// certificate...).
    pub fn warn(&mut self, line: usize, key: &str, message: impl Into<String>) {
        self.warnings.push(Diagnostic {
            file: self.file.to_path_buf(),
            line,
            key: key.to_string(),
            message: message.into(),
        });
    }

    /// The recorded warnings, sorted by line, leaving none behind.
    pub fn take_warnings(&mut self) -> Vec<Diagnostic> {
        let mut out = std::mem::take(&mut self.warnings);
        out.sort_by_key(|d| d.line);
        out
    }

    /// Whether any problem has been recorded.
    pub fn has_errors(&self) -> bool {
        !self.diags.is_empty()
    }

    /// The recorded problems, sorted by line (stable: same-line problems keep their order).
    pub fn into_diagnostics(mut self) -> Vec<Diagnostic> {
        self.diags.sort_by_key(|d| d.line);
        self.diags
    }

    /// Wraps a document item; `None` for an empty item.
    pub fn field<'d>(
        &self,
        item: &'d Item,
        path: String,
        fallback_line: usize,
    ) -> Option<Field<'d>> {
        let line = self.line_of(item.span(), fallback_line);
        let node = match item {
            Item::None => return None,
            Item::Value(v) => Node::Value(v),
            Item::Table(t) => Node::Table(t),
            Item::ArrayOfTables(a) => Node::TableArray(a),
        };
        Some(Field { path, line, node })
    }

    /// Wraps an array element.
    pub fn element<'d>(&self, value: &'d Value, path: String, fallback_line: usize) -> Field<'d> {
        Field {
            line: self.line_of(value.span(), fallback_line),
            path,
            node: Node::Value(value),
        }
    }

    /// The child `key` of `table` (whose path and line are `parent`'s).
    pub fn child<'d>(
        &self,
        table: &'d dyn TableLike,
        parent: &Field<'_>,
        key: &str,
    ) -> Option<Field<'d>> {
        let (k, item) = table.get_key_value(key)?;
        let fallback = self.line_of(k.span(), parent.line);
        self.field(item, join(&parent.path, key), fallback)
    }

    /// Reports every key of `table` that `spec` does not accept: keys of later features
    /// as "not supported yet", others as unknown (with a suggestion when one is close,
    /// or the section where the key belongs when it is valid elsewhere).
    pub fn check_keys(
        &mut self,
        table: &dyn TableLike,
        parent: &Field<'_>,
        spec: &Spec,
        all: &[&Spec],
    ) {
        for (key, _) in table.iter() {
            let line = self.line_of(table.key(key).and_then(|k| k.span()), parent.line);
            let path = join(&parent.path, key);
            if spec.keys.contains(&key) {
                continue;
            }
            if let Some((_, arrives)) = spec.later.iter().find(|(k, _)| *k == key) {
                self.error(
                    line,
                    &path,
                    format!("\"{key}\" is not supported yet (arrives with {arrives})"),
                );
                continue;
            }
            // A timeout key is only looked up among timeouts tables (`server` in
            // [frontend.NAME.timeouts] is not the server list of [backend.NAME]).
            let is_timeouts = |s: &Spec| s.section.ends_with(".timeouts]");
            let elsewhere: Vec<&str> = all
                .iter()
                .filter(|s| s.section != spec.section && s.knows(key))
                .filter(|s| is_timeouts(s) || !is_timeouts(spec))
                // `in the check table` → `it belongs in the check table`.
                .map(|s| s.section.strip_prefix("in ").unwrap_or(s.section))
                .collect();
            let hint = if !elsewhere.is_empty() {
                format!(" (it belongs in {})", elsewhere.join(" or "))
            } else {
                suggest::did_you_mean(key, spec.all_keys())
            };
            let place = if spec.section.starts_with('[') {
                format!("in {}", spec.section)
            } else {
                spec.section.to_string()
            };
            self.error(line, &path, format!("unknown key \"{key}\" {place}{hint}"));
        }
    }

    fn type_error(&mut self, field: &Field<'_>, expected: &str) {
        self.error(
            field.line,
            &field.path,
            format!("expected {expected}, found {}", describe(field.node)),
        );
    }

    /// The field as a string.
    pub fn string<'d>(&mut self, field: &Field<'d>) -> Option<&'d str> {
        match field.node {
            Node::Value(Value::String(s)) => Some(s.value().as_str()),
            _ => {
                self.type_error(field, "a string");
                None
            }
        }
    }

    /// The field as a non-empty string.
    pub fn nonempty_string<'d>(&mut self, field: &Field<'d>) -> Option<&'d str> {
        let s = self.string(field)?;
        if s.is_empty() {
            self.error(field.line, &field.path, "must not be empty");
            return None;
        }
        Some(s)
    }

    /// The field as a boolean.
    pub fn boolean(&mut self, field: &Field<'_>) -> Option<bool> {
        match field.node {
            Node::Value(Value::Boolean(b)) => Some(*b.value()),
            _ => {
                self.type_error(field, "a boolean (true or false)");
                None
            }
        }
    }

    /// The field as an integer in `min..=max`.
    pub fn integer(&mut self, field: &Field<'_>, min: i64, max: i64) -> Option<i64> {
        match field.node {
            Node::Value(Value::Integer(i)) => {
                let v = *i.value();
                if (min..=max).contains(&v) {
                    Some(v)
                } else {
                    self.error(
                        field.line,
                        &field.path,
                        format!("{v} is out of range (expected {min}..={max})"),
                    );
                    None
                }
            }
            _ => {
                self.type_error(field, "an integer");
                None
            }
        }
    }

    /// [`Reader::integer`] as a `u32` (the range must fit).
    pub fn u32_in(&mut self, field: &Field<'_>, min: u32, max: u32) -> Option<u32> {
        self.integer(field, i64::from(min), i64::from(max))
            .map(|v| v as u32)
    }

    /// The field as a duration string (`"5s"`, `"1m30s"`); a bare number is an error
    /// that says which string to write.
    pub fn duration(&mut self, field: &Field<'_>) -> Option<Duration> {
        match field.node {
            Node::Value(Value::String(s)) => match parse_duration(s.value()) {
                Ok(d) => Some(d),
                Err(msg) => {
                    self.error(field.line, &field.path, msg);
                    None
                }
            },
            Node::Value(Value::Integer(i)) => {
                self.error(
                    field.line,
                    &field.path,
                    format!(
                        "a duration is a string with a unit: write \"{}s\" (units: ms, s, m, h, d)",
                        i.value()
                    ),
                );
                None
            }
            Node::Value(Value::Float(f)) => {
                self.error(
                    field.line,
                    &field.path,
                    format!(
                        "a duration is a string with a unit, not the number {}: write e.g. \"500ms\" or \"5s\" (units: ms, s, m, h, d)",
                        f.value()
                    ),
                );
                None
            }
            _ => {
                self.type_error(field, "a duration string such as \"5s\"");
                None
            }
        }
    }

    /// The field as a table (standard or inline).
    pub fn table<'d>(&mut self, field: &Field<'d>) -> Option<&'d dyn TableLike> {
        let t = field.as_table();
        if t.is_none() {
            self.type_error(field, "a table");
        }
        t
    }

    /// The field as an inline array, its elements wrapped as fields `path[i]`.
    pub fn array<'d>(&mut self, field: &Field<'d>, expected: &str) -> Option<Vec<Field<'d>>> {
        match field.node {
            Node::Value(Value::Array(a)) => Some(
                a.iter()
                    .enumerate()
                    .map(|(i, v)| self.element(v, format!("{}[{i}]", field.path), field.line))
                    .collect(),
            ),
            _ => {
                self.type_error(field, expected);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_from_offsets() {
        let r = Reader::new(Path::new("f"), "a\nbc\n\nd");
        assert_eq!(r.line_at(0), 1);
        assert_eq!(r.line_at(1), 1);
        assert_eq!(r.line_at(2), 2);
        assert_eq!(r.line_at(5), 3);
        assert_eq!(r.line_at(6), 4);
    }

    #[test]
    fn key_paths_quote_non_bare_keys() {
        assert_eq!(join("", "global"), "global");
        assert_eq!(join("frontend", "web-1_x"), "frontend.web-1_x");
        assert_eq!(join("backend", "app.v2"), "backend.\"app.v2\"");
        assert_eq!(join("backend", "my app"), "backend.\"my app\"");
    }
}
