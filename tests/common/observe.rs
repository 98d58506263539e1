//! Reading veil's outputs back: CDR rows from its SQLite file and Prometheus metrics from
//! its HTTP endpoint.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::types::Value;

/// One row of table `cdr`, every column as text (NULL as None).
#[derive(Debug, Clone)]
pub struct CdrRow {
    pub columns: BTreeMap<String, Option<String>>,
}

impl CdrRow {
    pub fn get(&self, col: &str) -> Option<&str> {
        self.columns.get(col).and_then(|v| v.as_deref())
    }

    pub fn assert_eq(&self, col: &str, want: &str) {
        assert!(
            self.columns.contains_key(col),
            "CDR has no column `{col}`; row: {self:#?}"
        );
        assert_eq!(
            self.get(col),
            Some(want),
            "CDR column `{col}`; row: {self:#?}"
        );
    }

    pub fn assert_set(&self, col: &str) {
        assert!(
            self.columns.contains_key(col),
            "CDR has no column `{col}`; row: {self:#?}"
        );
        assert!(
            self.get(col).is_some_and(|v| !v.is_empty()),
            "CDR column `{col}` should be set; row: {self:#?}"
        );
    }

    pub fn assert_null(&self, col: &str) {
        assert!(
            self.columns.contains_key(col),
            "CDR has no column `{col}`; row: {self:#?}"
        );
        assert!(
            self.get(col).is_none_or(str::is_empty),
            "CDR column `{col}` should be empty; row: {self:#?}"
        );
    }
}

/// All rows of table `cdr`.
pub fn read_cdr(path: &Path) -> Result<Vec<CdrRow>, String> {
    if !path.exists() {
        return Err(format!("{} does not exist", path.display()));
    }
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| format!("open {}: {e}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    let mut stmt = conn
        .prepare("SELECT * FROM cdr")
        .map_err(|e| format!("query cdr: {e}"))?;
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let rows = stmt
        .query_map([], |row| {
            let mut columns = BTreeMap::new();
            for (i, name) in names.iter().enumerate() {
                let v = match row.get::<_, Value>(i)? {
                    Value::Null => None,
                    Value::Integer(n) => Some(n.to_string()),
                    Value::Real(f) => Some(f.to_string()),
                    Value::Text(t) => Some(t),
                    Value::Blob(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                };
                columns.insert(name.clone(), v);
            }
            Ok(CdrRow { columns })
        })
        .map_err(|e| e.to_string())?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

/// Waits for the CDR row with `a_call_id` to be completed (ended_at set).
pub fn wait_ended_cdr(path: &Path, a_call_id: &str, timeout: Duration) -> CdrRow {
    let deadline = Instant::now() + timeout;
    let mut last = Err(String::from("not read yet"));
    while Instant::now() < deadline {
        last = read_cdr(path);
        if let Ok(rows) = &last
            && let Some(row) = rows.iter().find(|r| {
                r.get("a_call_id") == Some(a_call_id)
                    && r.get("ended_at").is_some_and(|e| !e.is_empty())
            })
        {
            return row.clone();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "no completed CDR row with a_call_id = {a_call_id:?} within {timeout:?}; table cdr: {last:#?}"
    );
}

/// One scrape of `/metrics`.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub samples: Vec<Sample>,
    pub raw: String,
}

#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Metrics {
    /// Sum of the samples of `name` whose labels include all of `labels` (other labels,
    /// such as `instance`, may be present).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let matching: Vec<f64> = self
            .samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .collect();
        (!matching.is_empty()).then(|| matching.iter().sum())
    }

    pub fn assert_at_least(&self, name: &str, labels: &[(&str, &str)], min: f64) {
        let got = self.sum(name, labels);
        assert!(
            got.is_some_and(|v| v >= min),
            "metric {name}{labels:?} should be >= {min}, got {got:?}; scraped:\n{}",
            self.relevant(name)
        );
    }

    fn relevant(&self, name: &str) -> String {
        let lines: Vec<&str> = self.raw.lines().filter(|l| l.contains("veil_")).collect();
        if lines.iter().any(|l| l.contains(name)) {
            lines
                .iter()
                .filter(|l| l.contains(name))
                .copied()
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            format!("(no {name} at all)\n{}", lines.join("\n"))
        }
    }
}

/// GET /metrics over plain HTTP/1.1.
pub fn scrape(addr: SocketAddr) -> Result<Metrics, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP header end in: {text:?}"))?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(format!(
            "metrics answered: {}",
            head.lines().next().unwrap_or("")
        ));
    }
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok(Metrics {
        samples: body.lines().filter_map(parse_sample).collect(),
        raw: body,
    })
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// `name{a="x",b="y"} value [timestamp]` or `name value`.
pub fn parse_sample(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, labels, rest) = match line.find('{') {
        Some(open) => {
            let close = line.rfind('}')?;
            (
                &line[..open],
                parse_labels(&line[open + 1..close])?,
                &line[close + 1..],
            )
        }
        None => {
            let (n, r) = line.split_once(char::is_whitespace)?;
            (n, BTreeMap::new(), r)
        }
    };
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name: name.trim().to_string(),
        labels,
        value,
    })
}

fn parse_labels(s: &str) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(labels);
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if chars.next()? != '"' {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(key.trim().to_string(), value);
    }
}
