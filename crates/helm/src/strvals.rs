//! Helm's `strvals`: `--set` and `--set-string` lines (`a.b=c,list[0]=x,l={1,2}`) into
//! values, typed as Helm types them (`true`, `null`, integers) unless forced to strings.

use serde_json::{Map, Value};

/// The largest list index a `--set` line may write (Helm's `MaxIndex`).
const MAX_INDEX: usize = 65536;

/// How deeply a `--set` key may nest.
const MAX_NESTING: usize = 30;

/// Helm's `ParseInto` (`force_string` false) and `ParseIntoString` (true): one `--set` line
/// merged into `dest`.
///
/// # Errors
/// Helm's messages for malformed lines.
pub fn parse_into(
    line: &str,
    dest: &mut Map<String, Value>,
    force_string: bool,
) -> Result<(), String> {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let (path, next) = parse_key(&chars, i)?;
        i = next;
        let value = if chars.get(i) == Some(&'{') {
            let (items, next) = read_list(&chars, i + 1);
            i = next;
            Value::Array(items.into_iter().map(|s| typed(&s, force_string)).collect())
        } else {
            let (s, next) = read_until(&chars, i, &[',']);
            i = next;
            typed(&s, force_string)
        };
        if chars.get(i) == Some(&',') {
            i += 1;
        }
        set_path(dest, &path, value)?;
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

fn parse_key(chars: &[char], mut i: usize) -> Result<(Vec<Seg>, usize), String> {
    let mut segs = Vec::new();
    let mut cur = String::new();
    loop {
        let Some(&c) = chars.get(i) else {
            let key: String = chars.iter().collect();
            return Err(format!("key {key:?} has no value"));
        };
        match c {
            '\\' => {
                if let Some(&n) = chars.get(i + 1) {
                    cur.push(n);
                }
                i += 2;
            }
            '=' => {
                if !cur.is_empty() {
                    segs.push(Seg::Key(std::mem::take(&mut cur)));
                }
                return Ok((segs, i + 1));
            }
            ',' => {
                return Err(format!("key {cur:?} has no value (cannot end with ,)"));
            }
            '.' => {
                if !cur.is_empty() {
                    segs.push(Seg::Key(std::mem::take(&mut cur)));
                }
                i += 1;
            }
            '[' => {
                if !cur.is_empty() {
                    segs.push(Seg::Key(std::mem::take(&mut cur)));
                }
                let close = chars[i..]
                    .iter()
                    .position(|c| *c == ']')
                    .ok_or_else(|| "error parsing index: missing ]".to_string())?;
                let idx: String = chars[i + 1..i + close].iter().collect();
                let n: i64 = idx.parse().map_err(|_| {
                    format!("error parsing index: strconv.Atoi: parsing {idx:?}: invalid syntax")
                })?;
                if n < 0 {
                    return Err("negative index".into());
                }
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                if n > MAX_INDEX {
                    return Err(format!(
                        "index of {n} is greater than maximum supported index of {MAX_INDEX}"
                    ));
                }
                segs.push(Seg::Index(n));
                i += close + 1;
            }
            _ => {
                cur.push(c);
                i += 1;
            }
        }
        if segs.len() > MAX_NESTING {
            return Err(format!(
                "value name nested level is greater than maximum supported nested level of {MAX_NESTING}"
            ));
        }
    }
}

fn read_until(chars: &[char], mut i: usize, stops: &[char]) -> (String, usize) {
    let mut s = String::new();
    while let Some(&c) = chars.get(i) {
        if c == '\\' {
            if let Some(&n) = chars.get(i + 1) {
                s.push(n);
            }
            i += 2;
            continue;
        }
        if stops.contains(&c) {
            break;
        }
        s.push(c);
        i += 1;
    }
    (s, i)
}

fn read_list(chars: &[char], mut i: usize) -> (Vec<String>, usize) {
    let mut items = Vec::new();
    loop {
        let (s, next) = read_until(chars, i, &[',', '}']);
        i = next;
        items.push(s);
        match chars.get(i) {
            Some(',') => i += 1,
            Some('}') => return (items, i + 1),
            _ => return (items, i),
        }
    }
}

fn typed(s: &str, force_string: bool) -> Value {
    if force_string {
        return Value::String(s.into());
    }
    match s.to_ascii_lowercase().as_str() {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        "null" => return Value::Null,
        "0" => return Value::from(0i64),
        _ => {}
    }
    // Go's `strconv.ParseInt` (a sign allowed), for values not starting with `0`.
    if !s.is_empty()
        && !s.starts_with('0')
        && let Ok(n) = s.parse::<i64>()
    {
        return Value::from(n);
    }
    Value::String(s.into())
}

fn set_path(dest: &mut Map<String, Value>, path: &[Seg], value: Value) -> Result<(), String> {
    let Some((Seg::Key(first), rest)) = path.split_first() else {
        return Err("key map \"\" has no value".into());
    };
    let slot = dest.entry(first.clone()).or_insert(Value::Null);
    set_in(slot, rest, value);
    Ok(())
}

fn set_in(slot: &mut Value, path: &[Seg], value: Value) {
    let Some((seg, rest)) = path.split_first() else {
        *slot = value;
        return;
    };
    match seg {
        Seg::Key(k) => {
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(m) = slot {
                let next = m.entry(k.clone()).or_insert(Value::Null);
                set_in(next, rest, value);
            }
        }
        Seg::Index(n) => {
            if !slot.is_array() {
                *slot = Value::Array(Vec::new());
            }
            if let Value::Array(list) = slot {
                while list.len() <= *n {
                    list.push(Value::Null);
                }
                set_in(&mut list[*n], rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(line: &str, st: bool) -> Value {
        let mut m = Map::new();
        parse_into(line, &mut m, st).expect("parses");
        Value::Object(m)
    }

    #[test]
    fn set_lines_type_and_nest_as_helm_does() {
        assert_eq!(
            parse(
                "a.b=1,c=true,d=null,e=010,f=x\\,y,g\\.h=2,l[1]=z,m={1,two}",
                false
            ),
            json!({"a": {"b": 1}, "c": true, "d": null, "e": "010", "f": "x,y", "g.h": 2,
                   "l": [null, "z"], "m": [1, "two"]})
        );
        assert_eq!(parse("a=1,b=true", true), json!({"a": "1", "b": "true"}));
        let mut m = Map::new();
        assert!(parse_into("a", &mut m, false).is_err());
        assert!(parse_into("a[70000]=1", &mut m, false).is_err());
    }
}
