//! Go's `path` package where engines need its exact answers: `path.Clean` (slash-separated,
//! lexical; `filepath.Clean` on Unix is the same).

/// Go's `path.Clean`: the shortest equivalent path by purely lexical processing.
///
/// ```
/// use ferroflux_gocompat::path::clean;
/// assert_eq!(clean("a/../../b/./c/"), "../b/c");
/// assert_eq!(clean("/../x"), "/x");
/// assert_eq!(clean(""), ".");
/// ```
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}
