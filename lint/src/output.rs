//! Reports: rustc-style text for people, JSON for scripts, SARIF 2.1.0 for code-scanning services.

mod human;
mod json;
mod sarif;

pub use human::write_human;
pub use json::write_json;
pub use sarif::write_sarif;

/// An output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// rustc-style diagnostics and a summary line.
    #[default]
    Human,
    /// One JSON object: `version`, `findings`, `summary`.
    Json,
    /// SARIF 2.1.0, as GitHub code scanning accepts it.
    Sarif,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "human" => Ok(Self::Human),
            "json" => Ok(Self::Json),
            "sarif" => Ok(Self::Sarif),
            other => Err(format!("unknown format `{other}`; use human, json or sarif")),
        }
    }
}
