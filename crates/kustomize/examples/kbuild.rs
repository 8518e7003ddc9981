//! Stand-in for `ferroflux kustomize build` with the same arguments, for running the
//! conformance corpus before the CLI is wired: `kbuild kustomize build [FLAGS] DIR`.

use std::path::PathBuf;
use std::process::ExitCode;

use ferroflux_kustomize::{LoadRestrictor, Options, Reorder, build, fs::DiskFs};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    let mut opts = Options::default();
    let mut dir: Option<PathBuf> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "kustomize" | "build" => {}
            "--reorder" => {
                opts.reorder = match args.next().as_deref() {
                    Some("none") => Reorder::None,
                    _ => Reorder::Legacy,
                }
            }
            "--load-restrictor" => {
                opts.load_restrictor = match args.next().as_deref() {
                    Some("LoadRestrictionsNone") => LoadRestrictor::None,
                    _ => LoadRestrictor::RootOnly,
                }
            }
            other => dir = Some(PathBuf::from(other)),
        }
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from("."));
    match build(&DiskFs, &dir, opts) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}
