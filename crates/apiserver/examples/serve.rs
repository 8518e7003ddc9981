//! Runs the API server until Ctrl-C: `cargo run -p ferroflux-apiserver --example serve -- DIR [ADDR]`.

use std::net::SocketAddr;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: serve DIR [ADDR]")?;
    let mut config = ferroflux_apiserver::Config::new(dir);
    if let Some(addr) = args.next() {
        config.listen = addr.parse::<SocketAddr>()?;
    }
    let server = ferroflux_apiserver::serve(config).await?;
    println!(
        "serving {} kubeconfig {}",
        server.url,
        server.kubeconfig_path.display()
    );
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}
