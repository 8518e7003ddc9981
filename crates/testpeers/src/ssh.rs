//! Git over SSH: OpenSSH's `sshd` on a free port, key-only login for the current user.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::git::GitRepos;
use crate::process::{Proc, with_port_retries};
use crate::{PeerError, find_program, port_open};

/// A running `sshd` that serves the repositories of [`GitSsh::repos`] to one client key.
pub struct GitSsh {
    _proc: Proc,
    port: u16,
    user: String,
    repos: GitRepos,
    client_key: String,
    host_public_key: String,
    _dir: tempfile::TempDir,
}

impl GitSsh {
    /// Starts sshd with a fresh ed25519 host key and a fresh ECDSA client key (PEM).
    pub fn start() -> Result<GitSsh, PeerError> {
        let sshd = find_program("sshd", "openssh-server")?;
        let keygen = find_program("ssh-keygen", "openssh-client")?;
        let user = run(Command::new("id").arg("-un"))?.trim().to_string();
        let root = user == "root";
        if root {
            // sshd refuses to start as root without its privilege separation directory,
            // which the package normally gets from tmpfiles at boot.
            std::fs::create_dir_all("/run/sshd").map_err(PeerError::io("create /run/sshd"))?;
        }
        with_port_retries(|port| {
            let dir = tempfile::Builder::new()
                .prefix("ferroflux-git-ssh-")
                .tempdir()
                .map_err(PeerError::io("create a temporary directory"))?;
            let d = dir.path();
            let host_key = d.join("host_key");
            let client_key = d.join("client_key");
            run(Command::new(&keygen)
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&host_key))?;
            run(Command::new(&keygen)
                .args([
                    "-q", "-t", "ecdsa", "-b", "256", "-m", "PEM", "-N", "", "-f",
                ])
                .arg(&client_key))?;
            let client_pub = read(&d.join("client_key.pub"))?;
            std::fs::write(d.join("authorized_keys"), client_pub)
                .map_err(PeerError::io("write authorized_keys"))?;
            let config = format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\nUsePAM no\nAllowUsers {user}\nSetEnv PATH=/usr/local/bin:/usr/bin:/bin\n",
                host_key.display(),
                d.join("sshd.pid").display(),
                d.join("authorized_keys").display(),
            );
            let config_path = d.join("sshd_config");
            std::fs::write(&config_path, config).map_err(PeerError::io("write sshd_config"))?;
            let repos = GitRepos::new(&d.join("repos"))?;
            let mut cmd = Command::new(&sshd);
            cmd.args(["-D", "-e", "-f"]).arg(&config_path);
            let mut proc = Proc::spawn("sshd", cmd, &d.join("sshd.log"))?;
            proc.wait_ready(port, || port_open(port))?;
            Ok(GitSsh {
                _proc: proc,
                port,
                user: user.clone(),
                repos,
                client_key: read(&client_key)?,
                host_public_key: read(&d.join("host_key.pub"))?,
                _dir: dir,
            })
        })
    }

    /// The repositories served.
    pub fn repos(&self) -> &GitRepos {
        &self.repos
    }

    /// `ssh://USER@127.0.0.1:PORT/<abs path>/<name>.git`.
    pub fn url(&self, name: &str) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}/{name}.git",
            self.user,
            self.port,
            self.repos.root().display()
        )
    }

    /// The login user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The client's private key (PEM) that the server accepts.
    pub fn client_key(&self) -> &str {
        &self.client_key
    }

    /// A `known_hosts` line for this server (`[127.0.0.1]:PORT ssh-ed25519 ...`).
    pub fn known_hosts(&self) -> String {
        let mut fields = self.host_public_key.split_whitespace();
        let kind = fields.next().unwrap_or_default();
        let key = fields.next().unwrap_or_default();
        format!("[127.0.0.1]:{} {kind} {key}\n", self.port)
    }
}

fn run(cmd: &mut Command) -> Result<String, PeerError> {
    let out = cmd
        .output()
        .map_err(PeerError::io(format!("run {cmd:?}")))?;
    if !out.status.success() {
        return Err(PeerError::Io {
            what: format!("{cmd:?}"),
            source: std::io::Error::other(String::from_utf8_lossy(&out.stderr).into_owned()),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn read(path: &Path) -> Result<String, PeerError> {
    std::fs::read_to_string(path).map_err(PeerError::io(format!(
        "read {}",
        PathBuf::from(path).display()
    )))
}
