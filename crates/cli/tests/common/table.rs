//! The result table of the pen-test suites: one row per attempt (attempt | expected | got |
//! ok), each printed as soon as it is known and all of them aligned at the end.

/// One attempt of the table.
pub struct Row {
    pub attempt: String,
    pub expected: String,
    pub got: String,
    pub ok: bool,
}

/// The rows so far.
pub struct Table {
    /// Printed before each row as it finishes (`[pentest] ok ...`), so parallel suites can
    /// be told apart in one log.
    label: String,
    rows: Vec<Row>,
}

impl Default for Table {
    fn default() -> Table {
        Table::labelled("pentest")
    }
}

impl Table {
    pub fn labelled(label: &str) -> Table {
        Table {
            label: label.into(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, attempt: &str, expected: &str, got: impl Into<String>, ok: bool) {
        let got = one_line(&got.into());
        eprintln!(
            "[{}] {} {attempt}: {got}",
            self.label,
            if ok { "ok  " } else { "FAIL" }
        );
        self.rows.push(Row {
            attempt: attempt.into(),
            expected: expected.into(),
            got,
            ok,
        });
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn failed(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|r| !r.ok)
            .map(|r| r.attempt.as_str())
            .collect()
    }

    /// The aligned table: attempt | expected | got | ok.
    pub fn render(&self) -> String {
        let header = Row {
            attempt: "attempt".into(),
            expected: "expected (kube-apiserver / Flux)".into(),
            got: "got".into(),
            ok: true,
        };
        let width = |f: fn(&Row) -> &str| {
            self.rows
                .iter()
                .chain([&header])
                .map(|r| f(r).chars().count())
                .max()
                .unwrap_or(0)
        };
        let wa = width(|r| &r.attempt);
        let we = width(|r| &r.expected);
        let wg = width(|r| &r.got);
        let line = |r: &Row, ok: &str| {
            format!(
                "{:<wa$} | {:<we$} | {:<wg$} | {ok}\n",
                r.attempt, r.expected, r.got
            )
        };
        let mut out = line(&header, "ok");
        out.push_str(&format!(
            "{}-+-{}-+-{}-+---\n",
            "-".repeat(wa),
            "-".repeat(we),
            "-".repeat(wg)
        ));
        for r in &self.rows {
            out.push_str(&line(r, if r.ok { "ok" } else { "FAIL" }));
        }
        out
    }
}

/// Newlines and runs of spaces folded, long texts cut, so a row stays one line.
pub fn one_line(text: &str) -> String {
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    cut(&folded, 220)
}

pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max).collect();
    out.push('…');
    out
}
