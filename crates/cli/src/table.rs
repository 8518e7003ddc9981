//! Tables shaped like `flux get`: a header row, cells padded to the column width and separated
//! by a tab, no borders.

/// Renders `rows` under `header`.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let last = row.len().saturating_sub(1);
        for (index, cell) in row.iter().enumerate() {
            if index == last {
                out.push_str(cell);
            } else {
                let pad = widths[index] - cell.chars().count();
                out.push_str(cell);
                out.extend(std::iter::repeat_n(' ', pad));
                out.push('\t');
            }
        }
        out.push('\n');
    }
    out
}

/// A revision as `flux get` shows it: `main@sha1:0123abcd` (the hash cut to 8 characters).
pub fn short_revision(revision: &str) -> String {
    match revision.split_once(':') {
        Some((label, hash)) if hash.len() > 8 => format!("{label}:{}", &hash[..8]),
        _ => revision.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_and_tab_separated() {
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
            "NAME       \tREADY\tMESSAGE\n\
             flux-system\tTrue \tApplied revision: main@sha1:01234567\n\
             tenants    \tFalse\tdependency 'flux-system/infra' is not ready\n"
        );
    }

    #[test]
    fn revisions_are_shortened_like_flux() {
        assert_eq!(
            short_revision("main@sha1:0123456789abcdef0123456789abcdef01234567"),
            "main@sha1:01234567"
        );
        assert_eq!(
            short_revision("1.2.0@sha256:abcdef0123456789"),
            "1.2.0@sha256:abcdef01"
        );
        assert_eq!(short_revision("main@sha1:abc"), "main@sha1:abc");
    }
}
