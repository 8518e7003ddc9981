//! The declaration macro shared by the API types.

/// Declares an API struct whose `Option` fields are left out of the serialized object when
/// `None`, as Flux's Go types (`omitempty`) do, without repeating the serde attribute on each
/// of the hundreds of optional fields.
///
/// `default` is spelled out although serde reads a missing `Option` as `None` anyway: schemars
/// cannot see through `schema_with` that the field is an `Option`, and without `default` it
/// would mark such fields required. The macro only recognises a field written as `Option<..>`:
/// other types are passed through untouched.
macro_rules! api_struct {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident { $($body:tt)* }
    ) => {
        api_struct!(@fields [$(#[$meta])* $vis struct $name] [] $($body)*);
    };
    // Every field is rewritten: emit the struct.
    (@fields [$($head:tt)*] [$($done:tt)*]) => {
        $($head)* { $($done)* }
    };
    (@fields $head:tt [$($done:tt)*]
        $(#[$fmeta:meta])* $fvis:vis $field:ident : Option<$inner:ty> $(, $($rest:tt)*)?
    ) => {
        api_struct!(@fields $head [$($done)*
            $(#[$fmeta])*
            #[serde(default, skip_serializing_if = "Option::is_none")]
            $fvis $field: Option<$inner>,
        ] $($($rest)*)?);
    };
    (@fields $head:tt [$($done:tt)*]
        $(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty $(, $($rest:tt)*)?
    ) => {
        api_struct!(@fields $head [$($done)* $(#[$fmeta])* $fvis $field: $ty,] $($($rest)*)?);
    };
}
