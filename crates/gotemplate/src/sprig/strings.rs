//! String functions, hashes and encodings, paths, regular expressions, URLs and durations.

use std::fmt::Write;

use base64::Engine;
use sha2::Digest;

use super::convert::strval;
use super::duration::duration_round;
use super::paths::{Url, path_base, path_clean, path_dir, path_ext, url_parse, url_string};
use super::regexes::{quote_meta, regex, regex_split};
use super::{Entry, FResult, Sources, arity, at_least, check_len, f, insert_all, int, s, strs};
use crate::value::{Map, Value};
use crate::{FuncError, FuncMap, gofmt};
use ferroflux_gocompat::duration::format as go_duration;

/// `s` with the first character of every word recased by `recase`; a word starts the string
/// or follows a character that `ends_word` holds for.
fn recase_words<I: Iterator<Item = char>>(
    s: &str,
    recase: impl Fn(char) -> I,
    ends_word: impl Fn(char) -> bool,
) -> String {
    let mut out = String::with_capacity(s.len());
    let mut word_start = true;
    for c in s.chars() {
        if word_start {
            out.extend(recase(c));
        } else {
            out.push(c);
        }
        word_start = ends_word(c);
    }
    out
}

/// Go's `strings.Title`: words end at ASCII characters other than letters, digits and `_`,
/// and at non-ASCII white space.
fn title(s: &str) -> String {
    recase_words(s, char::to_uppercase, |c| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            !(c.is_alphanumeric()) && c.is_whitespace()
        }
    })
}

/// Sprig's `untitle`: words end at white space.
fn untitle(s: &str) -> String {
    recase_words(s, char::to_lowercase, char::is_whitespace)
}

fn swapcase(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let v: Vec<char> = if c.is_uppercase() {
                c.to_lowercase().collect()
            } else if c.is_lowercase() {
                c.to_uppercase().collect()
            } else {
                vec![c]
            };
            v
        })
        .collect()
}

fn words(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut words = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if c.is_uppercase() && !cur.is_empty() {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower) {
                words.push(std::mem::take(&mut cur));
            }
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

fn delimited(s: &str, sep: &str) -> String {
    words(s)
        .iter()
        .map(|w| w.to_lowercase())
        .collect::<Vec<_>>()
        .join(sep)
}

fn camelcase(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while chars.peek() == Some(&'_') {
        out.push('_');
        chars.next();
    }
    let Some(first) = chars.next() else {
        return out;
    };
    out.extend(first.to_uppercase());
    let mut prev = first;
    let mut pending = false;
    for c in chars {
        if c == '_' {
            if prev == '_' {
                out.push('_');
                pending = false;
            } else {
                pending = true;
            }
        } else if prev == '_' {
            out.extend(c.to_uppercase());
            pending = false;
        } else {
            out.push(c);
        }
        prev = c;
    }
    if pending {
        out.push('_');
    }
    out
}

fn initials(s: &str) -> String {
    s.split_whitespace()
        .filter_map(|w| w.chars().next())
        .collect()
}

/// goutils' `WrapCustom`.
fn wrap_custom(s: &str, width: i64, nl: &str, long_words: bool) -> String {
    if s.is_empty() {
        return String::new();
    }
    let nl = if nl.is_empty() { "\n" } else { nl };
    let width = width.max(1) as usize;
    let b = s.as_bytes();
    let len = b.len();
    let mut offset = 0;
    let mut out = String::new();
    let slice = |a: usize, z: usize| String::from_utf8_lossy(&b[a..z]).into_owned();
    while len - offset > width {
        if b[offset] == b' ' {
            offset += 1;
            continue;
        }
        let end = (width + offset + 1).min(len);
        let space = b[offset..end].iter().rposition(|c| *c == b' ');
        if let Some(sp) = space {
            let at = sp + offset;
            out.push_str(&slice(offset, at));
            out.push_str(nl);
            offset = at + 1;
        } else if long_words {
            let end = width + offset;
            out.push_str(&slice(offset, end));
            out.push_str(nl);
            offset += width;
        } else {
            let end = width + offset;
            match b[end..].iter().position(|c| *c == b' ') {
                None => {
                    out.push_str(&slice(offset, len));
                    offset = len;
                }
                Some(i) => {
                    let at = i + end;
                    out.push_str(&slice(offset, at));
                    out.push_str(nl);
                    offset = at + 1;
                }
            }
        }
    }
    out.push_str(&slice(offset.min(len), len));
    out
}

fn byte_slice(s: &str, a: usize, z: usize) -> Result<String, FuncError> {
    if a > z || z > s.len() {
        return Err(format!(
            "runtime error: slice bounds out of range [{a}:{z}] with length {}",
            s.len()
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&s.as_bytes()[a..z]).into_owned())
}

fn abbreviate_full(s: &str, offset: i64, max: i64) -> String {
    let len = s.len() as i64;
    if s.is_empty() || max < 4 || len <= max {
        return s.to_string();
    }
    let mut offset = offset.min(len);
    if len - offset < max - 3 {
        offset = len - (max - 3);
    }
    let bs = |a: i64, z: i64| {
        String::from_utf8_lossy(&s.as_bytes()[a.max(0) as usize..z.max(0) as usize]).into_owned()
    };
    if offset <= 4 {
        return format!("{}...", bs(0, max - 3));
    }
    if max < 7 {
        return s.to_string();
    }
    if offset + max - 3 < len {
        let rest = bs(offset, len);
        return format!("...{}", abbreviate_full(&rest, 0, max - 3));
    }
    format!("...{}", bs(len - (max - 3), len))
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn rand_string(sources: &Sources, n: i64, alphabet: &[u8]) -> String {
    let mut state = sources
        .random
        .as_ref()
        .map(|r| r())
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    let mut out = String::new();
    for _ in 0..n.clamp(0, 1 << 20) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.push(alphabet[(state % alphabet.len() as u64) as usize] as char);
    }
    out
}

pub(super) fn register(m: &mut FuncMap, sources: &Sources) {
    insert_all(m, FUNCS);
    for (name, func) in [
        ("base", path_base as fn(&str) -> String),
        ("dir", path_dir),
        ("clean", path_clean),
        ("ext", path_ext),
    ] {
        m.insert(name.into(), f(move |a| Ok(Value::from(func(s(a, 0)?)))));
        m.insert(
            format!("os{}{}", name[..1].to_uppercase(), &name[1..]),
            f(move |a| Ok(Value::from(func(s(a, 0)?)))),
        );
    }
    let src = sources.clone();
    m.insert(
        "env".into(),
        f(move |a| {
            Ok(Value::from(
                src.env
                    .as_ref()
                    .and_then(|e| e(s(a, 0).unwrap_or("")))
                    .unwrap_or_default(),
            ))
        }),
    );
    let src = sources.clone();
    m.insert(
        "expandenv".into(),
        f(move |a| {
            let t = s(a, 0)?;
            let re = regex::Regex::new(r"\$\{([A-Za-z0-9_]+)\}|\$([A-Za-z0-9_]+)")
                .map_err(|e| FuncError::Call(e.to_string()))?;
            Ok(Value::from(
                re.replace_all(t, |c: &regex::Captures<'_>| {
                    let name = c
                        .get(1)
                        .or_else(|| c.get(2))
                        .map(|m| m.as_str())
                        .unwrap_or("");
                    src.env.as_ref().and_then(|e| e(name)).unwrap_or_default()
                })
                .into_owned(),
            ))
        }),
    );
    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for (name, alphabet) in [
        ("randAlphaNum", ALNUM),
        ("randAlpha", &ALNUM[..52]),
        ("randNumeric", &ALNUM[52..]),
        ("randAscii", b" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~".as_slice()),
    ] {
        let src = sources.clone();
        m.insert(name.into(), f(move |a| Ok(Value::from(rand_string(&src, int(a, 0)?, alphabet)))));
    }
    let src = sources.clone();
    m.insert(
        "uuidv4".into(),
        f(move |_| {
            let r1 = src.random.as_ref().map(|r| r()).unwrap_or(0);
            let r2 = src.random.as_ref().map(|r| r()).unwrap_or(0);
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&r1.to_be_bytes());
            b[8..].copy_from_slice(&r2.to_be_bytes());
            b[6] = (b[6] & 0x0f) | 0x40;
            b[8] = (b[8] & 0x3f) | 0x80;
            let h = hex(&b);
            Ok(Value::from(format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            )))
        }),
    );
    let src = sources.clone();
    m.insert(
        "shuffle".into(),
        f(move |a| {
            let mut chars: Vec<char> = s(a, 0)?.chars().collect();
            let mut state = src.random.as_ref().map(|r| r()).unwrap_or(1) | 1;
            for i in (1..chars.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                chars.swap(i, (state % (i as u64 + 1)) as usize);
            }
            Ok(Value::from(chars.into_iter().collect::<String>()))
        }),
    );
    let _ = at_least;
}

/// The functions that need nothing but their arguments, one line each.
const FUNCS: &[Entry] = &[
    ("hello", hello),
    ("regexMatch", regex_match),
    ("mustRegexMatch", must_regex_match),
    ("upper", upper),
    ("lower", lower),
    ("title", title_fn),
    ("untitle", untitle_fn),
    ("swapcase", swapcase_fn),
    ("snakecase", snakecase),
    ("kebabcase", kebabcase),
    ("camelcase", camelcase_fn),
    ("initials", initials_fn),
    ("trim", trim_fn),
    ("trimAll", trim_all),
    ("trimall", trim_all),
    ("trimSuffix", trim_suffix),
    ("trimPrefix", trim_prefix),
    ("nospace", nospace),
    ("trunc", trunc),
    ("substr", substr),
    ("abbrev", abbrev),
    ("abbrevboth", abbrevboth),
    ("repeat", repeat_fn),
    ("wrap", wrap),
    ("wrapWith", wrap_with),
    ("contains", contains_fn),
    ("hasPrefix", has_prefix),
    ("hasSuffix", has_suffix),
    ("quote", quote_fn),
    ("squote", squote),
    ("cat", cat),
    ("indent", indent),
    ("nindent", nindent),
    ("replace", replace_fn),
    ("plural", plural),
    ("sha1sum", sha1sum),
    ("sha256sum", sha256sum),
    ("sha512sum", sha512sum),
    ("adler32sum", adler32sum),
    ("b64enc", b64enc),
    ("b64dec", b64dec),
    ("b32enc", b32enc),
    ("b32dec", b32dec),
    ("split", split_fn),
    ("splitn", splitn_fn),
    ("splitList", split_list),
    ("join", join_fn),
    ("sortAlpha", sort_alpha),
    ("isAbs", is_abs),
    ("osIsAbs", is_abs),
    ("regexQuoteMeta", regex_quote_meta),
    ("regexFindAll", regex_find_all),
    ("mustRegexFindAll", regex_find_all),
    ("regexFind", regex_find),
    ("mustRegexFind", regex_find),
    ("regexReplaceAll", regex_replace_all),
    ("mustRegexReplaceAll", regex_replace_all),
    ("regexReplaceAllLiteral", regex_replace_all_literal),
    ("mustRegexReplaceAllLiteral", regex_replace_all_literal),
    ("regexSplit", regex_split_fn),
    ("mustRegexSplit", regex_split_fn),
    ("urlParse", url_parse_fn),
    ("urlJoin", url_join),
    ("duration", duration),
    ("durationRound", duration_round_fn),
];

/// `regexMatch`: Sprig ignores a bad pattern's error and answers false.
fn regex_match(a: &[Value]) -> FResult {
    arity(a, 2)?;
    let (pattern, text) = (s(a, 0)?, s(a, 1)?);
    Ok(Value::Bool(
        regex(pattern).is_ok_and(|re| re.is_match(text)),
    ))
}

/// `mustRegexMatch`: a bad pattern is an error.
fn must_regex_match(a: &[Value]) -> FResult {
    arity(a, 2)?;
    Ok(Value::Bool(regex(s(a, 0)?)?.is_match(s(a, 1)?)))
}

/// `hello`.
fn hello(_: &[Value]) -> FResult {
    Ok(Value::str("Hello!"))
}

/// `upper`.
fn upper(a: &[Value]) -> FResult {
    Ok(Value::from(s(a, 0)?.to_uppercase()))
}

/// `lower`.
fn lower(a: &[Value]) -> FResult {
    Ok(Value::from(s(a, 0)?.to_lowercase()))
}

/// `title`.
fn title_fn(a: &[Value]) -> FResult {
    Ok(Value::from(title(s(a, 0)?)))
}

/// `untitle`.
fn untitle_fn(a: &[Value]) -> FResult {
    Ok(Value::from(untitle(s(a, 0)?)))
}

/// `swapcase`.
fn swapcase_fn(a: &[Value]) -> FResult {
    Ok(Value::from(swapcase(s(a, 0)?)))
}

/// `snakecase`.
fn snakecase(a: &[Value]) -> FResult {
    Ok(Value::from(delimited(s(a, 0)?, "_")))
}

/// `kebabcase`.
fn kebabcase(a: &[Value]) -> FResult {
    Ok(Value::from(delimited(s(a, 0)?, "-")))
}

/// `camelcase`.
fn camelcase_fn(a: &[Value]) -> FResult {
    Ok(Value::from(camelcase(s(a, 0)?)))
}

/// `initials`.
fn initials_fn(a: &[Value]) -> FResult {
    Ok(Value::from(initials(s(a, 0)?)))
}

/// `trim`.
fn trim_fn(a: &[Value]) -> FResult {
    Ok(Value::from(s(a, 0)?.trim()))
}

/// `trimAll`, `trimall`.
fn trim_all(a: &[Value]) -> FResult {
    arity(a, 2)?;
    let cut = s(a, 0)?;
    Ok(Value::from(s(a, 1)?.trim_matches(|c| cut.contains(c))))
}

/// `trimSuffix`.
fn trim_suffix(a: &[Value]) -> FResult {
    arity(a, 2)?;
    let (x, t) = (s(a, 0)?, s(a, 1)?);
    Ok(Value::from(t.strip_suffix(x).unwrap_or(t)))
}

/// `trimPrefix`.
fn trim_prefix(a: &[Value]) -> FResult {
    arity(a, 2)?;
    let (x, t) = (s(a, 0)?, s(a, 1)?);
    Ok(Value::from(t.strip_prefix(x).unwrap_or(t)))
}

/// `nospace`.
fn nospace(a: &[Value]) -> FResult {
    Ok(Value::from(
        s(a, 0)?
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>(),
    ))
}

/// `trunc`.
fn trunc(a: &[Value]) -> FResult {
    arity(a, 2)?;
    let (c, t) = (int(a, 0)?, s(a, 1)?);
    let len = t.len() as i64;
    Ok(Value::from(if c < 0 && len + c > 0 {
        byte_slice(t, (len + c) as usize, t.len())?
    } else if c >= 0 && len > c {
        byte_slice(t, 0, c as usize)?
    } else {
        t.to_string()
    }))
}

/// `substr`.
fn substr(a: &[Value]) -> FResult {
    arity(a, 3)?;
    let (start, end, t) = (int(a, 0)?, int(a, 1)?, s(a, 2)?);
    let len = t.len() as i64;
    Ok(Value::from(if start < 0 {
        byte_slice(t, 0, end.max(0) as usize)?
    } else if end < 0 || end > len {
        byte_slice(t, start as usize, t.len())?
    } else {
        byte_slice(t, start as usize, end as usize)?
    }))
}

/// `abbrev`.
fn abbrev(a: &[Value]) -> FResult {
    arity(a, 2)?;
    let (w, t) = (int(a, 0)?, s(a, 1)?);
    Ok(Value::from(if w < 4 {
        t.to_string()
    } else {
        abbreviate_full(t, 0, w)
    }))
}

/// `abbrevboth`.
fn abbrevboth(a: &[Value]) -> FResult {
    arity(a, 3)?;
    let (l, r, t) = (int(a, 0)?, int(a, 1)?, s(a, 2)?);
    Ok(Value::from(if r < 4 || (l > 0 && r < 7) {
        t.to_string()
    } else {
        abbreviate_full(t, l, r)
    }))
}

/// `repeat`.
fn repeat_fn(a: &[Value]) -> FResult {
    arity(a, 2)?;
    let (n, t) = (int(a, 0)?, s(a, 1)?);
    if n < 0 {
        return Err("strings: negative Repeat count".into());
    }
    if (t.len() as u128) * (n as u128) > (64 << 20) {
        return Err(format!("repeat would build a string longer than {} bytes", 64 << 20).into());
    }
    Ok(Value::from(t.repeat(n as usize)))
}

/// `wrap`.
fn wrap(a: &[Value]) -> FResult {
    arity(a, 2)?;
    Ok(Value::from(wrap_custom(s(a, 1)?, int(a, 0)?, "", false)))
}

/// `wrapWith`.
fn wrap_with(a: &[Value]) -> FResult {
    arity(a, 3)?;
    check_len(s(a, 2)?.len() + (s(a, 2)?.len() / int(a, 0)?.max(1) as usize + 1) * s(a, 1)?.len())?;
    Ok(Value::from(wrap_custom(
        s(a, 2)?,
        int(a, 0)?,
        s(a, 1)?,
        true,
    )))
}

/// `contains`.
fn contains_fn(a: &[Value]) -> FResult {
    arity(a, 2)?;
    Ok(Value::Bool(s(a, 1)?.contains(s(a, 0)?)))
}

/// `hasPrefix`.
fn has_prefix(a: &[Value]) -> FResult {
    arity(a, 2)?;
    Ok(Value::Bool(s(a, 1)?.starts_with(s(a, 0)?)))
}

/// `hasSuffix`.
fn has_suffix(a: &[Value]) -> FResult {
    arity(a, 2)?;
    Ok(Value::Bool(s(a, 1)?.ends_with(s(a, 0)?)))
}

/// `quote`.
fn quote_fn(a: &[Value]) -> FResult {
    let v: Vec<String> = a
        .iter()
        .filter(|v| !v.is_nil())
        .map(|v| gofmt::quote(&strval(v), false))
        .collect();
    Ok(Value::from(v.join(" ")))
}

/// `squote`.
fn squote(a: &[Value]) -> FResult {
    let v: Vec<String> = a
        .iter()
        .filter(|v| !v.is_nil())
        .map(|v| format!("'{}'", strval(v)))
        .collect();
    Ok(Value::from(v.join(" ")))
}

/// `cat`.
fn cat(a: &[Value]) -> FResult {
    let v: Vec<String> = a.iter().filter(|v| !v.is_nil()).map(strval).collect();
    Ok(Value::from(v.join(" ")))
}

/// `indent`.
fn indent(a: &[Value]) -> FResult {
    indent_with(a, "")
}

/// `nindent`.
fn nindent(a: &[Value]) -> FResult {
    indent_with(a, "\n")
}

/// Pads every line of the text by the count of spaces, after `lead`.
fn indent_with(a: &[Value], lead: &str) -> FResult {
    arity(a, 2)?;
    let pad = " ".repeat(int(a, 0)?.clamp(0, 1 << 16) as usize);
    let text = s(a, 1)?;
    check_len(text.len() + (text.matches('\n').count() + 1) * pad.len())?;
    Ok(Value::from(format!(
        "{lead}{pad}{}",
        text.replace('\n', &format!("\n{pad}"))
    )))
}

/// `replace`.
fn replace_fn(a: &[Value]) -> FResult {
    arity(a, 3)?;
    Ok(Value::from(go_replace(s(a, 2)?, s(a, 0)?, s(a, 1)?)?))
}

/// `plural`.
fn plural(a: &[Value]) -> FResult {
    arity(a, 3)?;
    Ok(Value::from(if int(a, 2)? == 1 {
        s(a, 0)?
    } else {
        s(a, 1)?
    }))
}

/// `sha1sum`.
fn sha1sum(a: &[Value]) -> FResult {
    Ok(Value::from(hex(&sha1::Sha1::digest(s(a, 0)?.as_bytes()))))
}

/// `sha256sum`.
fn sha256sum(a: &[Value]) -> FResult {
    Ok(Value::from(hex(&sha2::Sha256::digest(s(a, 0)?.as_bytes()))))
}

/// `sha512sum`.
fn sha512sum(a: &[Value]) -> FResult {
    Ok(Value::from(hex(&sha2::Sha512::digest(s(a, 0)?.as_bytes()))))
}

/// `adler32sum`.
fn adler32sum(a: &[Value]) -> FResult {
    let mut h = adler32::RollingAdler32::new();
    h.update_buffer(s(a, 0)?.as_bytes());
    Ok(Value::from(h.hash().to_string()))
}

/// `b64enc`.
fn b64enc(a: &[Value]) -> FResult {
    Ok(Value::from(
        base64::engine::general_purpose::STANDARD.encode(s(a, 0)?),
    ))
}

/// `b64dec`.
fn b64dec(a: &[Value]) -> FResult {
    Ok(Value::from(
        match base64::engine::general_purpose::STANDARD.decode(s(a, 0)?) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => format!("illegal base64 data: {e}"),
        },
    ))
}

/// `b32enc`.
fn b32enc(a: &[Value]) -> FResult {
    Ok(Value::from(
        data_encoding::BASE32.encode(s(a, 0)?.as_bytes()),
    ))
}

/// `b32dec`.
fn b32dec(a: &[Value]) -> FResult {
    Ok(Value::from(
        match data_encoding::BASE32.decode(s(a, 0)?.as_bytes()) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => format!("illegal base32 data: {e}"),
        },
    ))
}

/// `split`.
fn split_fn(a: &[Value]) -> FResult {
    arity(a, 2)?;
    let (sep, orig) = (s(a, 0)?, s(a, 1)?);
    Ok(Value::map(
        go_split(orig, sep, -1)
            .into_iter()
            .enumerate()
            .map(|(i, p)| (format!("_{i}").into(), Value::from(p)))
            .collect::<Map>(),
    ))
}

/// `splitn`.
fn splitn_fn(a: &[Value]) -> FResult {
    arity(a, 3)?;
    let (sep, n, orig) = (s(a, 0)?, int(a, 1)?, s(a, 2)?);
    Ok(Value::map(
        go_split(orig, sep, n)
            .into_iter()
            .enumerate()
            .map(|(i, p)| (format!("_{i}").into(), Value::from(p)))
            .collect::<Map>(),
    ))
}

/// `splitList`.
fn split_list(a: &[Value]) -> FResult {
    arity(a, 2)?;
    Ok(strs(go_split(s(a, 1)?, s(a, 0)?, -1)))
}

/// `join`.
fn join_fn(a: &[Value]) -> FResult {
    arity(a, 2)?;
    Ok(Value::from(super::data::strslice(&a[1]).join(s(a, 0)?)))
}

/// `sortAlpha`.
fn sort_alpha(a: &[Value]) -> FResult {
    arity(a, 1)?;
    match &a[0] {
        Value::List(_) => {
            let mut v = super::data::strslice(&a[0]);
            v.sort();
            Ok(strs(v))
        }
        other => Ok(strs(vec![strval(other)])),
    }
}

/// `isAbs`, `osIsAbs`.
fn is_abs(a: &[Value]) -> FResult {
    Ok(Value::Bool(s(a, 0)?.starts_with('/')))
}

/// `regexQuoteMeta`.
fn regex_quote_meta(a: &[Value]) -> FResult {
    Ok(Value::from(quote_meta(s(a, 0)?)))
}

/// `regexFindAll`, `mustRegexFindAll`.
fn regex_find_all(a: &[Value]) -> FResult {
    arity(a, 3)?;
    let re = regex(s(a, 0)?)?;
    let n = int(a, 2)?;
    let it = re.find_iter(s(a, 1)?).map(|m| m.as_str().to_string());
    Ok(strs(if n < 0 {
        it.collect()
    } else {
        it.take(n as usize).collect()
    }))
}

/// `regexFind`, `mustRegexFind`.
fn regex_find(a: &[Value]) -> FResult {
    arity(a, 2)?;
    Ok(Value::from(
        regex(s(a, 0)?)?
            .find(s(a, 1)?)
            .map(|m| m.as_str())
            .unwrap_or(""),
    ))
}

/// `regexReplaceAll`, `mustRegexReplaceAll`.
fn regex_replace_all(a: &[Value]) -> FResult {
    arity(a, 3)?;
    Ok(Value::from(
        regex(s(a, 0)?)?
            .replace_all(s(a, 1)?, s(a, 2)?)
            .into_owned(),
    ))
}

/// `regexReplaceAllLiteral`, `mustRegexReplaceAllLiteral`.
fn regex_replace_all_literal(a: &[Value]) -> FResult {
    arity(a, 3)?;
    Ok(Value::from(
        regex(s(a, 0)?)?
            .replace_all(s(a, 1)?, regex::NoExpand(s(a, 2)?))
            .into_owned(),
    ))
}

/// `regexSplit`, `mustRegexSplit`.
fn regex_split_fn(a: &[Value]) -> FResult {
    arity(a, 3)?;
    Ok(strs(regex_split(&regex(s(a, 0)?)?, s(a, 1)?, int(a, 2)?)))
}

/// `urlParse`.
fn url_parse_fn(a: &[Value]) -> FResult {
    let u = url_parse(s(a, 0)?)?;
    let hostname = match u.host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => u.host.as_str(),
    }
    .trim_start_matches('[')
    .trim_end_matches(']')
    .to_string();
    let mut d = Map::new();
    d.insert("scheme".into(), Value::from(u.scheme.clone()));
    d.insert("host".into(), Value::from(u.host.clone()));
    d.insert("hostname".into(), Value::from(hostname));
    d.insert("path".into(), Value::from(u.path.clone()));
    d.insert("query".into(), Value::from(u.raw_query.clone()));
    d.insert("opaque".into(), Value::from(u.opaque.clone()));
    d.insert("fragment".into(), Value::from(u.fragment.clone()));
    d.insert(
        "userinfo".into(),
        Value::from(u.user.clone().unwrap_or_default()),
    );
    Ok(Value::map(d))
}

/// `urlJoin`.
fn url_join(a: &[Value]) -> FResult {
    arity(a, 1)?;
    let Value::Map(d) = &a[0] else {
        return Err(format!(
            "wrong type for value; expected map[string]interface {{}}; got {}",
            a[0].type_name()
        )
        .into());
    };
    let d = d.snapshot();
    let g = |k: &str| d.get(k).map(strval).unwrap_or_default();
    let user = d.get("userinfo").map(strval).filter(|u| !u.is_empty());
    Ok(Value::from(url_string(&Url {
        scheme: g("scheme"),
        opaque: g("opaque"),
        user,
        host: g("host"),
        path: g("path"),
        raw_query: g("query"),
        fragment: g("fragment"),
    })))
}

/// `duration`.
fn duration(a: &[Value]) -> FResult {
    arity(a, 1)?;
    let secs = match &a[0] {
        Value::Str(t) => t.parse::<i64>().unwrap_or(0),
        Value::Int(i) => *i,
        _ => 0,
    };
    Ok(Value::from(go_duration(secs.saturating_mul(1_000_000_000))))
}

/// `durationRound`.
fn duration_round_fn(a: &[Value]) -> FResult {
    arity(a, 1)?;
    Ok(Value::from(duration_round(&a[0])))
}

/// Go's `strings.Replace(s, old, new, -1)` (an empty `old` inserts between runes).
fn go_replace(s: &str, old: &str, new: &str) -> Result<String, FuncError> {
    let count = if old.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(old).count()
    };
    check_len(s.len() + count * new.len().saturating_sub(old.len()))?;
    if old.is_empty() {
        let mut out = String::from(new);
        for c in s.chars() {
            out.push(c);
            out.push_str(new);
        }
        return Ok(out);
    }
    Ok(s.replace(old, new))
}

/// Go's `strings.SplitN` (n < 0: all).
pub(crate) fn go_split(s: &str, sep: &str, n: i64) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    if sep.is_empty() {
        let chars: Vec<String> = s.chars().map(String::from).collect();
        if n < 0 || chars.len() as i64 <= n {
            return chars;
        }
        let mut out: Vec<String> = chars[..(n - 1) as usize].to_vec();
        out.push(chars[(n - 1) as usize..].concat());
        return out;
    }
    if n < 0 {
        return s.split(sep).map(String::from).collect();
    }
    s.splitn(n as usize, sep).map(String::from).collect()
}
