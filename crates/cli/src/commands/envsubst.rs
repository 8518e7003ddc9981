//! `ferroflux envsubst`: substitutes environment variables in standard input line by line, as
//! `flux envsubst` does to replicate a Kustomization's post-build substitution locally (the
//! same `${var}` dialect: `$var` stays as written). `--strict` fails on a variable without a
//! default that the environment does not set.

use std::io::BufRead as _;
use std::process::ExitCode;

use clap::Args;

/// Substitute the values of environment variables.
#[derive(Debug, Args)]
pub struct EnvsubstArgs {
    /// Fail if a variable without a default value is declared in the input but is missing from
    /// the environment.
    #[arg(long)]
    strict: bool,
}

pub fn run(args: EnvsubstArgs) -> anyhow::Result<ExitCode> {
    let lookup = |name: &str| std::env::var(name).ok();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let substituted = ferroflux_envsubst::eval(&line, &lookup, args.strict)
            .map_err(|err| anyhow::anyhow!(flux_words(&err)))?;
        outln!("{substituted}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The error as flux's envsubst words it.
fn flux_words(err: &ferroflux_envsubst::Error) -> String {
    use ferroflux_envsubst::Error;
    match err {
        // Go's %q of the name.
        Error::VarNotSet { name } => format!("variable not set (strict mode): {name:?}"),
        Error::Syntax {
            reason: "missing closing }",
            ..
        } => "missing closing brace".to_string(),
        Error::Syntax {
            reason: "expected a variable name after ${",
            ..
        } => "unable to parse variable name".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_worded_as_flux_words_them() {
        let strict = ferroflux_envsubst::eval("a: ${NOPE}", &|_| None, true);
        let words = strict.err().map(|e| flux_words(&e));
        assert_eq!(
            words.as_deref(),
            Some("variable not set (strict mode): \"NOPE\"")
        );
        let open = ferroflux_envsubst::eval("a: ${NOPE", &|_| None, false);
        let words = open.err().map(|e| flux_words(&e));
        assert_eq!(words.as_deref(), Some("missing closing brace"));
    }
}
