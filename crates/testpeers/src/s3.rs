//! moto's S3 server (Python), optionally checking SigV4 signatures.

use std::process::Command;

use crate::process::{Proc, with_port_retries};
use crate::{PeerError, http_status};

/// A running `python3 -m moto.server` on 127.0.0.1.
pub struct S3Server {
    _proc: Proc,
    port: u16,
    keys: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

const MISSING: &str = "python3 with moto (pip install 'moto[s3]>=5,<6' flask flask-cors boto3)";

impl S3Server {
    /// Starts moto's server. With `check_signatures`, moto verifies SigV4 on every request
    /// and an IAM access key is made at start ([`S3Server::access_key`]); without, any key
    /// is accepted.
    pub fn start(check_signatures: bool) -> Result<S3Server, PeerError> {
        let probe = Command::new("python3")
            .args(["-c", "import moto.server, moto.s3, flask_cors, boto3"])
            .output();
        if !probe.is_ok_and(|o| o.status.success()) {
            return Err(PeerError::Missing {
                program: "moto.server".into(),
                package: MISSING.into(),
            });
        }
        with_port_retries(|port| {
            let dir = tempfile::Builder::new()
                .prefix("ferroflux-s3-")
                .tempdir()
                .map_err(PeerError::io("create a temporary directory"))?;
            let mut cmd = Command::new("python3");
            cmd.args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
                .arg(port.to_string())
                .current_dir(dir.path());
            if check_signatures {
                // The first 3 requests skip auth: they make the IAM user and its key.
                cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", "3");
            }
            let mut proc = Proc::spawn("moto", cmd, &dir.path().join("moto.log"))?;
            proc.wait_ready(port, || {
                http_status(port, "/moto-api/data.json") == Some(200)
            })?;
            let keys = if check_signatures {
                Some(make_access_key(port)?)
            } else {
                None
            };
            Ok(S3Server {
                _proc: proc,
                port,
                keys,
                _dir: dir,
            })
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The access key id and secret that signed requests must use (signature-checking
    /// servers only).
    pub fn access_key(&self) -> Option<(&str, &str)> {
        self.keys.as_ref().map(|(a, s)| (a.as_str(), s.as_str()))
    }

    /// Creates `bucket` and puts `objects` (key, body) with boto3, signed with the server's
    /// key when it checks signatures.
    pub fn put_objects(&self, bucket: &str, objects: &[(&str, &[u8])]) -> Result<(), PeerError> {
        let (id, secret) = self.access_key().unwrap_or(("test", "test"));
        let mut script = format!(
            "import boto3, botocore.config\ns3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='{id}', aws_secret_access_key='{secret}', config=botocore.config.Config(s3={{'addressing_style': 'path'}}))\ntry:\n    s3.create_bucket(Bucket='{bucket}')\nexcept s3.exceptions.BucketAlreadyOwnedByYou:\n    pass\n",
            self.endpoint()
        );
        for (key, body) in objects {
            let hex: String = body.iter().map(|b| format!("{b:02x}")).collect();
            script.push_str(&format!(
                "s3.put_object(Bucket='{bucket}', Key={key:?}, Body=bytes.fromhex('{hex}'))\n"
            ));
        }
        python(&script).map(drop)
    }
}

fn make_access_key(port: u16) -> Result<(String, String), PeerError> {
    let script = format!(
        "import json, boto3\niam = boto3.client('iam', endpoint_url='http://127.0.0.1:{port}', region_name='us-east-1', aws_access_key_id='setup', aws_secret_access_key='setup')\niam.create_user(UserName='ferroflux')\niam.put_user_policy(UserName='ferroflux', PolicyName='allow-all', PolicyDocument=json.dumps({{'Version': '2012-10-17', 'Statement': [{{'Effect': 'Allow', 'Action': '*', 'Resource': '*'}}]}}))\nkey = iam.create_access_key(UserName='ferroflux')['AccessKey']\nprint(key['AccessKeyId'], key['SecretAccessKey'])\n"
    );
    let out = python(&script)?;
    let mut parts = out.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(id), Some(secret)) => Ok((id.to_string(), secret.to_string())),
        _ => Err(PeerError::Io {
            what: "read the IAM access key made for moto".into(),
            source: std::io::Error::other(out),
        }),
    }
}

fn python(script: &str) -> Result<String, PeerError> {
    let out = Command::new("python3")
        .args(["-c", script])
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .output()
        .map_err(PeerError::io("run python3"))?;
    if !out.status.success() {
        return Err(PeerError::Io {
            what: "python3 (boto3) against moto".into(),
            source: std::io::Error::other(String::from_utf8_lossy(&out.stderr).into_owned()),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
