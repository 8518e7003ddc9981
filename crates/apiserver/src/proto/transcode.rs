//! Protobuf message <-> JSON value, driven by the descriptor table.

use base64::Engine;
use serde_json::{Map, Number, Value};

use super::ProtoError;
use super::table::{Field, Shape, Special, TABLE, Table, Ty};
use super::wire::{Fields, Wire, put_bytes, put_key, put_varint, put_varint_field, varint};

/// Deepest nesting of messages accepted (a CRD's schema nests two messages per level).
pub const MAX_DEPTH: usize = 100;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Decodes message `msg` to its JSON form; `None` where Kubernetes' JSON has no value (an unset
/// time or an empty raw extension).
pub fn to_json(buf: &[u8], msg: usize, depth: usize) -> Result<Option<Value>, ProtoError> {
    if depth > MAX_DEPTH {
        return Err(ProtoError::TooDeep);
    }
    let t: &Table = &TABLE;
    let m = &t.messages[msg];
    match m.special {
        Special::None => {}
        Special::Time | Special::MicroTime => return time_to_json(buf, m.special),
        Special::Quantity => {
            let mut s = String::new();
            for f in Fields::new(buf) {
                if let (1, Wire::Bytes(b)) = f? {
                    s = utf8(b)?;
                }
            }
            // A zero Quantity prints as "0".
            return Ok(Some(Value::String(if s.is_empty() {
                "0".into()
            } else {
                s
            })));
        }
        Special::IntOrString => {
            let (mut is_str, mut int_val, mut str_val) = (false, 0i64, String::new());
            for f in Fields::new(buf) {
                match f? {
                    (1, Wire::Varint(v)) => is_str = v == 1,
                    (2, Wire::Varint(v)) => int_val = i64::from(v as i32),
                    (3, Wire::Bytes(b)) => str_val = utf8(b)?,
                    _ => {}
                }
            }
            return Ok(Some(if is_str {
                Value::String(str_val)
            } else {
                Value::from(int_val)
            }));
        }
        Special::RawJson => {
            let mut raw: &[u8] = &[];
            for f in Fields::new(buf) {
                if let (1, Wire::Bytes(b)) = f? {
                    raw = b;
                }
            }
            return raw_to_json(raw, depth);
        }
        Special::SchemaOrArray | Special::SchemaOrBool | Special::SchemaOrStringArray => {
            return schema_union_to_json(buf, m.special, depth);
        }
        Special::Array => {
            let mut items = Vec::new();
            for f in Fields::new(buf) {
                if let (1, Wire::Bytes(b)) = f? {
                    items.push(Value::String(utf8(b)?));
                }
            }
            return Ok(Some(Value::Array(items)));
        }
    }
    let mut out = Map::new();
    for f in Fields::new(buf) {
        let (tag, wire) = f?;
        // Unknown fields are skipped, as Go's generated unmarshalers do.
        let Some(field) = m.field(tag) else { continue };
        let key = field.json.as_str();
        match field.shape {
            Shape::One => {
                let Some(v) = value_to_json(wire, field, depth)? else {
                    continue;
                };
                if key.is_empty() {
                    // Inlined (`json:",inline"`): its members are the parent's.
                    if let Value::Object(inner) = v {
                        out.extend(inner);
                    }
                } else if field.keep_zero || !is_zero(&v, field.ty) {
                    out.insert(key.to_string(), v);
                }
            }
            Shape::Rep => {
                let entry = out
                    .entry(key.to_string())
                    .or_insert_with(|| Value::Array(Vec::new()));
                let Value::Array(items) = entry else {
                    continue;
                };
                match (wire, field.ty) {
                    // Packed numbers: one length-delimited run of values.
                    (Wire::Bytes(b), Ty::Int32 | Ty::Int64 | Ty::Bool | Ty::Double | Ty::Float) => {
                        packed_to_json(b, field.ty, items)?
                    }
                    _ => items.extend(value_to_json(wire, field, depth)?),
                }
            }
            Shape::Map => {
                let Wire::Bytes(entry) = wire else {
                    return Err(ProtoError::WrongWireType(
                        wire.type_number(),
                        key.to_string(),
                    ));
                };
                let (mut k, mut v) = (String::new(), None);
                for f in Fields::new(entry) {
                    match f? {
                        (1, Wire::Bytes(b)) => k = utf8(b)?,
                        (2, w) => v = value_to_json(w, field, depth)?,
                        _ => {}
                    }
                }
                // An absent value is the type's zero value.
                let v = match (v, field.ty) {
                    (Some(v), _) => v,
                    (None, Ty::Msg(m)) => to_json(&[], m, depth + 1)?.unwrap_or(Value::Null),
                    (None, ty) => zero(ty),
                };
                if let Value::Object(map) = out
                    .entry(key.to_string())
                    .or_insert_with(|| Value::Object(Map::new()))
                {
                    map.insert(k, v);
                }
            }
        }
    }
    Ok(Some(Value::Object(out)))
}

fn zero(ty: Ty) -> Value {
    match ty {
        Ty::Str | Ty::Bytes => Value::String(String::new()),
        Ty::Bool => Value::Bool(false),
        Ty::Int32 | Ty::Int64 => Value::from(0),
        Ty::Double | Ty::Float => Value::from(0.0),
        Ty::Msg(_) => Value::Null,
    }
}

fn is_zero(v: &Value, ty: Ty) -> bool {
    match ty {
        Ty::Msg(_) => false,
        _ => match v {
            Value::String(s) => s.is_empty(),
            Value::Bool(b) => !b,
            Value::Number(n) => n.as_f64() == Some(0.0),
            _ => false,
        },
    }
}

fn utf8(b: &[u8]) -> Result<String, ProtoError> {
    String::from_utf8(b.to_vec()).map_err(|_| ProtoError::InvalidUtf8)
}

fn float(f: f64) -> Result<Value, ProtoError> {
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or(ProtoError::NotFinite)
}

/// One scalar or message value of `field`.
fn value_to_json(wire: Wire<'_>, field: &Field, depth: usize) -> Result<Option<Value>, ProtoError> {
    let wrong = || ProtoError::WrongWireType(wire.type_number(), field.json.clone());
    Ok(Some(match (field.ty, wire) {
        (Ty::Str, Wire::Bytes(b)) => Value::String(utf8(b)?),
        (Ty::Bytes, Wire::Bytes(b)) => Value::String(B64.encode(b)),
        (Ty::Bool, Wire::Varint(v)) => Value::Bool(v != 0),
        (Ty::Int32, Wire::Varint(v)) => Value::from(v as i32),
        (Ty::Int64, Wire::Varint(v)) => Value::from(v as i64),
        (Ty::Double, Wire::Fixed64(v)) => float(f64::from_bits(v))?,
        (Ty::Float, Wire::Fixed32(v)) => float(f64::from(f32::from_bits(v)))?,
        (Ty::Msg(m), Wire::Bytes(b)) => return to_json(b, m, depth + 1),
        _ => return Err(wrong()),
    }))
}

fn packed_to_json(mut b: &[u8], ty: Ty, items: &mut Vec<Value>) -> Result<(), ProtoError> {
    while !b.is_empty() {
        let (value, rest): (Value, &[u8]) = match ty {
            Ty::Double | Ty::Float => {
                let n = if ty == Ty::Double { 8 } else { 4 };
                if b.len() < n {
                    return Err(ProtoError::Truncated);
                }
                let (v, rest) = b.split_at(n);
                let f = if n == 8 {
                    f64::from_le_bytes(v.try_into().map_err(|_| ProtoError::Truncated)?)
                } else {
                    f64::from(f32::from_le_bytes(
                        v.try_into().map_err(|_| ProtoError::Truncated)?,
                    ))
                };
                (float(f)?, rest)
            }
            _ => {
                let mut pos = 0;
                let v = varint(b, &mut pos)?;
                let value = match ty {
                    Ty::Bool => Value::Bool(v != 0),
                    Ty::Int32 => Value::from(v as i32),
                    _ => Value::from(v as i64),
                };
                (value, &b[pos..])
            }
        };
        items.push(value);
        b = rest;
    }
    Ok(())
}

fn time_to_json(buf: &[u8], kind: Special) -> Result<Option<Value>, ProtoError> {
    // An unset time is an empty message (Go's zero time, `null` in JSON).
    if buf.is_empty() {
        return Ok(None);
    }
    let (mut secs, mut nanos) = (0i64, 0i32);
    for f in Fields::new(buf) {
        match f? {
            (1, Wire::Varint(v)) => secs = v as i64,
            (2, Wire::Varint(v)) => nanos = v as i32,
            _ => {}
        }
    }
    let ts = jiff::Timestamp::from_second(secs).map_err(|_| ProtoError::TimeOutOfRange)?;
    // Whole seconds print as RFC 3339 without a fraction, ending in `Z`.
    let whole = ts.to_string();
    let text = if kind == Special::MicroTime {
        let micros = nanos.clamp(0, 999_999_999) / 1000;
        format!("{}.{micros:06}Z", whole.trim_end_matches('Z'))
    } else {
        // metav1.Time has whole seconds; its decoder drops the nanoseconds.
        whole
    };
    Ok(Some(Value::String(text)))
}

fn raw_to_json(raw: &[u8], depth: usize) -> Result<Option<Value>, ProtoError> {
    if raw.is_empty() {
        return Ok(None);
    }
    // An embedded object may itself be protobuf (client-go writes the envelope there).
    if raw.starts_with(super::MAGIC) {
        return super::decode_envelope(raw, None, depth + 1).map(Some);
    }
    serde_json::from_slice(raw)
        .map(Some)
        .map_err(|_| ProtoError::RawNotJson)
}

fn schema_union_to_json(
    buf: &[u8],
    kind: Special,
    depth: usize,
) -> Result<Option<Value>, ProtoError> {
    let props = TABLE
        .schema_props()
        .expect("the generated table holds JSONSchemaProps wherever it holds its unions");
    let (mut schema, mut list, mut allows) = (None, Vec::new(), false);
    for f in Fields::new(buf) {
        match (kind, f?) {
            (Special::SchemaOrArray, (1, Wire::Bytes(b)))
            | (Special::SchemaOrBool, (2, Wire::Bytes(b)))
            | (Special::SchemaOrStringArray, (1, Wire::Bytes(b))) => {
                schema = to_json(b, props, depth + 1)?
            }
            (Special::SchemaOrArray, (2, Wire::Bytes(b))) => {
                list.extend(to_json(b, props, depth + 1)?)
            }
            (Special::SchemaOrStringArray, (2, Wire::Bytes(b))) => {
                list.push(Value::String(utf8(b)?))
            }
            (Special::SchemaOrBool, (1, Wire::Varint(v))) => allows = v != 0,
            _ => {}
        }
    }
    Ok(match kind {
        Special::SchemaOrBool => Some(schema.unwrap_or(Value::Bool(allows))),
        _ if !list.is_empty() => Some(Value::Array(list)),
        _ => schema,
    })
}

/// Encodes `v` (a JSON object) as message `msg`, appending to `out`.
pub fn from_json(v: &Value, msg: usize, out: &mut Vec<u8>, depth: usize) -> Result<(), ProtoError> {
    if depth > MAX_DEPTH {
        return Err(ProtoError::TooDeep);
    }
    let t: &Table = &TABLE;
    let m = &t.messages[msg];
    let expect = |what: &'static str| ProtoError::JsonType(what, m.name.clone());
    match m.special {
        Special::None => {}
        Special::Time | Special::MicroTime => {
            let s = v.as_str().ok_or_else(|| expect("a time string"))?;
            let ts: jiff::Timestamp = s.parse().map_err(|_| expect("an RFC 3339 time"))?;
            put_varint_field(out, 1, ts.as_second() as u64);
            let nanos = ts.subsec_nanosecond();
            if nanos != 0 {
                put_varint_field(out, 2, nanos as i64 as u64);
            }
            return Ok(());
        }
        Special::Quantity => {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(expect("a quantity")),
            };
            put_bytes(out, 1, s.as_bytes());
            return Ok(());
        }
        Special::IntOrString => {
            match v {
                Value::Number(n) => {
                    let i = n
                        .as_i64()
                        .and_then(|i| i32::try_from(i).ok())
                        .ok_or_else(|| expect("an int32 or a string"))?;
                    put_varint_field(out, 1, 0);
                    put_varint_field(out, 2, i as i64 as u64);
                }
                Value::String(s) => {
                    put_varint_field(out, 1, 1);
                    put_bytes(out, 3, s.as_bytes());
                }
                _ => return Err(expect("an int32 or a string")),
            }
            return Ok(());
        }
        Special::RawJson => {
            put_bytes(out, 1, v.to_string().as_bytes());
            return Ok(());
        }
        Special::SchemaOrArray | Special::SchemaOrBool | Special::SchemaOrStringArray => {
            return schema_union_from_json(v, m.special, out, depth);
        }
        Special::Array => {
            for item in v.as_array().ok_or_else(|| expect("an array"))? {
                put_bytes(
                    out,
                    1,
                    item.as_str().ok_or_else(|| expect("strings"))?.as_bytes(),
                );
            }
            return Ok(());
        }
    }
    let obj = v.as_object().ok_or_else(|| expect("an object"))?;
    for field in &m.fields {
        if field.json.is_empty() {
            // Inlined: the nested message reads the same JSON object.
            if let Ty::Msg(inner) = field.ty {
                let mut buf = Vec::new();
                from_json(v, inner, &mut buf, depth + 1)?;
                put_bytes(out, field.tag, &buf);
            }
            continue;
        }
        let Some(value) = obj.get(&field.json).filter(|v| !v.is_null()) else {
            continue;
        };
        match field.shape {
            Shape::One => put_value(out, field, value, depth)?,
            Shape::Rep => {
                let items = value
                    .as_array()
                    .ok_or_else(|| ProtoError::JsonType("an array", field.json.clone()))?;
                for item in items.iter().filter(|i| !i.is_null()) {
                    put_value(out, field, item, depth)?;
                }
            }
            Shape::Map => {
                let map = value
                    .as_object()
                    .ok_or_else(|| ProtoError::JsonType("an object", field.json.clone()))?;
                // Go writes map entries sorted by key; so do we, for stable bytes.
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                for k in keys {
                    let mut entry = Vec::new();
                    put_bytes(&mut entry, 1, k.as_bytes());
                    if !map[k].is_null() {
                        let value_field = Field {
                            tag: 2,
                            json: field.json.clone(),
                            shape: Shape::One,
                            ty: field.ty,
                            keep_zero: true,
                        };
                        put_value(&mut entry, &value_field, &map[k], depth)?;
                    }
                    put_bytes(out, field.tag, &entry);
                }
            }
        }
    }
    Ok(())
}

/// Writes one value of `field`.
fn put_value(out: &mut Vec<u8>, field: &Field, v: &Value, depth: usize) -> Result<(), ProtoError> {
    let wrong = |what: &'static str| ProtoError::JsonType(what, field.json.clone());
    let int = |range: (i64, i64)| -> Result<i64, ProtoError> {
        let i = match v {
            Value::Number(n) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
                    .map(|f| f as i64)
            }),
            _ => None,
        };
        i.filter(|i| (range.0..=range.1).contains(i))
            .ok_or_else(|| wrong("an integer"))
    };
    match field.ty {
        Ty::Str => put_bytes(
            out,
            field.tag,
            v.as_str().ok_or_else(|| wrong("a string"))?.as_bytes(),
        ),
        Ty::Bytes => {
            let s = v.as_str().ok_or_else(|| wrong("a base64 string"))?;
            let b = B64.decode(s).map_err(|_| wrong("a base64 string"))?;
            put_bytes(out, field.tag, &b);
        }
        Ty::Bool => put_varint_field(
            out,
            field.tag,
            u64::from(v.as_bool().ok_or_else(|| wrong("a boolean"))?),
        ),
        Ty::Int32 => put_varint_field(
            out,
            field.tag,
            int((i32::MIN.into(), i32::MAX.into()))? as u64,
        ),
        Ty::Int64 => put_varint_field(out, field.tag, int((i64::MIN, i64::MAX))? as u64),
        Ty::Double => {
            put_key(out, field.tag, 1);
            let f = v.as_f64().ok_or_else(|| wrong("a number"))?;
            out.extend_from_slice(&f.to_le_bytes());
        }
        Ty::Float => {
            put_key(out, field.tag, 5);
            let f = v.as_f64().ok_or_else(|| wrong("a number"))? as f32;
            out.extend_from_slice(&f.to_le_bytes());
        }
        Ty::Msg(m) => {
            let mut buf = Vec::new();
            from_json(v, m, &mut buf, depth + 1)?;
            put_key(out, field.tag, 2);
            put_varint(out, buf.len() as u64);
            out.extend_from_slice(&buf);
        }
    }
    Ok(())
}

fn schema_union_from_json(
    v: &Value,
    kind: Special,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), ProtoError> {
    let props = TABLE
        .schema_props()
        .expect("the generated table holds JSONSchemaProps wherever it holds its unions");
    let schema = |out: &mut Vec<u8>, tag: u32, v: &Value| -> Result<(), ProtoError> {
        let mut buf = Vec::new();
        from_json(v, props, &mut buf, depth + 1)?;
        put_bytes(out, tag, &buf);
        Ok(())
    };
    let wrong = || ProtoError::JsonType("a schema, an array or a boolean", "schema".into());
    match (kind, v) {
        (Special::SchemaOrBool, Value::Bool(b)) => put_varint_field(out, 1, u64::from(*b)),
        (Special::SchemaOrBool, Value::Object(_)) => {
            put_varint_field(out, 1, 1);
            schema(out, 2, v)?;
        }
        (Special::SchemaOrArray | Special::SchemaOrStringArray, Value::Object(_)) => {
            schema(out, 1, v)?
        }
        (Special::SchemaOrArray, Value::Array(items)) => {
            for item in items {
                schema(out, 2, item)?;
            }
        }
        (Special::SchemaOrStringArray, Value::Array(items)) => {
            for item in items {
                put_bytes(out, 2, item.as_str().ok_or_else(wrong)?.as_bytes());
            }
        }
        _ => return Err(wrong()),
    }
    Ok(())
}
