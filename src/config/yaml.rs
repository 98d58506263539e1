//! Strict YAML reading with file/line/key errors.
//!
//! serde-saphyr gives strictness (duplicate keys are errors by default, `deny_unknown_fields`
//! names the key) and a line/column for the first error, but no key path, and serde stops at
//! the first error. Two additions, both driven by the real YAML parser (granit-parser, which
//! serde-saphyr re-exports) so flow style, quoting and comments are handled correctly:
//!
//! - [`KeyIndex`] walks the parser events once and records, for every key path
//!   (`peers[1].address`), the line/column of its key and of its value. Semantic errors
//!   (unknown peer, missing file) look their line up by path; serde errors look their path
//!   up by line/column.
//! - [`parse_collect`] reports more than one serde error per file: when the whole document
//!   fails, each top-level section (and each item of a top-level block sequence) is
//!   deserialized again on its own into a type whose fields are all optional. The other
//!   lines are blanked, not removed, so line numbers stay true.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_saphyr::granit_parser::{Event, Parser};

use super::load::ConfigError;

/// Where a key and its value were written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    path: String,
    /// 1-based line and column of the key (for sequence items: of the item).
    key: (usize, usize),
    /// 1-based line and column where the value starts.
    value: (usize, usize),
}

/// Key path -> position map of one YAML document. See the module docs.
#[derive(Debug, Clone, Default)]
pub struct KeyIndex {
    entries: Vec<Entry>,
    /// Number of lines in the text.
    lines: usize,
}

/// An open collection while walking the events.
struct Frame {
    path: String,
    /// This collection is itself a mapping key (complex key): closing it completes a key.
    is_key: bool,
    kind: Kind,
}

enum Kind {
    /// `awaiting_value`: a key was read, its value comes next.
    Map {
        awaiting_value: bool,
    },
    Seq {
        next: usize,
    },
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl KeyIndex {
    /// Index `text`. A YAML syntax error is returned as (line, message).
    pub fn build(text: &str) -> Result<KeyIndex, (usize, String)> {
        let mut idx = KeyIndex {
            entries: Vec::new(),
            lines: text.lines().count(),
        };
        let mut stack: Vec<Frame> = Vec::new();
        for ev in Parser::new_from_str(text) {
            let (event, span) = ev.map_err(|e| (e.marker().line(), e.info().to_string()))?;
            let pos = (span.start.line(), span.start.col() + 1);
            match event {
                Event::Scalar(..)
                | Event::Alias(..)
                | Event::MappingStart(..)
                | Event::SequenceStart(..) => {
                    let collection =
                        matches!(event, Event::MappingStart(..) | Event::SequenceStart(..));
                    let (path, is_key) = idx.place_node(&mut stack, &event, pos);
                    if collection {
                        let kind = if matches!(event, Event::MappingStart(..)) {
                            Kind::Map {
                                awaiting_value: false,
                            }
                        } else {
                            Kind::Seq { next: 0 }
                        };
                        stack.push(Frame { path, is_key, kind });
                    } else {
                        complete_node(&mut stack, is_key);
                    }
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    if let Some(f) = stack.pop() {
                        complete_node(&mut stack, f.is_key);
                    }
                }
                _ => {}
            }
        }
        Ok(idx)
    }

    /// Record a node that starts at `pos` and return its path and whether it is a key.
    fn place_node(
        &mut self,
        stack: &mut [Frame],
        event: &Event<'_>,
        pos: (usize, usize),
    ) -> (String, bool) {
        let Some(top) = stack.last_mut() else {
            return (String::new(), false);
        };
        match &mut top.kind {
            Kind::Map {
                awaiting_value: false,
            } => {
                let name = match event {
                    Event::Scalar(s, ..) => s.to_string(),
                    _ => "?".to_string(),
                };
                let path = join(&top.path, &name);
                self.entries.push(Entry {
                    path: path.clone(),
                    key: pos,
                    value: pos,
                });
                (path, true)
            }
            Kind::Map {
                awaiting_value: true,
            } => {
                // The key entry was the last one pushed: nothing is indexed between a key
                // and its value.
                match self.entries.last_mut() {
                    Some(e) => {
                        e.value = pos;
                        (e.path.clone(), false)
                    }
                    None => (top.path.clone(), false),
                }
            }
            Kind::Seq { next } => {
                let path = format!("{}[{next}]", top.path);
                *next += 1;
                self.entries.push(Entry {
                    path: path.clone(),
                    key: pos,
                    value: pos,
                });
                (path, false)
            }
        }
    }

    /// Line of `path`, or of its nearest written ancestor (a defaulted key has no line of
    /// its own; the section that holds it is the best pointer).
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let mut p = path;
        loop {
            if let Some(e) = self.entries.iter().find(|e| e.path == p) {
                return Some(e.key.0);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }

    /// Whether `path` is written in the file (as opposed to defaulted).
    pub fn has(&self, path: &str) -> bool {
        self.entries.iter().any(|e| e.path == path)
    }

    /// The key path written at (line, column): a key there, else a value starting there,
    /// else the last key on that line.
    pub fn path_at(&self, line: usize, col: usize) -> Option<&str> {
        let at = (line, col);
        self.entries
            .iter()
            .rev()
            .find(|e| e.key == at)
            .or_else(|| self.entries.iter().rev().find(|e| e.value == at))
            .or_else(|| self.entries.iter().rev().find(|e| e.key.0 == line))
            .map(|e| e.path.as_str())
    }

    /// Line ranges (first..=last, 1-based) that can be deserialized on their own: each
    /// top-level key with its value, split into single items when the value is a block
    /// sequence whose items start on distinct lines. Each unit also keeps the line of its
    /// top-level key.
    fn units(&self, text: &[&str]) -> Vec<Vec<(usize, usize)>> {
        let top: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| !e.path.contains(['.', '[']))
            .collect();
        let mut units = Vec::new();
        for (i, e) in top.iter().enumerate() {
            let end = top
                .get(i + 1)
                .map_or(self.lines, |n| n.key.0.saturating_sub(1));
            let prefix = format!("{}[", e.path);
            let items: Vec<usize> = self
                .entries
                .iter()
                .filter(|x| {
                    x.path
                        .strip_prefix(&prefix)
                        .is_some_and(|r| r.ends_with(']') && !r.contains('.'))
                })
                .map(|x| x.key.0)
                .collect();
            // An item written `-` alone on a line starts on that line, not at its content.
            let items: Vec<usize> = items
                .iter()
                .map(|&l| {
                    let mut l = l;
                    while l > e.key.0 + 1 && text.get(l - 2).is_some_and(|t| t.trim() == "-") {
                        l -= 1;
                    }
                    l
                })
                .collect();
            let distinct = items.windows(2).all(|w| w[0] < w[1]);
            if items.len() > 1 && distinct && items[0] > e.key.0 {
                for (j, start) in items.iter().enumerate() {
                    let stop = items.get(j + 1).map_or(end, |n| n - 1);
                    units.push(vec![(e.key.0, e.key.0), (*start, stop)]);
                }
            } else {
                units.push(vec![(e.key.0, end)]);
            }
        }
        units
    }
}

/// A node finished: in a mapping, a finished key means a value comes next, a finished
/// value means a key does.
fn complete_node(stack: &mut [Frame], was_key: bool) {
    if let Some(Frame {
        kind: Kind::Map { awaiting_value },
        ..
    }) = stack.last_mut()
    {
        *awaiting_value = was_key;
    }
}

/// Deserialize `text` strictly into `T`. On failure, every error found: the whole
/// document's, plus one per failing section (deserialized alone into `P`, the same shape
/// with every top-level field optional).
pub fn parse_collect<T: DeserializeOwned, P: DeserializeOwned>(
    file: &Path,
    text: &str,
) -> Result<(T, KeyIndex), Vec<ConfigError>> {
    let index = match KeyIndex::build(text) {
        Ok(i) => i,
        Err((line, msg)) => {
            return Err(vec![ConfigError {
                file: file.to_path_buf(),
                line: Some(line),
                key: String::new(),
                message: format!("YAML syntax: {msg}"),
            }]);
        }
    };
    let whole = match serde_saphyr::from_str::<T>(text) {
        Ok(v) => return Ok((v, index)),
        Err(e) => convert(file, &index, &e),
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut errors = Vec::new();
    for unit in index.units(&lines) {
        let masked: String = lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                if unit.iter().any(|(a, b)| (*a..=*b).contains(&(i + 1))) {
                    *l
                } else {
                    ""
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        if let Err(e) = serde_saphyr::from_str::<P>(&masked) {
            let ce = convert(file, &index, &e);
            if !errors.contains(&ce) {
                errors.push(ce);
            }
        }
    }
    if !errors.contains(&whole) {
        errors.push(whole);
    }
    errors.sort_by_key(|e| e.line);
    Err(errors)
}

/// A serde-saphyr error as a `ConfigError` with the key path found from its position.
fn convert(file: &Path, index: &KeyIndex, e: &serde_saphyr::Error) -> ConfigError {
    use serde_saphyr::Error as E;
    let loc = e
        .location()
        .map(|l| (l.line() as usize, l.column() as usize));
    let path = loc
        .and_then(|(l, c)| index.path_at(l, c))
        .unwrap_or("")
        .to_string();
    let (key, message) = match e.without_snippet() {
        E::SerdeUnknownField {
            field, expected, ..
        } => (
            path,
            format!(
                "unknown key `{field}` (allowed here: {})",
                expected.join(", ")
            ),
        ),
        E::SerdeMissingField { field, .. } => {
            // Reported at the mapping's first key: the missing key belongs to its parent.
            let parent = match path.rfind(['.', '[']) {
                Some(i) if path[i..].starts_with('.') => path[..i].to_string(),
                _ if path.contains('.') || path.contains('[') => path.clone(),
                _ => String::new(),
            };
            (
                join(&parent, field),
                format!("missing required key `{field}`"),
            )
        }
        E::DuplicateMappingKey { key, .. } => {
            let k = key.clone().unwrap_or_default();
            (path, format!("duplicate key `{k}`"))
        }
        E::SerdeUnknownVariant {
            variant, expected, ..
        } => (
            path,
            format!(
                "invalid value `{variant}` (expected one of: {})",
                expected.join(", ")
            ),
        ),
        other => (path, short_message(other)),
    };
    ConfigError {
        file: file.to_path_buf(),
        line: loc.map(|l| l.0),
        key,
        message,
    }
}

/// The error's own message without the "error: line N column M:" prefix and snippet.
fn short_message(e: &serde_saphyr::Error) -> String {
    let full = e.to_string();
    let first = full.lines().next().unwrap_or("").trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let msg = match first.strip_prefix("line ").and_then(|r| r.split_once(": ")) {
        Some((_, msg)) => msg,
        None => first,
    };
    // Custom (value parser) messages repeat the position at the end.
    match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(", column ") => msg[..i].to_string(),
        _ => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Y: &str = "\
instance: a
sip:
  listen:
    - name: public      # comment
      address: 1.2.3.4:5060
    - {name: b, address: 'x'}
peers:
  - name: pbx
    sources: [10.0.0.0/8, 10.1.0.0/16]
  -
    name: carrier
policy: p.yaml
";

    #[test]
    fn index_paths_and_lines() {
        let i = KeyIndex::build(Y).unwrap();
        assert_eq!(i.line_of("instance"), Some(1));
        assert_eq!(i.line_of("sip.listen"), Some(3));
        assert_eq!(i.line_of("sip.listen[0]"), Some(4));
        assert_eq!(i.line_of("sip.listen[0].address"), Some(5));
        assert_eq!(i.line_of("sip.listen[1].address"), Some(6));
        assert_eq!(i.line_of("peers[0].sources[1]"), Some(9));
        assert_eq!(i.line_of("peers[1].name"), Some(11));
        assert_eq!(i.line_of("policy"), Some(12));
        // Defaulted keys fall back to the nearest written ancestor.
        assert_eq!(i.line_of("peers[1].transport"), Some(11));
        assert_eq!(i.line_of("peers[0].nothing.deeper"), Some(8));
        assert!(i.has("peers[0].sources") && !i.has("peers[0].transport"));
        assert_eq!(i.path_at(5, 7), Some("sip.listen[0].address"));
        assert_eq!(i.path_at(5, 16), Some("sip.listen[0].address"));
    }
}
