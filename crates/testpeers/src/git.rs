//! Git servers: `git http-backend` behind lighttpd, and `git daemon`; plus helpers that make
//! bare repositories and commits with the `git` program.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::{Proc, with_port_retries};
use crate::{Credentials, PeerError, find_program, http_status, port_open};

/// A directory of bare repositories `<name>.git`, each with push enabled.
pub struct GitRepos {
    root: PathBuf,
}

impl GitRepos {
    /// Repositories under `root` (created when missing).
    pub fn new(root: &Path) -> Result<GitRepos, PeerError> {
        std::fs::create_dir_all(root).map_err(PeerError::io("create the repositories dir"))?;
        Ok(GitRepos { root: root.into() })
    }

    /// The directory holding the bare repositories.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the empty bare repository `<name>.git` (HEAD -> main, push allowed over HTTP
    /// and git daemon) and returns its path.
    pub fn create(&self, name: &str) -> Result<PathBuf, PeerError> {
        let path = self.root.join(format!("{name}.git"));
        git(
            &self.root,
            &["init", "-q", "--bare", "-b", "main", &path_str(&path)],
        )?;
        git(&path, &["config", "http.receivepack", "true"])?;
        git(&path, &["config", "daemon.receivepack", "true"])?;
        Ok(path)
    }
}

/// `git http-backend` served by lighttpd as CGI, push enabled, optionally with basic auth.
pub struct GitHttp {
    _proc: Proc,
    port: u16,
    repos: GitRepos,
    credentials: Option<Credentials>,
    _dir: tempfile::TempDir,
}

impl GitHttp {
    /// Starts lighttpd on a free port serving the repositories of [`GitHttp::repos`].
    pub fn start(credentials: Option<Credentials>) -> Result<GitHttp, PeerError> {
        let lighttpd = find_program("lighttpd", "lighttpd")?;
        let backend = git_program("git-http-backend")?;
        with_port_retries(|port| {
            let dir = tempdir("ferroflux-git-http-")?;
            let repos = GitRepos::new(&dir.path().join("repos"))?;
            let www = dir.path().join("www");
            std::fs::create_dir_all(&www).map_err(PeerError::io("create the document root"))?;
            let auth = credentials.is_some();
            let mut conf = String::new();
            conf.push_str(if auth {
                "server.modules = (\"mod_alias\", \"mod_setenv\", \"mod_auth\", \"mod_authn_file\", \"mod_cgi\")\n"
            } else {
                "server.modules = (\"mod_alias\", \"mod_setenv\", \"mod_cgi\")\n"
            });
            conf.push_str(&format!(
                "server.bind = \"127.0.0.1\"\nserver.port = {port}\nserver.document-root = \"{}\"\nserver.errorlog = \"{}\"\nserver.max-request-size = 0\n",
                www.display(),
                dir.path().join("error.log").display()
            ));
            // Every path goes to git-http-backend, which takes the rest as PATH_INFO.
            conf.push_str(&format!(
                "alias.url = ( \"/\" => \"{}/\" )\ncgi.assign = ( \"\" => \"\" )\n",
                backend.display()
            ));
            conf.push_str(&format!(
                "setenv.add-environment = ( \"GIT_PROJECT_ROOT\" => \"{}\", \"GIT_HTTP_EXPORT_ALL\" => \"1\" )\n",
                repos.root().display()
            ));
            if let Some(creds) = &credentials {
                let htpasswd = dir.path().join("htpasswd");
                std::fs::write(&htpasswd, creds.htpasswd_line()?)
                    .map_err(PeerError::io("write htpasswd"))?;
                conf.push_str(&format!(
                    "auth.backend = \"htpasswd\"\nauth.backend.htpasswd.userfile = \"{}\"\nauth.require = ( \"\" => ( \"method\" => \"basic\", \"realm\" => \"ferroflux-test\", \"require\" => \"valid-user\" ) )\n",
                    htpasswd.display()
                ));
            }
            let conf_path = dir.path().join("lighttpd.conf");
            std::fs::write(&conf_path, conf).map_err(PeerError::io("write lighttpd.conf"))?;
            let mut cmd = Command::new(&lighttpd);
            cmd.arg("-D").arg("-f").arg(&conf_path);
            let mut proc = Proc::spawn("lighttpd", cmd, &dir.path().join("lighttpd.log"))?;
            // Any HTTP answer means lighttpd is serving; the repository may not exist yet.
            proc.wait_ready(port, || http_status(port, "/").is_some())?;
            Ok(GitHttp {
                _proc: proc,
                port,
                repos,
                credentials: credentials.clone(),
                _dir: dir,
            })
        })
    }

    /// The repositories served.
    pub fn repos(&self) -> &GitRepos {
        &self.repos
    }

    /// `http://127.0.0.1:PORT/<name>.git` (no credentials in it).
    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}.git", self.port)
    }

    /// The credentials required, if any.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }
}

/// `git daemon` with receive-pack enabled, exporting every repository of its root.
pub struct GitDaemon {
    _proc: Proc,
    port: u16,
    repos: GitRepos,
    _dir: tempfile::TempDir,
}

impl GitDaemon {
    /// Starts `git daemon` on a free port.
    pub fn start() -> Result<GitDaemon, PeerError> {
        let daemon = git_program("git-daemon")?;
        with_port_retries(|port| {
            let dir = tempdir("ferroflux-git-daemon-")?;
            let repos = GitRepos::new(&dir.path().join("repos"))?;
            let mut cmd = Command::new(&daemon);
            cmd.arg("--listen=127.0.0.1")
                .arg(format!("--port={port}"))
                .args([
                    "--reuseaddr",
                    "--export-all",
                    "--enable=receive-pack",
                    "--informative-errors",
                ])
                .arg(format!("--base-path={}", repos.root().display()))
                .arg(repos.root());
            let mut proc = Proc::spawn("git-daemon", cmd, &dir.path().join("daemon.log"))?;
            proc.wait_ready(port, || port_open(port))?;
            Ok(GitDaemon {
                _proc: proc,
                port,
                repos,
                _dir: dir,
            })
        })
    }

    /// The repositories served.
    pub fn repos(&self) -> &GitRepos {
        &self.repos
    }

    /// `git://127.0.0.1:PORT/<name>.git`.
    pub fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}.git", self.port)
    }
}

/// A scratch working tree whose `origin` is a bare repository on disk, to prepare commits,
/// branches and tags for a test.
pub struct GitWork {
    dir: tempfile::TempDir,
}

impl GitWork {
    /// An empty working tree on branch `main` with `origin` = `bare`.
    pub fn new(bare: &Path) -> Result<GitWork, PeerError> {
        let dir = tempdir("ferroflux-git-work-")?;
        let work = GitWork { dir };
        work.git(&["init", "-q", "-b", "main"])?;
        work.git(&["remote", "add", "origin", &path_str(bare)])?;
        Ok(work)
    }

    /// The working tree's directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` to `rel` (parents created).
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> Result<(), PeerError> {
        let path = self.dir.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(PeerError::io("create parent dirs"))?;
        }
        std::fs::write(&path, contents).map_err(PeerError::io(format!("write {rel}")))
    }

    /// Stages everything and commits; returns the new commit's hash.
    pub fn commit(&self, message: &str) -> Result<String, PeerError> {
        self.git(&["add", "-A"])?;
        self.git(&["commit", "-q", "--allow-empty", "-m", message])?;
        self.head()
    }

    /// The hash of HEAD.
    pub fn head(&self) -> Result<String, PeerError> {
        Ok(self.git(&["rev-parse", "HEAD"])?.trim().to_string())
    }

    /// Creates and switches to a new branch at HEAD.
    pub fn branch(&self, name: &str) -> Result<(), PeerError> {
        self.git(&["checkout", "-q", "-b", name]).map(drop)
    }

    /// Switches to an existing branch.
    pub fn checkout(&self, name: &str) -> Result<(), PeerError> {
        self.git(&["checkout", "-q", name]).map(drop)
    }

    /// Creates an annotated tag at HEAD.
    pub fn tag(&self, name: &str) -> Result<(), PeerError> {
        self.git(&["tag", "-a", name, "-m", name]).map(drop)
    }

    /// Adds the repository at `url` (absolute, or relative to `origin` such as `../lib.git`)
    /// as a submodule at `path`; commit afterwards.
    pub fn submodule_add(&self, url: &str, path: &str) -> Result<(), PeerError> {
        self.git(&["submodule", "add", "-q", url, path]).map(drop)
    }

    /// Pushes every branch and tag to `origin`.
    pub fn push(&self) -> Result<(), PeerError> {
        self.git(&["push", "-q", "origin", "--all"])?;
        self.git(&["push", "-q", "origin", "--tags"]).map(drop)
    }

    /// Runs `git` in the working tree and returns its stdout.
    pub fn git(&self, args: &[&str]) -> Result<String, PeerError> {
        git(self.dir.path(), args)
    }
}

fn git(dir: &Path, args: &[&str]) -> Result<String, PeerError> {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=ferroflux-test",
            "-c",
            "user.email=test@example.invalid",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "tag.gpgsign=false",
            // Test repositories reference each other by path (submodules).
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => PeerError::Missing {
                program: "git".into(),
                package: "git".into(),
            },
            _ => PeerError::Io {
                what: "run git".into(),
                source: e,
            },
        })?;
    if !out.status.success() {
        return Err(PeerError::Git {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One of git's helper programs (`git-daemon`, `git-http-backend`), from `git --exec-path`.
fn git_program(name: &str) -> Result<PathBuf, PeerError> {
    let dir = std::env::temp_dir();
    let program = PathBuf::from(git(&dir, &["--exec-path"])?.trim()).join(name);
    if !program.is_file() {
        return Err(PeerError::Missing {
            program: program.display().to_string(),
            package: "git".into(),
        });
    }
    Ok(program)
}

fn tempdir(prefix: &str) -> Result<tempfile::TempDir, PeerError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(PeerError::io("create a temporary directory"))
}

fn path_str(path: &Path) -> String {
    path.display().to_string()
}
