//! `ferroflux create alert|alert-provider|receiver|helmrelease|source|kustomization|image` and
//! `ferroflux get` of those kinds: `--export` prints what the real flux CLI prints (`scripts/peers.sh build flux`), byte
//! for byte and refusal for refusal; without `--export` the objects are applied to
//! `ferroflux apiserver` and read back as exported; `get` shows them in flux's columns.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

mod common;

use common::process::{ferroflux, shown};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Files (`--values`, `--ca-crt-file`) the shapes name as `@NAME`.
const VALUES: &[(&str, &str)] = &[
    (
        "v1.yaml",
        "replicaCount: 2\nimage:\n  tag: \"1.0\"\n  pull: null\nlist: [a, 1, true, 1.5]\n",
    ),
    ("v2.yaml", "image:\n  repo: x\nz: 10000000000\n"),
    (
        "v3.yaml",
        "small: 0.0000001\ntenth: 0.1\nbig: 123456789012345678\nhuge: 1e22\nneg: -3\n\
         nul: ~\nnulStr: \"null\"\nmulti: |\n  line one\n  line two\n\"key with: colon\": v\n\
         unicode: \"héllo ☃\"\nempty: \"\"\nemptyMap: {}\nemptyList: []\n\
         image:\n  tag: \"2.0\"\n  nested: {a: 1}\ndate: 2024-01-01\nhex: 0x1F\ntime: \"12:30\"\n",
    ),
    ("list.yaml", "- a\n- b\n"),
    ("empty.yaml", ""),
    (
        "ca.crt",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    ),
    // A self-signed test pair (P-256, not a secret of anything), and a key of another pair.
    (
        "tls.crt",
        "-----BEGIN CERTIFICATE-----\n\
         MIIBiDCCAS+gAwIBAgIUEeWGomhPjtzkC5aiapFVQ0o5QF0wCgYIKoZIzj0EAwIw\n\
         GTEXMBUGA1UEAwwOZmVycm9mbHV4LXRlc3QwIBcNMjYxMjA3MjMyODQ3WhgPMjEy\n\
         NjExMTMyMzI4NDdaMBkxFzAVBgNVBAMMDmZlcnJvZmx1eC10ZXN0MFkwEwYHKoZI\n\
         zj0CAQYIKoZIzj0DAQcDQgAEhaehjn6eHkAYjE97+yXg6jLW218AeMhKPXwTkrWu\n\
         oHiMYhpBA+nTHm6KI8qwrLlEM/I/eLu0LOmpsA9J/Khc26NTMFEwHQYDVR0OBBYE\n\
         FH3WT8hgjUTD+2ivJWqWwYHGAfWfMB8GA1UdIwQYMBaAFH3WT8hgjUTD+2ivJWqW\n\
         wYHGAfWfMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgcDxj7Gtc\n\
         7T8ethKPNYWShLHAbTy+Pjh43b+2JPo9yl4CIGp7EO+NVkzxM5IwLOgsQVCN0Bj/\n\
         HsIXyKwbfEoHLBJA\n\
         -----END CERTIFICATE-----\n",
    ),
    (
        "tls.key",
        "-----BEGIN PRIVATE KEY-----\n\
         MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg8G6MpAy6/aRKAytd\n\
         K2vViOxoDE+PZnovZBBGOqW3hf2hRANCAASFp6GOfp4eQBiMT3v7JeDqMtbbXwB4\n\
         yEo9fBOSta6geIxiGkED6dMeboojyrCsuUQz8j94u7Qs6amwD0n8qFzb\n\
         -----END PRIVATE KEY-----\n",
    ),
    (
        "other.key",
        "-----BEGIN PRIVATE KEY-----\n\
         MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgX7GSFNqGiuoiOzyh\n\
         qcwvlEOJe+ows72j9PV/v5Dha9+hRANCAAS6Kw6+rkTFCf2AGJo1XbcJ6QlUqjoc\n\
         US0gKERCmM3r6mLDS10h8G+fAerd3gRAnEHhScoH8PIL0F+jR62Kl17R\n\
         -----END PRIVATE KEY-----\n",
    ),
];

/// The command lines compared with flux (after `create`; `@v1.yaml` is a file of [`VALUES`]).
const SHAPES: &[&[&str]] = &[
    &[
        "alert",
        "my-alert",
        "--provider-ref=slack",
        "--event-source=Kustomization/podinfo,GitRepository/podinfo",
        "--event-severity=info",
    ],
    &[
        "alert",
        "my-alert",
        "--provider-ref=slack",
        "--event-source=Kustomization/*",
        "-n",
        "apps",
        "--label=a=b",
    ],
    &[
        "-n",
        "apps",
        "alert",
        "a1",
        "--provider-ref=p",
        "--event-source=Kustomization/x.ns",
    ],
    &[
        "alert",
        "a1",
        "--provider-ref=p",
        "--event-source=Kustomization/",
        "--event-source=kustomization/y",
    ],
    &[
        "alert",
        "a1",
        "--provider-ref=p",
        "--event-source=Kustomization/*.apps",
        "--event-severity=error",
        "--label=app.kubernetes.io/name=x",
    ],
    &[
        "alert-provider",
        "slack",
        "--type=slack",
        "--channel=general",
        "--address=https://hooks.slack.com/x",
        "--secret-ref=webhook-url",
        "--username=bot",
    ],
    &["alert-provider", "slack", "--type=slack"],
    &[
        "alert-provider",
        "gh",
        "--type=github",
        "--address=https://github.com/org/repo",
        "--secret-ref=tok",
        "-n",
        "apps",
        "--label=team=a,env=b",
    ],
    &[
        "alert-provider",
        "p1",
        "--type=generic",
        "--address=http://x:8080/a b?c=d#e",
    ],
    &[
        "receiver",
        "github-receiver",
        "--type=github",
        "--event=ping",
        "--event=push",
        "--secret-ref=webhook-token",
        "--resource=GitRepository/webapp",
        "--resource=HelmRepository/webapp",
    ],
    &[
        "receiver",
        "r1",
        "--type=github",
        "--secret-ref=s",
        "--resource=GitRepository/x.ns",
        "--event=a,b",
    ],
    &[
        "receiver",
        "r1",
        "--type=generic-hmac",
        "--secret-ref=s",
        "--resource=Kustomization/apps,GitRepository/flux-system",
    ],
    &[
        "receiver",
        "r1",
        "--type=cdevents",
        "--secret-ref=s",
        "--resource=Kustomization/*",
        "--event=a: b",
    ],
    &[
        "helmrelease",
        "podinfo",
        "--source=HelmRepository/podinfo",
        "--chart=podinfo",
        "--chart-version=>4.0.0",
        "--target-namespace=default",
    ],
    &[
        "hr",
        "podinfo",
        "--source=HelmRepository/podinfo.other",
        "--chart=podinfo",
        "--values=@v1.yaml,@v2.yaml",
        "--interval=10m",
        "-n",
        "apps",
    ],
    &[
        "hr",
        "podinfo",
        "--source=HelmRepository/bar",
        "--chart=c",
        "--values=@v3.yaml",
        "--values=@v1.yaml",
        "--values=@empty.yaml",
    ],
    &["hr", "podinfo", "--chart=podinfo"],
    &[
        "hr",
        "podinfo",
        "--chart=c",
        "--source=helmrepository/bar",
        "--target-namespace=t",
        "--storage-namespace=s",
    ],
    &[
        "hr",
        "pod",
        "--chart=c",
        "--source=GitRepository/bar",
        "--chart-version=1.0",
        "--interval=90s",
        "--chart-interval=5m",
        "--release-name=r",
        "--service-account=sa",
        "--create-target-namespace",
    ],
    &[
        "hr",
        "podinfo",
        "--chart=c",
        "--source=Bucket/bar",
        "--interval=0s",
        "--label=x=y",
        "--reconcile-strategy=Revision",
    ],
    &[
        "hr",
        "p1",
        "--chart=c",
        "--source=HelmRepository/r",
        "--depends-on=a,ns/b,x/y/z,/q,r/",
        "--values-from=Secret/s,configmap/c",
    ],
    // Refusals: the same message, the same exit.
    &["alert"],
    &["alert", "a1"],
    &["alert", "a1", "--provider-ref=p"],
    &["alert", "a1", "--provider-ref=p", "--event-source=foo"],
    &[
        "alert",
        "x",
        "--provider-ref=p",
        "--event-source=Kustomization/a",
    ],
    &[
        "alert",
        "a1",
        "--provider-ref=p",
        "--event-source=Kustomization/a",
        "--label=bad",
    ],
    &["alert-provider", "p1"],
    &["receiver", "r1"],
    &["receiver", "r1", "--type=github"],
    &["receiver", "r1", "--type=github", "--secret-ref=s"],
    &[
        "receiver",
        "r1",
        "--type=github",
        "--secret-ref=s",
        "--resource=x",
    ],
    &["receiver", "r1", "--type=foo"],
    &["hr", "podinfo", "--chart=c", "--source=Foo/bar"],
    &["hr", "podinfo", "--chart=c", "--source=bar"],
    &["hr", "podinfo", "--chart=c", "--source=HelmRepository/"],
    &["hr", "pod", "--source=GitRepository/bar"],
    &[
        "hr",
        "pod",
        "--chart=c",
        "--source=HelmRepository/bar",
        "--values=@missing.yaml",
    ],
    &[
        "hr",
        "pod",
        "--chart=c",
        "--source=HelmRepository/bar",
        "--values=@list.yaml",
    ],
    &[
        "hr",
        "pod",
        "--chart=c",
        "--source=HelmRepository/bar",
        "--reconcile-strategy=Foo",
    ],
    &[
        "hr",
        "podinfo",
        "--chart=c",
        "--source=HelmRepository/bar",
        "--interval=soon",
    ],
    // Sources, Kustomizations and image automation, refusals among them.
    &[
        "source",
        "git",
        "podinfo",
        "--url=https://github.com/x/y",
        "--branch=main",
    ],
    &[
        "source",
        "git",
        "podinfo",
        "--url=https://github.com/x/y",
        "--commit=abc",
        "--branch=main",
        "--ignore-paths=a,b",
        "--ignore-paths=c",
        "--recurse-submodules",
        "--fetch-timeout=90s",
        "--sparse-checkout-paths=x",
        "--provider=azure",
        "--label=a=b",
    ],
    &[
        "source",
        "git",
        "podinfo",
        "--url=ssh://git@github.com/x/y",
        "--tag=v1",
        "--tag-semver=>1.0",
        "-n",
        "apps",
        "--interval=10m",
        "--secret-ref=s",
        "--proxy-secret-ref=p",
    ],
    &[
        "source",
        "git",
        "podinfo",
        "--url=https://github.com/x/y",
        "--ref-name=refs/heads/x",
        "--tag=v1",
    ],
    &[
        "source",
        "git",
        "podinfo",
        "--url=https://github.com/x/y",
        "--fetch-timeout=0s",
        "--tag=v1",
    ],
    &["source", "git", "podinfo", "--url=https://github.com/x/y"],
    &["source", "git", "podinfo", "--branch=main"],
    &[
        "source",
        "git",
        "podinfo",
        "--url=github.com/x/y",
        "--branch=main",
    ],
    &[
        "source",
        "git",
        "podinfo",
        "--url=ftp://x/y",
        "--branch=main",
    ],
    &["source", "git", "podinfo", "--url=:x", "--branch=main"],
    &[
        "source",
        "git",
        "podinfo",
        "--url=https://x",
        "--branch=main",
        "--provider=foo",
    ],
    &[
        "source",
        "git",
        "podinfo",
        "--url=https://x",
        "--branch=main",
        "--fetch-timeout=soon",
    ],
    &["source", "git", "p", "--url=https://x", "--branch=main"],
    &["source", "git", "--url=https://x", "--branch=main"],
    &[
        "source",
        "helm",
        "podinfo",
        "--url=https://stefanprodan.github.io/podinfo",
    ],
    &[
        "source",
        "helm",
        "podinfo",
        "--url=oci://ghcr.io/x",
        "--secret-ref=s",
        "--pass-credentials",
        "--fetch-timeout=1m",
        "--oci-provider=aws",
    ],
    &[
        "source",
        "helm",
        "podinfo",
        "--url=https://x.io",
        "--pass-credentials",
        "--oci-provider=aws",
        "-n",
        "apps",
        "--interval=5m",
    ],
    &["source", "helm", "podinfo", "--url=ftp://x.io"],
    &["source", "helm", "podinfo", "--url=https:///x"],
    &["source", "helm", "podinfo"],
    &[
        "source",
        "oci",
        "podinfo",
        "--url=oci://ghcr.io/x",
        "--tag=1",
        "--tag-semver=2",
        "--digest=sha256:a",
        "--ignore-paths=a,b",
        "--insecure",
        "--secret-ref=s",
        "--service-account=sa",
        "--cert-ref=c",
    ],
    &[
        "source",
        "oci",
        "podinfo",
        "--url=oci://ghcr.io/x",
        "--tag=latest",
        "--provider=aws",
        "--layer-selector=application/vnd.cncf.flux.content.v1.tar+gzip:extract",
        "--proxy-secret-ref=p",
        "--fetch-timeout=2m",
    ],
    &[
        "source",
        "oci",
        "podinfo",
        "--url=oci://ghcr.io/x",
        "--tag=latest",
        "--layer-selector=a:move",
    ],
    &[
        "source",
        "oci",
        "podinfo",
        "--url=oci://ghcr.io/x",
        "--tag=latest",
        "--layer-selector=a",
    ],
    &["source", "oci", "podinfo", "--url=oci://ghcr.io/x"],
    &[
        "source",
        "oci",
        "podinfo",
        "--url=oci://ghcr.io/x",
        "--tag=1",
        "--provider=foo",
    ],
    &["source", "oci", "podinfo"],
    &[
        "source",
        "bucket",
        "podinfo",
        "--bucket-name=x",
        "--endpoint=minio:9000",
        "--region=r",
        "--insecure",
        "--ignore-paths=a",
    ],
    &[
        "source",
        "bucket",
        "podinfo",
        "--bucket-name=x",
        "--endpoint=e",
        "--provider=aws",
        "--secret-ref=s",
        "--proxy-secret-ref=p",
        "--fetch-timeout=30s",
        "--label=x=y",
    ],
    &["source", "bucket", "podinfo", "--endpoint=e"],
    &["source", "bucket", "podinfo", "--bucket-name=x"],
    &[
        "source",
        "bucket",
        "podinfo",
        "--bucket-name=x",
        "--endpoint=e",
        "--provider=foo",
    ],
    &[
        "source",
        "bucket",
        "podinfo",
        "--bucket-name=x",
        "--endpoint=e",
        "--provider=",
    ],
    &[
        "source",
        "git",
        "podinfo",
        "--url=https://x",
        "--branch=main",
        "--provider=",
    ],
    &[
        "source",
        "oci",
        "podinfo",
        "--url=oci://ghcr.io/x",
        "--tag=1",
        "--verify-provider=cosign",
    ],
    &[
        "source",
        "oci",
        "podinfo",
        "--url=oci://ghcr.io/x",
        "--tag=1",
        "--verify-provider=cosign",
        "--verify-secret-ref=k",
        "--verify-issuer=i",
    ],
    &[
        "source",
        "oci",
        "podinfo",
        "--url=oci://ghcr.io/x",
        "--tag=1",
        "--verify-provider=cosign",
        "--verify-subject=s",
    ],
    &[
        "source",
        "oci",
        "podinfo",
        "--url=oci://ghcr.io/x",
        "--tag=1",
        "--verify-provider=notation",
    ],
    &[
        "source",
        "oci",
        "podinfo",
        "--url=oci://ghcr.io/x",
        "--tag=1",
        "--verify-secret-ref=k",
    ],
    &[
        "source",
        "oci",
        "podinfo",
        "--url=oci://ghcr.io/x",
        "--tag=1",
        "--verify-issuer=k",
    ],
    &[
        "source",
        "git",
        "podinfo",
        "--url=https://x",
        "--branch=main",
        "--provider=github",
    ],
    &[
        "ks",
        "apps",
        "--source=GitRepository/flux-system.ns",
        "--path=./apps/../x",
        "--prune",
        "--wait",
        "--health-check=Deployment/a.b",
        "--depends-on=a,ns/b",
        "--target-namespace=t",
        "--service-account=sa",
        "--decryption-provider=sops",
        "--decryption-secret=k",
        "--interval=10m",
        "--retry-interval=2m",
        "--kubeconfig-secret-ref=kc",
    ],
    &["ks", "apps", "--source=x", "--path=apps"],
    &["kustomization", "apps", "--source=x"],
    &["ks", "apps", "--source=x", "--path=/abs/"],
    &["ks", "apps", "--source=x", "--path=../../up"],
    &["ks", "apps", "--source=x", "--path="],
    &["ks", "apps", "--source=x", "--path= a b "],
    &[
        "kustomization",
        "apps",
        "--source=OCIRepository/x",
        "--health-check=HelmRelease/a.b,Deployment/c.d",
        "--health-check-timeout=5m",
        "-n",
        "apps",
        "--label=a=b",
    ],
    &[
        "kustomization",
        "apps",
        "--source=bucket/x.y",
        "--health-check=StatefulSet/a.b",
        "--depends-on=,x/y/z,/q,r/",
        "--retry-interval=0s",
    ],
    &["ks", "apps", "--source=x", "--health-check=Foo/a.b"],
    &["ks", "apps", "--source=x", "--health-check=Deployment/a"],
    &[
        "ks",
        "apps",
        "--source=x",
        "--health-check=Deployment/a.b.c",
    ],
    &["ks", "apps", "--source=x", "--health-check=a/b/c"],
    &["ks", "apps", "--source=x", "--health-check=a"],
    &["ks", "apps", "--source=x", "--decryption-provider=age"],
    &["ks", "apps", "--source=x", "--decryption-provider="],
    &["ks", "apps", "--source=x", "--retry-interval=soon"],
    &[
        "ks",
        "apps",
        "--source=x",
        "--health-check-timeout=1h30m",
        "--wait",
    ],
    &["ks", "apps"],
    &["ks", "apps", "--source="],
    &["ks", "apps", "--source=GitRepository"],
    &["ks", "apps", "--source=GitRepository/"],
    &["ks", "apps", "--source=HelmRepository/x"],
    &["ks", "apps", "--source=a/b/c"],
    &["ks", "a", "--source=x"],
    &["ks", "--source=x"],
    &["ks", "apps", "--source=x", "--retry-interval=-1m"],
    &[
        "ks",
        "apps",
        "--source=x",
        "--interval=0s",
        "--path=./a/./b//c/",
    ],
    &["ks", "apps", "--source=x", "--depends-on="],
    &[
        "image",
        "repository",
        "podinfo",
        "--image=ghcr.io/stefanprodan/podinfo",
        "--scan-timeout=30s",
        "--secret-ref=s",
        "--cert-ref=c",
    ],
    &[
        "image",
        "repository",
        "podinfo",
        "--image=alpine",
        "--interval=5m",
        "-n",
        "apps",
        "--label=a=b",
    ],
    &["image", "repository", "podinfo", "--image=alpine:3"],
    &["image", "repository", "podinfo", "--image=Alpine"],
    &["image", "repository", "podinfo", "--image=a"],
    &["image", "repository", "podinfo", "--image=user@host.io/x"],
    &[
        "image",
        "repository",
        "podinfo",
        "--image=localhost:5000/x/y",
    ],
    &["image", "repository", "podinfo"],
    &[
        "image",
        "repository",
        "podinfo",
        "--image=x/y",
        "--scan-timeout=soon",
    ],
    &[
        "image",
        "policy",
        "podinfo",
        "--image-ref=podinfo",
        "--select-semver=5.0.x",
        "--select-alpha=asc",
    ],
    &[
        "image",
        "policy",
        "podinfo",
        "--image-ref=podinfo",
        "--select-semver=5.0.x",
    ],
    &[
        "image",
        "policy",
        "podinfo",
        "--image-ref=podinfo",
        "--select-numeric=asc",
        "--filter-regex=^main-[a-f0-9]+-(?P<ts>[0-9]+)",
        "--filter-extract=$ts",
        "--reflect-digest=Always",
        "--interval=5m",
    ],
    &[
        "image",
        "policy",
        "podinfo",
        "--image-ref=podinfo",
        "--select-alpha=asc",
        "--interval=5m",
    ],
    &[
        "image",
        "policy",
        "podinfo",
        "--image-ref=podinfo",
        "--select-alpha=desc",
        "--interval=0s",
        "--reflect-digest=Never",
    ],
    &[
        "image",
        "policy",
        "podinfo",
        "--image-ref=podinfo",
        "--select-alpha=up",
    ],
    &[
        "image",
        "policy",
        "podinfo",
        "--image-ref=podinfo",
        "--select-numeric=up",
    ],
    &[
        "image",
        "policy",
        "podinfo",
        "--image-ref=podinfo",
        "--select-numeric=asc",
        "--select-alpha=asc",
    ],
    &[
        "image",
        "policy",
        "podinfo",
        "--image-ref=podinfo",
        "--select-numeric=asc",
        "--select-semver=1.x",
    ],
    &["image", "policy", "podinfo", "--image-ref=podinfo"],
    &["image", "policy", "podinfo", "--select-semver=1.x"],
    &[
        "image",
        "policy",
        "podinfo",
        "--image-ref=p",
        "--select-semver=1.x",
        "--filter-regex=(",
    ],
    &[
        "image",
        "policy",
        "podinfo",
        "--image-ref=p",
        "--select-semver=1.x",
        "--filter-extract=$1",
    ],
    &[
        "image",
        "policy",
        "podinfo",
        "--image-ref=p",
        "--select-semver=1.x",
        "--filter-regex=(?P<a>x)(y)",
        "--filter-extract=$b",
    ],
    &[
        "image",
        "policy",
        "podinfo",
        "--image-ref=p",
        "--select-semver=1.x",
        "--filter-regex=(?P<a>x)(y)",
        "--filter-extract=${a}-$2-$$",
    ],
    &[
        "image",
        "policy",
        "podinfo",
        "--image-ref=p",
        "--select-semver=1.x",
        "--filter-regex=(?P<a>x)",
        "--filter-extract=${a",
    ],
    &[
        "image",
        "policy",
        "podinfo",
        "--image-ref=p",
        "--select-semver=1.x",
        "--reflect-digest=Sometimes",
    ],
    &[
        "image",
        "update",
        "a1",
        "--git-repo-ref=flux-system",
        "--checkout-branch=main",
        "--author-name=bot",
        "--author-email=b@x",
        "--push-branch=auto",
        "--git-repo-path=./clusters",
        "--commit-template={{range .Changed.Changes}}x{{end}}",
        "--signing-key-secret=k",
        "--git-repo-namespace=ns",
    ],
    &[
        "image",
        "update",
        "a1",
        "--git-repo-ref=flux-system",
        "--checkout-branch=main",
        "--author-name=bot",
        "--author-email=b@x",
        "--signing-key-secret=k",
        "--signing-key-type=ssh",
        "--interval=30m",
    ],
    &[
        "image",
        "update",
        "a1",
        "--git-repo-ref=flux-system",
        "--checkout-branch=main",
        "--author-name=bot",
        "--author-email=b@x",
        "--signing-key-type=ssh",
    ],
    &[
        "image",
        "update",
        "a1",
        "--git-repo-ref=flux-system",
        "--checkout-branch=main",
        "--author-name=bot",
        "--author-email=b@x",
        "--signing-key-secret=k",
        "--signing-key-type=x509",
    ],
    &[
        "image",
        "update",
        "a1",
        "--git-repo-ref=flux-system",
        "--checkout-branch=main",
        "--author-name=bot",
    ],
    &[
        "image",
        "update",
        "a1",
        "--git-repo-ref=flux-system",
        "--checkout-branch=main",
    ],
    &["image", "update", "a1", "--git-repo-ref=flux-system"],
    &["image", "update", "a1"],
    &["image", "update", "a", "--git-repo-ref=x"],
    &["image", "repository", "podinfo", "--image=user@host.io/xy"],
    // Credential Secrets (`@NAME` is a file of [`VALUES`]).
    &[
        "secret",
        "git",
        "gs",
        "--url=https://github.com/x",
        "--username=u",
        "--password=p",
    ],
    &[
        "secret",
        "git",
        "gs",
        "--url=https://github.com/x",
        "--bearer-token=t",
        "--label=a=b",
        "-n",
        "apps",
    ],
    &[
        "secret",
        "git",
        "gs",
        "--url=http://github.com/x",
        "--username=u",
        "--password=p",
        "--ca-crt-file=@ca.crt",
    ],
    &[
        "secret",
        "git",
        "gs",
        "--url=HTTPS://github.com/x",
        "--username=u",
        "--password=p",
        "--bearer-token=t",
    ],
    &[
        "secret",
        "git",
        "gs",
        "--url=https://github.com/x",
        "--username=u",
    ],
    &[
        "secret",
        "git",
        "gs",
        "--url=ftp://x",
        "--username=u",
        "--password=p",
    ],
    &[
        "secret",
        "git",
        "gs",
        "--url=github.com/x",
        "--username=u",
        "--password=p",
    ],
    &["secret", "git", "gs"],
    &["secret", "git", "g", "--url=https://x"],
    &[
        "secret",
        "git",
        "gs",
        "--url=https://x",
        "--username=u",
        "--password=p",
        "--label=bad",
    ],
    &[
        "secret",
        "tls",
        "ts",
        "--tls-crt-file=@tls.crt",
        "--tls-key-file=@tls.key",
        "--ca-crt-file=@ca.crt",
    ],
    &[
        "secret",
        "tls",
        "ts",
        "--tls-crt-file=@tls.crt",
        "--tls-key-file=@tls.key",
        "-n",
        "apps",
    ],
    &[
        "secret",
        "tls",
        "ts",
        "--ca-crt-file=@ca.crt",
        "--label=a=b",
    ],
    &[
        "secret",
        "tls",
        "ts",
        "--tls-crt-file=@tls.crt",
        "--tls-key-file=@other.key",
    ],
    &[
        "secret",
        "tls",
        "ts",
        "--tls-crt-file=@ca.crt",
        "--tls-key-file=@tls.key",
    ],
    &[
        "secret",
        "tls",
        "ts",
        "--tls-crt-file=@tls.crt",
        "--tls-key-file=@ca.crt",
    ],
    &["secret", "tls", "ts", "--tls-crt-file=@tls.crt"],
    &["secret", "tls", "ts", "--tls-key-file=@tls.key"],
    &["secret", "tls", "ts"],
    &["secret", "tls", "--ca-crt-file=@ca.crt"],
    &[
        "secret",
        "tls",
        "ts",
        "--tls-crt-file=@missing.crt",
        "--tls-key-file=@tls.key",
    ],
    &["secret", "helm", "hs"],
    &["secret", "helm", "hs", "--username=u", "--password=p"],
    &[
        "secret",
        "helm",
        "hs",
        "--username=u",
        "--password=p",
        "--ca-crt-file=@ca.crt",
        "--label=a=b",
    ],
    &["secret", "helm", "hs", "--username=u"],
    &["secret", "helm", "hs", "--password=p", "--label=a=b"],
    &[
        "secret",
        "helm",
        "hs",
        "--username=u",
        "--password=p",
        "--ca-crt-file=@missing.crt",
    ],
    &[
        "secret",
        "oci",
        "os",
        "--url=ghcr.io",
        "--username=u",
        "--password=p",
    ],
    &[
        "secret",
        "oci",
        "os",
        "--url=ghcr.io/org/app:v1.0",
        "--username=a<b&c",
        "--password=p\"q",
        "--label=a=b",
        "-n",
        "apps",
    ],
    &[
        "secret",
        "oci",
        "os",
        "--url=localhost:5000/org/app",
        "--username=u",
        "--password=p",
    ],
    &[
        "secret",
        "oci",
        "os",
        "--url=ghcr.io/org/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "--username=u",
        "--password=p",
    ],
    &[
        "secret",
        "oci",
        "os",
        "--url=ghcr.io/org/app@sha256:abc",
        "--username=u",
        "--password=p",
    ],
    &["secret", "oci", "os", "--url=ghcr.io"],
    &["secret", "oci", "os", "--url=ghcr.io", "--username=u"],
    &[
        "secret",
        "oci",
        "os",
        "--url=Ghcr.io/X",
        "--username=u",
        "--password=p",
    ],
    &[
        "secret",
        "oci",
        "os",
        "--url=ghcr.io/x:v1",
        "--username=u",
        "--password=p",
    ],
    &["secret", "oci", "os", "--username=u", "--password=p"],
    &["secret", "oci", "o", "--url=x"],
];

#[test]
fn export_prints_what_flux_prints() {
    let flux = ferroflux_testpeers::require!(ferroflux_testpeers::peer_binary("flux"));
    let dir = common::dir_with(VALUES);
    let mut different = Vec::new();
    for shape in SHAPES {
        let mut args = vec!["create".to_string()];
        for arg in *shape {
            let file = |name: &str| dir.path().join(name).display().to_string();
            args.push(match arg.strip_prefix("--values=") {
                Some(files) => format!(
                    "--values={}",
                    files
                        .split(',')
                        .map(|f| file(f.trim_start_matches('@')))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                None => match arg.split_once("=@") {
                    Some((flag, name)) => format!("{flag}={}", file(name)),
                    None => (*arg).to_string(),
                },
            });
        }
        args.push("--export".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let theirs = Command::new(&flux)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .expect("flux runs");
        let (theirs, ours) = (shown(&theirs), shown(&ferroflux(&args)));
        if theirs != ours {
            different.push(format!(
                "{shape:?}\n  flux:      {theirs:?}\n  ferroflux: {ours:?}"
            ));
        }
    }
    assert!(
        different.is_empty(),
        "{} of {} differ:\n{}",
        different.len(),
        SHAPES.len(),
        different.join("\n")
    );
}

/// Serves the CRDs of the kinds `create` makes, as ferroflux defines them.
fn install_crds(kubeconfig: &Path) {
    let crds: Vec<Value> = [
        ("helm.toolkit.fluxcd.io", "HelmRelease"),
        ("notification.toolkit.fluxcd.io", "Alert"),
        ("notification.toolkit.fluxcd.io", "Provider"),
        ("notification.toolkit.fluxcd.io", "Receiver"),
        ("source.toolkit.fluxcd.io", "GitRepository"),
        ("source.toolkit.fluxcd.io", "OCIRepository"),
        ("kustomize.toolkit.fluxcd.io", "Kustomization"),
        ("image.toolkit.fluxcd.io", "ImagePolicy"),
        ("image.toolkit.fluxcd.io", "ImageUpdateAutomation"),
    ]
    .iter()
    .map(|(group, kind)| {
        let served = ferroflux_api::crds::find(group, kind).expect("ferroflux serves the kind");
        serde_json::to_value(served.definition()).expect("CRD serialises")
    })
    .collect();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": crds});
    common::kubectl_ok(
        kubeconfig,
        &["apply", "--server-side", "-f", "-"],
        Some(list.to_string().as_bytes()),
    );
    common::kubectl_ok(
        kubeconfig,
        &[
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=60s",
        ],
        None,
    );
}

/// The fields an export writes, of an object read back with kubectl.
fn read_back(kubeconfig: &Path, resource: &str, name: &str, namespace: &str) -> Value {
    let object = common::kubectl_json(kubeconfig, &["get", resource, name, "-n", namespace]);
    let mut metadata = serde_json::json!({"name": object["metadata"]["name"],
        "namespace": object["metadata"]["namespace"]});
    if !object["metadata"]["labels"].is_null() {
        metadata["labels"] = object["metadata"]["labels"].clone();
    }
    let mut spec = object["spec"].clone();
    // The CRDs default fields flux leaves out.
    for (kind, field, default) in [
        ("Receiver", "interval", serde_json::json!("10m")),
        ("Kustomization", "force", serde_json::json!(false)),
    ] {
        if object["kind"] == kind && spec[field] == default {
            spec.as_object_mut().map(|s| s.remove(field));
        }
    }
    serde_json::json!({"apiVersion": object["apiVersion"], "kind": object["kind"],
        "metadata": metadata, "spec": spec})
}

/// The real flux CLI, pointed at the same server, prints the same tables and refusals, byte
/// for byte.
fn same_tables_as_flux(kc: &str) {
    match ferroflux_testpeers::peer_binary("flux") {
        Ok(flux) => {
            for args in [
                &["hr", "-n", "apps"][..],
                &["helmreleases", "-A"],
                &["alerts"],
                &["alert-providers", "-A"],
                &["alert-providers", "-n", "apps"],
                &["receivers", "-A"],
                &["alert-providers"],
            ] {
                let args = [&["get"], args, &["--kubeconfig", kc]].concat();
                let theirs = Command::new(&flux)
                    .args(&args)
                    .stdin(Stdio::null())
                    .output()
                    .expect("flux runs");
                assert_eq!(shown(&ferroflux(&args)), shown(&theirs), "{args:?}");
            }
        }
        Err(err) => ferroflux_testpeers::skip(format!("flux: {err}")),
    }
}

#[test]
fn created_objects_read_back_and_get_shows_them_like_flux() {
    if !common::require_kubectl() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (_server, kubeconfig) = common::start_apiserver(dir.path());
    install_crds(&kubeconfig);
    let kc = kubeconfig.display().to_string();
    common::kubectl_ok(&kubeconfig, &["create", "namespace", "flux-system"], None);
    common::kubectl_ok(&kubeconfig, &["create", "namespace", "apps"], None);

    let created: &[(&[&str], &str)] = &[
        (
            &[
                "alert",
                "slack",
                "--provider-ref=slack",
                "--event-source=Kustomization/*",
                "--event-severity=info",
            ],
            "alert",
        ),
        (
            &[
                "alert-provider",
                "slack",
                "--type=slack",
                "--channel=general",
                "-n",
                "apps",
            ],
            "provider",
        ),
        (
            &[
                "receiver",
                "github",
                "--type=github",
                "--event=push",
                "--secret-ref=token",
                "--resource=GitRepository/app",
            ],
            "receiver",
        ),
        (
            &[
                "hr",
                "podinfo",
                "--source=HelmRepository/podinfo",
                "--chart=podinfo",
                "--chart-version=6.x",
                "-n",
                "apps",
            ],
            "helmrelease",
        ),
        (
            &[
                "source",
                "git",
                "podinfo",
                "--url=https://github.com/stefanprodan/podinfo",
                "--tag=6.5.4",
                "--ignore-paths=docs,charts",
                "--fetch-timeout=90s",
            ],
            "gitrepository",
        ),
        (
            &[
                "source",
                "oci",
                "podinfo",
                "--url=oci://ghcr.io/stefanprodan/manifests/podinfo",
                "--tag-semver=6.x",
                "--fetch-timeout=2m",
                "-n",
                "apps",
            ],
            "ocirepository",
        ),
        (
            &[
                "ks",
                "podinfo",
                "--source=OCIRepository/podinfo.apps",
                "--path=./kustomize",
                "--prune",
                "--wait",
                "--depends-on=infra",
                "--retry-interval=2m",
            ],
            "kustomization",
        ),
        (
            &[
                "image",
                "policy",
                "podinfo",
                "--image-ref=podinfo",
                "--select-semver=6.x",
                "--reflect-digest=Always",
                "--interval=5m",
            ],
            "imagepolicy",
        ),
        (
            &[
                "image",
                "update",
                "podinfo",
                "--git-repo-ref=podinfo",
                "--checkout-branch=main",
                "--author-name=bot",
                "--author-email=bot@example.com",
                "--git-repo-path=./clusters",
            ],
            "imageupdateautomation",
        ),
    ];
    for (shape, resource) in created {
        let mut args = vec!["create"];
        args.extend_from_slice(shape);
        let exported = ferroflux(&[&args[..], &["--export"]].concat());
        let wanted: Value =
            ferroflux_gocompat::yaml::from_str(&text(&exported.stdout)).expect("export is YAML");
        let applied = ferroflux(&[&args[..], &["--kubeconfig", &kc]].concat());
        assert!(
            applied.status.success(),
            "{args:?}: {}",
            text(&applied.stderr)
        );
        let kind = wanted["kind"].as_str().expect("kind");
        assert_eq!(
            text(&applied.stderr),
            format!("✚ generating {kind}\n► applying {kind}\n✔ {kind} created\n")
        );
        let name = wanted["metadata"]["name"].as_str().expect("name");
        let namespace = wanted["metadata"]["namespace"].as_str().expect("namespace");
        assert_eq!(
            read_back(&kubeconfig, resource, name, namespace),
            wanted,
            "{args:?}"
        );
        let again = ferroflux(&[&args[..], &["--kubeconfig", &kc]].concat());
        assert!(text(&again.stderr).ends_with(&format!("✔ {kind} updated\n")));
    }

    // A reconciled HelmRelease: flux shows the newest release's chart version.
    common::kubectl_ok(
        &kubeconfig,
        &[
            "patch",
            "helmrelease",
            "podinfo",
            "-n",
            "apps",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status": {"history": [{"chartVersion": "6.5.4", "chartName": "podinfo", "name": "podinfo", "namespace": "apps", "version": 1, "digest": "sha256:0", "configDigest": "sha256:1", "firstDeployed": "2024-01-01T00:00:00Z", "lastDeployed": "2024-01-01T00:00:00Z", "status": "deployed"}], "conditions": [{"type": "Ready", "status": "True", "reason": "InstallSucceeded", "message": "Helm install succeeded for release apps/podinfo.v1 with chart podinfo@6.5.4", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}}"#,
        ],
        None,
    );
    let get = |args: &[&str]| {
        let output = ferroflux(&[&["get"], args, &["--kubeconfig", &kc]].concat());
        // The header's last cell is padded to the widest message (the table machinery's
        // unit tests hold that); the cells are what is compared here.
        let table: String = text(&output.stdout)
            .lines()
            .map(|line| format!("{}\n", line.trim_end_matches(' ')))
            .collect();
        (output.status.success(), table, shown(&output).2)
    };
    assert_eq!(
        get(&["hr", "-n", "apps"]),
        (true, "NAME   \tREVISION\tSUSPENDED\tREADY\tMESSAGE\n\
                podinfo\t6.5.4   \tFalse    \tTrue \tHelm install succeeded for release apps/podinfo.v1 with chart podinfo@6.5.4\t\n".into(), String::new())
    );
    assert_eq!(
        get(&["alerts"]),
        (
            true,
            "NAME \tSUSPENDED\tREADY\tMESSAGE\nslack\tFalse    \tTrue \tAlert is Ready\t\n".into(),
            String::new()
        )
    );
    assert_eq!(
        get(&["alert-providers", "-A"]),
        (
            true,
            "NAMESPACE\tNAME \tREADY\tMESSAGE\napps     \tslack\tTrue \tProvider is Ready\t\n"
                .into(),
            String::new()
        )
    );
    assert_eq!(
        get(&["receivers"]),
        (true, "NAME  \tSUSPENDED\tREADY\tMESSAGE\ngithub\tFalse    \tFalse\twaiting to be reconciled\t\n".into(), String::new())
    );
    same_tables_as_flux(&kc);

    // A credential Secret: applied with flux's line, its data read back.
    let secret = |password: &str| {
        ferroflux(&[
            "create",
            "secret",
            "helm",
            "repo-auth",
            "--username=bot",
            &format!("--password={password}"),
            "-n",
            "apps",
            "--kubeconfig",
            &kc,
        ])
    };
    for password in ["first", "second"] {
        let applied = secret(password);
        assert!(applied.status.success(), "{}", text(&applied.stderr));
        assert_eq!(
            text(&applied.stderr),
            "► helm secret 'repo-auth' created in 'apps' namespace\n"
        );
        let read = common::kubectl_json(&kubeconfig, &["get", "secret", "repo-auth", "-n", "apps"]);
        assert_eq!(read["type"], "kubernetes.io/basic-auth");
        assert_eq!(read["data"]["username"], "Ym90", "base64 of bot");
        let wanted = if password == "first" {
            "Zmlyc3Q="
        } else {
            "c2Vjb25k"
        };
        assert_eq!(
            read["data"]["password"], wanted,
            "the update replaces the data"
        );
    }
    assert_eq!(
        get(&["alert-providers"]),
        (
            false,
            String::new(),
            "✗ no Provider objects found in \"flux-system\" namespace".into()
        )
    );
}
