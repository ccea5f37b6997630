use anyhow::Result;
use clap::Parser;

mod cli;

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = cli::Args::parse();
    tracing::debug!(?args, "starting");
    println!("Hello, {}!", args.name);
    Ok(())
}
