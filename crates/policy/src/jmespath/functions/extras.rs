//! Kyverno's remaining functions (`pkg/engine/jmespath/functions.go`): `semver_compare` with
//! blang/semver's ranges, the hashes, `equal_fold`, `image_normalize`, `is_external_url`,
//! `x509_decode`, and `random`, which is refused.

use std::cmp::Ordering;
use std::net::IpAddr;

use ferroflux_semver::Version;
use jmespath::Rcvar;
use serde_json::{Map, Value};
use sha1::Digest as _;

use super::{Args, JpError, boolean, fail, from_json, string};

/// Calls the function `a.name` when it is one of this file's, `None` otherwise.
pub(super) fn call(a: &Args<'_, '_>) -> Result<Option<Rcvar>, JpError> {
    let out = match a.name {
        "semver_compare" => {
            a.arity(2)?;
            // Kyverno ignores a version that does not parse: it compares as 0.0.0.
            let version =
                Version::parse_strict(&a.str(0)?).unwrap_or_else(|_| Version::new(0, 0, 0));
            let range = Range::parse(&a.str(1)?).map_err(|e| fail(a.name, e))?;
            boolean(range.contains(&version))?
        }
        "sha256" => (a.arity(1)?, string(hex(&sha2::Sha256::digest(a.str(0)?)))?).1,
        "sha1" => (a.arity(1)?, string(hex(&sha1::Sha1::digest(a.str(0)?)))?).1,
        "md5" => (a.arity(1)?, string(hex(&md5::Md5::digest(a.str(0)?)))?).1,
        "equal_fold" => (a.arity(2)?, boolean(equal_fold(&a.str(0)?, &a.str(1)?))?).1,
        "image_normalize" => {
            a.arity(1)?;
            let info = crate::images::ImageInfo::parse(&a.str(0)?).map_err(|e| fail(a.name, e))?;
            string(info.reference())?
        }
        "is_external_url" => {
            a.arity(1)?;
            boolean(is_external_url(&a.str(0)?).map_err(|e| fail(a.name, e))?)?
        }
        "x509_decode" => {
            (
                a.arity(1)?,
                from_json(x509_decode(&a.str(0)?).map_err(|e| fail(a.name, e))?)?,
            )
                .1
        }
        "random" => {
            // Kyverno generates text from a regular expression; a random verdict is not one a
            // policy can be tested against, so the engine says so instead of guessing.
            return Err(fail(a.name, "not supported by this engine"));
        }
        _ => return Ok(None),
    };
    Ok(Some(out))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Go's `strings.EqualFold`: rune by rune under Unicode simple case folding.
fn equal_fold(a: &str, b: &str) -> bool {
    let simple = |c: char, upper: bool| {
        let mut mapped = if upper {
            c.to_uppercase().collect::<Vec<_>>()
        } else {
            c.to_lowercase().collect::<Vec<_>>()
        };
        // Only one-to-one mappings are simple folds (`ß` does not fold to `SS`).
        if mapped.len() == 1 {
            mapped.remove(0)
        } else {
            c
        }
    };
    let fold = |c: char| simple(simple(c, true), false);
    a.chars().count() == b.chars().count()
        && a.chars()
            .zip(b.chars())
            .all(|(x, y)| x == y || fold(x) == fold(y) || simple(x, false) == simple(y, false))
}

/// One comparison of a blang/semver range (`>=1.2.3`).
struct Comparison {
    op: &'static str,
    version: Version,
}

impl Comparison {
    fn holds(&self, v: &Version) -> bool {
        let o = v.compare(&self.version);
        match self.op {
            "<" => o == Ordering::Less,
            "<=" => o != Ordering::Greater,
            ">" => o == Ordering::Greater,
            ">=" => o != Ordering::Less,
            "!=" => o != Ordering::Equal,
            _ => o == Ordering::Equal,
        }
    }
}

/// A blang/semver `Range`: `||` separates alternatives, spaces separate comparisons that must
/// all hold, `1.x` and `1.2.x` are wildcards.
struct Range(Vec<Vec<Comparison>>);

impl Range {
    fn parse(text: &str) -> Result<Range, String> {
        let mut alternatives = vec![Vec::new()];
        for part in split_range(text) {
            if part == "||" {
                alternatives.push(Vec::new());
                continue;
            }
            let current = alternatives.last_mut().ok_or("empty range")?;
            current.extend(comparisons(&part)?);
        }
        if alternatives.iter().any(Vec::is_empty) {
            return Err(format!("Could not parse Range {text:?}"));
        }
        Ok(Range(alternatives))
    }

    fn contains(&self, v: &Version) -> bool {
        self.0.iter().any(|all| all.iter().all(|c| c.holds(v)))
    }
}

/// Splits on spaces, keeping an operator with the version that follows it (`>= 1.0.0`).
fn split_range(text: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        match parts.last_mut() {
            Some(last)
                if matches!(
                    last.as_str(),
                    "<" | "<=" | ">" | ">=" | "=" | "==" | "!=" | "!"
                ) =>
            {
                last.push_str(word)
            }
            _ => parts.push(word.to_string()),
        }
    }
    parts
}

/// One range term: an operator and a version, a wildcard expanding to two comparisons.
fn comparisons(term: &str) -> Result<Vec<Comparison>, String> {
    let split = term
        .find(|c: char| c.is_ascii_digit())
        .ok_or_else(|| format!("Could not parse comparator {term:?}"))?;
    let (op, version) = term.split_at(split);
    let op: &'static str = match op {
        "" | "=" | "==" => "=",
        "!=" | "!" => "!=",
        ">" => ">",
        ">=" => ">=",
        "<" => "<",
        "<=" => "<=",
        _ => return Err(format!("Could not parse comparator {op:?} in {term:?}")),
    };
    let fields: Vec<&str> = version.split('.').collect();
    let wildcard = fields
        .iter()
        .position(|f| *f == "x" || *f == "X" || *f == "*");
    let Some(at) = wildcard else {
        let version = Version::parse_strict(version).map_err(|e| e.to_string())?;
        return Ok(vec![Comparison { op, version }]);
    };
    let number = |i: usize| -> Result<u64, String> {
        fields.get(i).map_or(Ok(0), |f| {
            f.parse()
                .map_err(|_| format!("Could not parse version {version:?}"))
        })
    };
    let (major, minor) = (number(0)?, if at > 1 { number(1)? } else { 0 });
    let low = if at == 1 {
        Version::new(major, 0, 0)
    } else {
        Version::new(major, minor, 0)
    };
    let high = if at == 1 {
        Version::new(major + 1, 0, 0)
    } else {
        Version::new(major, minor + 1, 0)
    };
    let one = |op, version| Ok(vec![Comparison { op, version }]);
    match op {
        ">" => one(">=", high),
        ">=" => one(">=", low),
        "<" => one("<", low),
        "<=" => one("<", high),
        // blang puts both bounds of `!=1.x` in the same conjunction: it matches nothing.
        "!=" => Ok(vec![
            Comparison {
                op: "<",
                version: low,
            },
            Comparison {
                op: ">=",
                version: high,
            },
        ]),
        _ => Ok(vec![
            Comparison {
                op: ">=",
                version: low,
            },
            Comparison {
                op: "<",
                version: high,
            },
        ]),
    }
}

/// `is_external_url`: false for loopback and private addresses. Host names would need a DNS
/// lookup, which this engine (pure, no I/O) does not make, so they are an error.
fn is_external_url(url: &str) -> Result<bool, String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(!(ip.is_loopback() || private(&ip))),
        Err(_) if host.eq_ignore_ascii_case("localhost") => Ok(false),
        Err(_) => Err(format!(
            "cannot resolve host {host:?}: the policy engine makes no DNS lookups"
        )),
    }
}

/// Go's `IP.IsPrivate`: RFC 1918 and RFC 4193 ranges.
fn private(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// `x509_decode`: the PEM certificate or certificate request as the JSON Go encodes it, for
/// the fields policies read: `PublicKey.N` (decimal text) and `E` of RSA keys, `Subject` and
/// `Issuer` (`pkix.Name`'s common fields), `NotBefore`/`NotAfter`, `SerialNumber`, `Version`.
fn x509_decode(pem_text: &str) -> Result<Value, String> {
    use x509_parser::prelude::*;
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem_text.as_bytes())
        .map_err(|_| "failed to decode PEM block".to_string())?;
    match pem.label.as_str() {
        "CERTIFICATE" => {
            let cert = pem.parse_x509().map_err(|e| e.to_string())?;
            let mut out = public_key(cert.public_key())?;
            out.insert("Version".into(), Value::from(cert.version().0 + 1));
            out.insert(
                "SerialNumber".into(),
                big_number(&cert.raw_serial_as_string().replace(':', ""), 16),
            );
            out.insert("Subject".into(), name(cert.subject()));
            out.insert("Issuer".into(), name(cert.issuer()));
            out.insert(
                "NotBefore".into(),
                rfc3339(cert.validity().not_before.timestamp()),
            );
            out.insert(
                "NotAfter".into(),
                rfc3339(cert.validity().not_after.timestamp()),
            );
            Ok(Value::Object(out))
        }
        "CERTIFICATE REQUEST" => {
            let (_, csr) =
                X509CertificationRequest::from_der(&pem.contents).map_err(|e| e.to_string())?;
            let mut out = public_key(&csr.certification_request_info.subject_pki)?;
            out.insert(
                "Subject".into(),
                name(&csr.certification_request_info.subject),
            );
            Ok(Value::Object(out))
        }
        _ => Err("PEM block neither contains a CERTIFICATE or CERTIFICATE REQUEST".into()),
    }
}

/// A distinguished name as Go's `pkix.Name` encodes the fields policies read: lists of
/// strings (`null` when absent) and the common name.
fn name(dn: &x509_parser::x509::X509Name<'_>) -> Value {
    let list = |values: Vec<String>| {
        if values.is_empty() {
            Value::Null
        } else {
            Value::from(values)
        }
    };
    let text = |attr: &x509_parser::x509::AttributeTypeAndValue<'_>| {
        attr.as_str().map(str::to_string).unwrap_or_default()
    };
    let mut out = Map::new();
    out.insert(
        "Country".into(),
        list(dn.iter_country().map(text).collect()),
    );
    out.insert(
        "Organization".into(),
        list(dn.iter_organization().map(text).collect()),
    );
    out.insert(
        "OrganizationalUnit".into(),
        list(dn.iter_organizational_unit().map(text).collect()),
    );
    out.insert(
        "Locality".into(),
        list(dn.iter_locality().map(text).collect()),
    );
    out.insert(
        "Province".into(),
        list(dn.iter_state_or_province().map(text).collect()),
    );
    let common_name = dn.iter_common_name().next().map(text).unwrap_or_default();
    out.insert("CommonName".into(), Value::from(common_name));
    Value::Object(out)
}

/// Go's JSON of a `time.Time` at whole seconds, in UTC.
fn rfc3339(unix: i64) -> Value {
    Value::from(ferroflux_gocompat::time::GoTime::utc(unix, 0).format("2006-01-02T15:04:05Z07:00"))
}

fn public_key(
    spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>,
) -> Result<Map<String, Value>, String> {
    use x509_parser::public_key::PublicKey;
    let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
        return Err("certificate should use rsa algorithm".into());
    };
    let mut key = Map::new();
    // Kyverno writes the modulus as a decimal string (`N.String()`), the exponent as a number.
    key.insert("N".into(), Value::from(decimal(rsa.modulus)));
    key.insert("E".into(), big_number(&hex(rsa.exponent), 16));
    let mut out = Map::new();
    out.insert("PublicKey".into(), Value::Object(key));
    out.insert("PublicKeyAlgorithm".into(), Value::from(1));
    Ok(out)
}

/// A big-endian unsigned integer in decimal (Go's `big.Int.String`).
fn decimal(bytes: &[u8]) -> String {
    let mut number: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut digits = Vec::new();
    while !number.is_empty() {
        // One long division by 10, most significant byte first.
        let mut remainder = 0u32;
        for byte in number.iter_mut() {
            let current = (remainder << 8) | u32::from(*byte);
            *byte = (current / 10) as u8;
            remainder = current % 10;
        }
        digits.push(b'0' + remainder as u8);
        let leading = number.iter().take_while(|b| **b == 0).count();
        number.drain(..leading);
    }
    if digits.is_empty() {
        return "0".into();
    }
    digits.iter().rev().map(|d| char::from(*d)).collect()
}

/// A small integer as Go's decoder reads it back into `any`: a float64.
fn big_number(digits: &str, radix: u32) -> Value {
    let value = digits
        .chars()
        .filter_map(|c| c.to_digit(radix))
        .fold(0f64, |acc, d| acc * f64::from(radix) + f64::from(d));
    serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::jmespath::run_on_empty as run;
    use crate::jmespath::{search, to_json, to_var};

    #[test]
    fn semver_compare_uses_blang_ranges() {
        assert_eq!(run("semver_compare('4.1.3', '>=4.1.x')"), json!(true));
        assert_eq!(run("semver_compare('4.1.3', '!4.x.x')"), json!(false));
        assert_eq!(
            run("semver_compare('1.2.3', '>1.0.0 <2.0.0 || >=3.0.0')"),
            json!(true)
        );
        assert_eq!(
            run("semver_compare('2.5.0', '>1.0.0 <2.0.0 || >=3.0.0')"),
            json!(false)
        );
        assert_eq!(run("semver_compare('1.0.0', '>= 1.0.0')"), json!(true));
        // An unparsable version is 0.0.0, as in Kyverno.
        assert_eq!(run("semver_compare('v1.2.3', '<0.0.1')"), json!(true));
        assert!(search("semver_compare('1.0.0', 'foo')", &to_var(&json!({}))).is_err());
    }

    #[test]
    fn hashes_are_lowercase_hex() {
        assert_eq!(
            run("sha256('hello')"),
            json!("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        );
        assert_eq!(
            run("sha1('hello')"),
            json!("aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d")
        );
        assert_eq!(
            run("md5('hello')"),
            json!("5d41402abc4b2a76b9719d911017c592")
        );
    }

    #[test]
    fn equal_fold_is_go_simple_folding() {
        assert_eq!(run("equal_fold('Go', 'GO')"), json!(true));
        assert!(equal_fold("\u{212A}", "k"));
        assert!(equal_fold("σ", "ς"));
        assert!(!equal_fold("ß", "SS"));
        assert!(!equal_fold("a", "b"));
    }

    #[test]
    fn image_normalize_adds_registry_and_tag() {
        assert_eq!(
            run("image_normalize('nginx')"),
            json!("docker.io/nginx:latest")
        );
        assert_eq!(
            run("image_normalize('ghcr.io/fluxcd/source-controller:v1')"),
            json!("ghcr.io/fluxcd/source-controller:v1")
        );
        assert_eq!(
            run("image_normalize('bitnami/nginx@sha256:0123456789abcdef0123456789abcdef')"),
            json!("docker.io/bitnami/nginx@sha256:0123456789abcdef0123456789abcdef")
        );
        assert_eq!(
            run("image_normalize('localhost:5000/app')"),
            json!("localhost:5000/app:latest")
        );
        assert!(search("image_normalize('Bad Image')", &to_var(&json!({}))).is_err());
    }

    #[test]
    fn is_external_url_on_addresses() {
        assert_eq!(run("is_external_url('http://127.0.0.1/x')"), json!(false));
        assert_eq!(
            run("is_external_url('https://10.1.2.3:8443')"),
            json!(false)
        );
        assert_eq!(run("is_external_url('http://8.8.8.8')"), json!(true));
        assert_eq!(run("is_external_url('http://[fd00::1]/')"), json!(false));
        assert!(search("is_external_url('http://example.com')", &to_var(&json!({}))).is_err());
        assert!(search("random('[a-z]{4}')", &to_var(&json!({}))).is_err());
    }

    #[test]
    fn x509_decode_reads_rsa_keys() {
        let (cert, n) = rsa_cert();
        let data = json!({ "cert": cert });
        let out = search("x509_decode(cert).PublicKey.N", &to_var(&data)).expect("decodes");
        assert_eq!(to_json(&out), Ok(n));
        let e = search("x509_decode(cert).PublicKey.E", &to_var(&data)).expect("decodes");
        assert_eq!(to_json(&e), Ok(json!(65537.0)));
        let subject =
            search("x509_decode(cert).Subject.CommonName", &to_var(&data)).expect("decodes");
        assert_eq!(to_json(&subject), Ok(json!("ferroflux-test")));
        let after = search("x509_decode(cert).NotAfter", &to_var(&data)).expect("decodes");
        assert!(to_json(&after).is_ok_and(|t| t.as_str().is_some_and(|t| t.ends_with('Z'))));
        assert!(search("x509_decode('nope')", &to_var(&data)).is_err());
    }

    /// A self-signed RSA certificate and its modulus in decimal.
    fn rsa_cert() -> (String, Value) {
        let pem = include_str!("testdata/rsa-cert.pem").to_string();
        let modulus = include_str!("testdata/rsa-modulus.dec").trim().to_string();
        (pem, Value::from(modulus))
    }

    #[test]
    fn decimal_of_big_endian_bytes() {
        assert_eq!(decimal(&[]), "0");
        assert_eq!(decimal(&[0, 1, 0]), "256");
        assert_eq!(decimal(&[0xff; 9]), "4722366482869645213695");
    }
}
