//! `ferroflux completion bash|zsh|fish|powershell`: the shell completion script, as `flux
//! completion SHELL` prints it for flux (generated from the clap definitions by clap_complete).

use std::process::ExitCode;

use clap::{Args, CommandFactory as _, Subcommand};
use clap_complete::Shell;

/// Generate the completion script for a shell.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    #[command(subcommand)]
    shell: Which,
}

#[derive(Debug, Clone, Copy, Subcommand)]
enum Which {
    /// Bash (`. <(ferroflux completion bash)`).
    Bash,
    /// Fish (`ferroflux completion fish | source`).
    Fish,
    /// PowerShell (`ferroflux completion powershell | Out-String | Invoke-Expression`).
    Powershell,
    /// Zsh (`. <(ferroflux completion zsh)`).
    Zsh,
}

pub fn run(args: CompletionArgs) -> anyhow::Result<ExitCode> {
    out!("{}", script(args.shell))?;
    Ok(ExitCode::SUCCESS)
}

/// The script, generated into memory so that a closed pipe is reported by `out!` rather than
/// a panic inside the generator.
fn script(which: Which) -> String {
    let shell = match which {
        Which::Bash => Shell::Bash,
        Which::Fish => Shell::Fish,
        Which::Powershell => Shell::PowerShell,
        Which::Zsh => Shell::Zsh,
    };
    let mut command = crate::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "ferroflux", &mut script);
    String::from_utf8_lossy(&script).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_complete_the_flux_commands() {
        let bash = script(Which::Bash);
        assert!(bash.contains("_ferroflux()"), "{bash}");
        for command in ["reconcile", "envsubst", "completion", "trace"] {
            assert!(bash.contains(command), "bash completion lacks {command}");
        }
        assert!(script(Which::Zsh).starts_with("#compdef ferroflux"));
        assert!(script(Which::Fish).contains("complete -c ferroflux"));
        assert!(script(Which::Powershell).contains("Register-ArgumentCompleter"));
    }
}
