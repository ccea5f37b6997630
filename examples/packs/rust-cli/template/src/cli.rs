use clap::Parser;

/// {{project_name}}: describe what it does here.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Args {
    /// Who to greet.
    #[arg(long, default_value = "world")]
    pub name: String,
}
