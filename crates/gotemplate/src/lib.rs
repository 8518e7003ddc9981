//! Go's `text/template` in Rust, with Sprig v3 and Helm's template functions.
//!
//! Pure (no I/O). Templates render byte-for-byte as Go renders them: Go's truthiness and
//! comparison rules, `fmt` printing (`1e+06`, `map[a:1 b:2]`, `<no value>`), errors shaped like
//! Go's (`template: NAME:LINE:COL: executing "NAME" at <.Foo>: ...`), and limits on depth,
//! steps and output so that no template hangs or overflows the stack.
//!
//! ```
//! use ferroflux_gotemplate::{Sources, Template, Value, sprig_funcs};
//! let mut t = Template::with_funcs(sprig_funcs(&Sources::default()));
//! t.parse("msg", "Hello {{ .name | upper }}").expect("parses");
//! let data = Value::from_json(&serde_json::json!({"name": "flux"}));
//! assert_eq!(t.execute("msg", &data).expect("renders"), "Hello FLUX");
//! ```
//!
//! # Pieces
//! - [`Template`]: a set of parsed templates (`define`s shared), Go's builtins plus any
//!   [`FuncMap`]; [`Options`] hold `missingkey` and the limits.
//! - [`sprig_funcs`]: Sprig v3's text functions; randomness, the clock and the environment come
//!   from [`Sources`] so renders are deterministic unless the host says otherwise.
//! - [`helm_funcs`] and [`HelmEngine`]: Helm's functions (`toYaml` in sigs.k8s.io/yaml's exact
//!   format, `include`, `tpl`, `required`, ...) and its rendering rules over a chart's files.
//!   Chart values should be read with [`yaml::from_yaml`], which gives numbers as `float64`
//!   the way Helm's values do.
//! - [`HostObject`]: objects with methods for templates (`.Files.Get`, `.Capabilities.
//!   APIVersions.Has`); [`Files`] and [`capabilities`] build Helm's.
//!
//! # Limits
//! Execution stops with an error, never a hang or a crash, past [`Options::max_steps`],
//! [`Options::max_output`], [`Options::max_depth`] nested template calls, or
//! [`Options::max_stack`] bytes of stack (1 MiB by default, which fits Rust's 2 MiB default
//! thread stack). [`HelmEngine::render`] runs on its own large-stack thread so that Helm's
//! 1000-deep `include` chains work.

#![deny(missing_docs)]

mod builtins;
mod exec;
pub mod gofmt;
mod helm;
mod lex;
mod parse;
mod sprig;
mod toml;
mod value;
pub mod yaml;

use std::collections::HashMap;
use std::sync::Arc;

pub use exec::Exec;
pub use helm::{ApiVersions, Files, HelmEngine, ScopedTemplate, capabilities, helm_funcs};
pub use parse::Tree;
pub use sprig::{Sources, sprig_funcs};
pub use value::{HostObject, Map, MapCell, Value};

/// What a missing map key yields (Go's `missingkey=` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingKey {
    /// `<no value>` (Go's default).
    #[default]
    Default,
    /// The zero value of the map's element type (nil for JSON-like data).
    Zero,
    /// An execution error.
    Error,
}

/// Execution options and limits.
#[derive(Debug, Clone)]
pub struct Options {
    /// What a missing map key yields.
    pub missing_key: MissingKey,
    /// Deepest chain of `template`/`include` calls; deeper is an error (Go allows 100000, which
    /// would overflow a thread's stack here).
    pub max_depth: usize,
    /// Most bytes one execution may write.
    pub max_output: usize,
    /// Most evaluation steps (actions, function calls, loop iterations) one execution may take.
    pub max_steps: u64,
    /// Most bytes of stack one execution may use. The default fits a 2 MiB thread stack (Rust's
    /// default for spawned threads); raise it only when running on a larger stack.
    pub max_stack: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            missing_key: MissingKey::Default,
            max_depth: 1000,
            max_output: 256 << 20,
            max_steps: 10_000_000,
            max_stack: 1 << 20,
        }
    }
}

/// Errors from parsing or executing a template.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The template text is not valid: fix the template at the given line and column.
    #[error("template: {name}:{line}:{col}: {message}")]
    Parse {
        /// The template (file) name.
        name: String,
        /// 1-based line.
        line: usize,
        /// 0-based byte column, as Go counts it.
        col: usize,
        /// What is wrong.
        message: String,
    },
    /// Execution failed at a node.
    #[error("template: {location}: executing {template:?} at <{context}>: {message}")]
    Exec {
        /// `NAME:LINE:COL` of the failing node.
        location: String,
        /// The template that was executing.
        template: String,
        /// The failing node, as written (shortened).
        context: String,
        /// What went wrong.
        message: String,
    },
    /// A chart's `required` or `fail` stopped the render (Helm's own wording).
    #[error("execution error at ({location}): {message}")]
    Chart {
        /// `NAME:LINE:COL` of the failing call in the rendered file.
        location: String,
        /// The chart's message.
        message: String,
    },
    /// No template of that name was parsed into the set.
    #[error("template: no template {name:?} associated with template set")]
    NoTemplate {
        /// The requested name.
        name: String,
    },
    /// The engine could not get the resources it needs (a thread for a chart render).
    #[error("template engine: {message}")]
    Resource {
        /// What failed.
        message: String,
    },
    /// The output grew beyond [`Options::max_output`]: the template most likely loops.
    #[error("template: output exceeds the limit of {limit} bytes")]
    OutputLimit {
        /// The limit in bytes.
        limit: usize,
    },
}

/// Why a template function failed.
#[derive(Debug)]
pub enum FuncError {
    /// The function failed with this message (reported as `error calling NAME: MSG`).
    Call(String),
    /// A nested template execution failed (`include`, `tpl`): reported as is.
    Template(Box<Error>),
}

impl From<String> for FuncError {
    fn from(s: String) -> Self {
        FuncError::Call(s)
    }
}
impl From<&str> for FuncError {
    fn from(s: &str) -> Self {
        FuncError::Call(s.to_string())
    }
}

/// A template function: gets the executor (for `include`-like functions) and its arguments.
pub type Func = Arc<dyn Fn(&mut Exec<'_>, &[Value]) -> Result<Value, FuncError> + Send + Sync>;

/// Functions by name.
pub type FuncMap = HashMap<String, Func>;

/// Wraps a plain function of the arguments as a [`Func`].
pub fn func(f: impl Fn(&[Value]) -> Result<Value, FuncError> + Send + Sync + 'static) -> Func {
    Arc::new(move |_: &mut Exec<'_>, args: &[Value]| f(args))
}

/// A set of parsed templates sharing functions, delimiters and options (Go's `*Template`
/// with its associated templates).
#[derive(Clone)]
pub struct Template {
    pub(crate) trees: HashMap<Arc<str>, Arc<Tree>>,
    pub(crate) funcs: Arc<FuncMap>,
    pub(crate) options: Options,
    /// The name `$`, shared by every execution's variable scopes.
    pub(crate) dollar: Arc<str>,
    left: String,
    right: String,
}

impl Default for Template {
    fn default() -> Self {
        Self::new()
    }
}

impl Template {
    /// An empty set with Go's builtin functions only.
    pub fn new() -> Self {
        Self::with_funcs(FuncMap::new())
    }

    /// An empty set with the builtins plus `funcs` (which override builtins of the same name).
    pub fn with_funcs(funcs: FuncMap) -> Self {
        let mut all = builtins::builtins();
        all.extend(funcs);
        Template {
            trees: HashMap::new(),
            funcs: Arc::new(all),
            options: Options::default(),
            dollar: "$".into(),
            left: "{{".into(),
            right: "}}".into(),
        }
    }

    /// Sets the action delimiters (empty means the default `{{` / `}}`).
    pub fn delims(&mut self, left: &str, right: &str) -> &mut Self {
        self.left = if left.is_empty() {
            "{{".into()
        } else {
            left.into()
        };
        self.right = if right.is_empty() {
            "}}".into()
        } else {
            right.into()
        };
        self
    }

    /// Sets the options and limits.
    pub fn options(&mut self, options: Options) -> &mut Self {
        self.options = options;
        self
    }

    /// The options in force.
    pub fn current_options(&self) -> &Options {
        &self.options
    }

    /// Sets what a missing map key yields.
    pub fn missing_key(&mut self, mk: MissingKey) -> &mut Self {
        self.options.missing_key = mk;
        self
    }

    /// Adds or replaces functions.
    pub fn add_funcs(&mut self, funcs: FuncMap) -> &mut Self {
        Arc::make_mut(&mut self.funcs).extend(funcs);
        self
    }

    /// Whether a function of that name is known.
    pub fn has_func(&self, name: &str) -> bool {
        self.funcs.contains_key(name) || name == "and" || name == "or"
    }

    /// Whether a template of that name is in the set.
    pub fn has_template(&self, name: &str) -> bool {
        self.trees.contains_key(name)
    }

    /// Names of the templates in the set, sorted.
    pub fn template_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.trees.keys().map(|k| k.to_string()).collect();
        v.sort();
        v
    }

    /// Parses `text` as template `name` (Go's `t.New(name).Parse(text)`): its `define`s join
    /// the set; a non-empty definition replaces an earlier one of the same name.
    ///
    /// # Errors
    /// [`Error::Parse`] with the line and column of the first problem.
    pub fn parse(&mut self, name: &str, text: &str) -> Result<(), Error> {
        let funcs = self.funcs.clone();
        let has = move |f: &str| funcs.contains_key(f) || f == "and" || f == "or";
        let trees = parse::parse(name, text, &self.left, &self.right, &has).map_err(|e| {
            let before = &text[..e.pos.min(text.len())];
            let line = 1 + before.matches('\n').count();
            let col = match before.rfind('\n') {
                Some(i) => e.pos - i - 1,
                None => e.pos,
            };
            Error::Parse {
                name: name.to_string(),
                line,
                col,
                message: e.msg,
            }
        })?;
        for tree in trees {
            let key: Arc<str> = tree.name.clone();
            if let Some(old) = self.trees.get(&key)
                && parse::is_empty_tree(&tree.root)
                && !parse::is_empty_tree(&old.root)
            {
                continue;
            }
            self.trees.insert(key, Arc::new(tree));
        }
        Ok(())
    }

    /// Executes template `name` over `data`.
    ///
    /// # Errors
    /// [`Error::NoTemplate`] when `name` was never parsed, [`Error::Exec`] when evaluation
    /// fails (with the failing node's location), [`Error::OutputLimit`] on runaway output.
    pub fn execute(&self, name: &str, data: &Value) -> Result<String, Error> {
        let mut out = String::new();
        self.execute_into(name, data, &mut out)?;
        Ok(out)
    }

    /// Like [`Template::execute`], appending to `out`.
    ///
    /// # Errors
    /// As [`Template::execute`].
    pub fn execute_into(&self, name: &str, data: &Value, out: &mut String) -> Result<(), Error> {
        let Some(tree) = self.trees.get(name) else {
            return Err(Error::NoTemplate {
                name: name.to_string(),
            });
        };
        let mut ex = Exec::new(self, tree, data);
        ex.run(data, out)
    }
}

#[cfg(test)]
mod tests;
