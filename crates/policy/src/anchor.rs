//! Kyverno's anchors (`pkg/engine/anchor`): `(key)` conditional, `<(key)` global, `X(key)`
//! negation, `=(key)` equality, `^(key)` existence and `+(key)` add-if-absent (mutate only).

/// The kind of an anchor, by its modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnchorType {
    /// `(key)`.
    Condition,
    /// `<(key)`.
    Global,
    /// `X(key)`.
    Negation,
    /// `+(key)`.
    AddIfNotPresent,
    /// `=(key)`.
    Equality,
    /// `^(key)`.
    Existence,
}

/// A parsed anchor key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor<'a> {
    /// Its modifier.
    pub kind: AnchorType,
    /// The key inside the parentheses.
    pub key: &'a str,
}

/// `anchor.Parse`: `^([+<=X^])?\((.+)\)$` after trimming spaces.
pub fn parse(text: &str) -> Option<Anchor<'_>> {
    let text = text.trim();
    let (kind, rest) = match text.chars().next()? {
        '+' => (AnchorType::AddIfNotPresent, &text[1..]),
        '<' => (AnchorType::Global, &text[1..]),
        '=' => (AnchorType::Equality, &text[1..]),
        'X' => (AnchorType::Negation, &text[1..]),
        '^' => (AnchorType::Existence, &text[1..]),
        _ => (AnchorType::Condition, text),
    };
    let key = rest.strip_prefix('(')?.strip_suffix(')')?;
    if key.is_empty() || key.contains('\n') {
        return None;
    }
    Some(Anchor { kind, key })
}

/// `anchor.String`: the key text of an anchor.
pub fn render(kind: AnchorType, key: &str) -> String {
    let modifier = match kind {
        AnchorType::Condition => "",
        AnchorType::Global => "<",
        AnchorType::Negation => "X",
        AnchorType::AddIfNotPresent => "+",
        AnchorType::Equality => "=",
        AnchorType::Existence => "^",
    };
    format!("{modifier}({key})")
}

/// Whether a pattern key is an anchor of one of `kinds`.
pub fn is_one_of(text: &str, kinds: &[AnchorType]) -> bool {
    parse(text).is_some_and(|a| kinds.contains(&a.kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_modifier() {
        assert_eq!(
            parse("(image)").map(|a| a.kind),
            Some(AnchorType::Condition)
        );
        assert_eq!(parse(" <(type) ").map(|a| a.key), Some("type"));
        assert_eq!(
            parse("X(hostPath)").map(|a| a.kind),
            Some(AnchorType::Negation)
        );
        assert_eq!(
            parse("=(securityContext)").map(|a| a.kind),
            Some(AnchorType::Equality)
        );
        assert_eq!(
            parse("^(containers)").map(|a| a.kind),
            Some(AnchorType::Existence)
        );
        assert_eq!(
            parse("+(x)").map(|a| a.kind),
            Some(AnchorType::AddIfNotPresent)
        );
        assert!(parse("()").is_none());
        assert!(parse("image").is_none());
        assert!(parse("Y(a)").is_none());
    }
}
