//! Tables printed byte for byte as flux prints them (its `TablePrinter`: tablewriter without
//! borders, a tab as the column padding): every cell padded to its column's width and followed by
//! a tab, the last header cell by a space; a cell with line breaks spans several lines.

/// Renders `rows` under `header`.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let width = |text: &str| text.chars().count();
    let mut widths = vec![0; header.len()];
    for row in std::iter::once(&header).chain(rows) {
        if widths.len() < row.len() {
            widths.resize(row.len(), 0);
        }
        for (column, cell) in row.iter().enumerate() {
            let widest = cell.split('\n').map(width).max().unwrap_or(0);
            widths[column] = widths[column].max(widest);
        }
    }
    let mut out = String::new();
    // `--no-header`: flux's table without a header line, widths from the rows alone.
    let skip = usize::from(header.is_empty());
    for (index, row) in std::iter::once(&header).chain(rows).enumerate().skip(skip) {
        let is_header = index == 0;
        let cells: Vec<Vec<&str>> = row.iter().map(|c| c.split('\n').collect()).collect();
        let height = cells.iter().map(Vec::len).max().unwrap_or(0);
        for line in 0..height {
            for (column, lines) in cells.iter().enumerate() {
                // tablewriter fills the missing lines of a shorter cell with two spaces.
                let text = lines.get(line).copied().unwrap_or("  ");
                out.push_str(text);
                let pad = widths[column].saturating_sub(width(text));
                out.extend(std::iter::repeat_n(' ', pad));
                out.push(if is_header && column + 1 == widths.len() {
                    ' '
                } else {
                    '\t'
                });
            }
            out.push('\n');
        }
    }
    out
}

/// Text as `flux get` shows it (flux's `TruncateHex`): every hexadecimal word of 40 to 128
/// digits, a commit hash or digest, is cut to its first 8 digits, in revisions and messages alike
/// (`main@sha1:0123abcd`, `Applied revision: main@sha1:0123abcd`); shorter ones stay whole.
pub fn truncate_hex(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // Go's regexp `\b[a-f0-9]{40,128}\b`: a whole ASCII word made of lowercase hex digits.
    while let Some(start) = rest.find(|c: char| c.is_ascii_alphanumeric() || c == '_') {
        out.push_str(&rest[..start]);
        let word_len = rest[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len() - start);
        let word = &rest[start..start + word_len];
        let is_hash = (40..=128).contains(&word.len())
            && word.bytes().all(|b| matches!(b, b'a'..=b'f' | b'0'..=b'9'));
        out.push_str(if is_hash { &word[..8] } else { word });
        rest = &rest[start + word_len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_and_tab_separated_like_flux() {
        let rows = vec![
            vec![
                "flux-system".to_string(),
                "True".to_string(),
                "Applied revision: main@sha1:01234567".to_string(),
            ],
            vec![
                "tenants".to_string(),
                "False".to_string(),
                "dependency 'flux-system/infra' is not ready".to_string(),
            ],
        ];
        assert_eq!(
            render(&["NAME", "READY", "MESSAGE"], &rows),
            "NAME       \tREADY\tMESSAGE                                     \n\
             flux-system\tTrue \tApplied revision: main@sha1:01234567       \t\n\
             tenants    \tFalse\tdependency 'flux-system/infra' is not ready\t\n"
        );
    }

    #[test]
    fn a_cell_with_line_breaks_spans_lines_like_flux() {
        let rows = vec![vec!["a".to_string(), "one\ntwo".to_string()]];
        assert_eq!(
            render(&["N", "MESSAGE"], &rows),
            "N\tMESSAGE \n\
             a\tone    \t\n  \ttwo    \t\n"
        );
    }

    #[test]
    fn hashes_are_shortened_like_flux_in_revisions_and_messages() {
        let sha1 = "0123456789abcdef0123456789abcdef01234567";
        let sha256 = "abcdef0123456789".repeat(4);
        assert_eq!(
            truncate_hex(&format!("main@sha1:{sha1}")),
            "main@sha1:01234567"
        );
        assert_eq!(
            truncate_hex(&format!("1.2.0@sha256:{sha256}")),
            "1.2.0@sha256:abcdef01"
        );
        assert_eq!(
            truncate_hex(&format!("stored artifact for revision 'main@sha1:{sha1}'")),
            "stored artifact for revision 'main@sha1:01234567'"
        );
        // Short hashes, upper case and hex inside a longer word are left as they are.
        assert_eq!(truncate_hex("main@sha1:abc"), "main@sha1:abc");
        assert_eq!(
            truncate_hex("1.2.0@sha256:abcdef0123456789"),
            "1.2.0@sha256:abcdef0123456789"
        );
        let upper = sha1.to_uppercase();
        assert_eq!(truncate_hex(&upper), upper);
        assert_eq!(truncate_hex(&format!("x{sha1}")), format!("x{sha1}"));
        assert_eq!(truncate_hex(&"a".repeat(129)), "a".repeat(129));
        assert_eq!(truncate_hex("héllo wörld"), "héllo wörld");
    }
}
