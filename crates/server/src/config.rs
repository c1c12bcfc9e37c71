//! Configuration: defaults, then a TOML file (`--config`), then `REDRAFT_*` environment
//! variables, then command-line flags; each later source overrides the earlier ones.
//! [`Config::validate`] runs once, before anything starts.

use std::path::PathBuf;

use clap::Parser;
use serde::Deserialize;

use crate::Error;

/// Default address to listen on.
pub const DEFAULT_BIND: &str = "127.0.0.1";
/// Default RESP port (Redis's).
pub const DEFAULT_PORT: u16 = 6379;
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./data";
/// Default most concurrent client connections (Redis's `maxclients`).
pub const DEFAULT_MAXCLIENTS: usize = 10_000;
/// Default background task frequency in Hz (Redis's `hz`): active expiry runs this often.
pub const DEFAULT_HZ: u32 = 10;

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Command-line flags. Every flag can also be set with a `REDRAFT_*` environment variable
/// or in the TOML file given with `--config` (same names, with `_` for `-`).
#[derive(Parser, Debug, Default, Clone)]
#[command(
    name = "redraft",
    version,
    about = "A Redis-compatible key-value store whose writes go through Raft."
)]
pub struct Cli {
    /// Address to listen on for RESP clients [default: 127.0.0.1]
    #[arg(long, env = "REDRAFT_BIND")]
    pub bind: Option<String>,
    /// TCP port for RESP clients [default: 6379]
    #[arg(long, env = "REDRAFT_PORT")]
    pub port: Option<u16>,
    /// Directory for the node's data [default: ./data]
    #[arg(long, env = "REDRAFT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML configuration file; flags and environment variables override its values
    #[arg(long, env = "REDRAFT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format: text or json [default: text]; the level comes from RUST_LOG (default info)
    #[arg(long, env = "REDRAFT_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Most concurrent client connections [default: 10000]
    #[arg(long, env = "REDRAFT_MAXCLIENTS")]
    pub maxclients: Option<usize>,
    /// Background task frequency in Hz, 1-500; active expiry runs this often [default: 10]
    #[arg(long, env = "REDRAFT_HZ")]
    pub hz: Option<u32>,
}

/// The settings a node runs with.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Address to listen on.
    pub bind: String,
    /// RESP port; 0 picks a free one (tests).
    pub port: u16,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Log format.
    pub log_format: LogFormat,
    /// Most concurrent client connections.
    pub maxclients: usize,
    /// Background task frequency in Hz.
    pub hz: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: DEFAULT_BIND.to_string(),
            port: DEFAULT_PORT,
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            log_format: LogFormat::Text,
            maxclients: DEFAULT_MAXCLIENTS,
            hz: DEFAULT_HZ,
        }
    }
}

impl Config {
    /// Builds the configuration from defaults, the file named by `--config`, and the
    /// flags/environment in `cli`, then validates it.
    pub fn load(cli: &Cli) -> Result<Config, Error> {
        let mut config = match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::Config(format!("reading {}: {e}", path.display())))?;
                toml::from_str(&text)
                    .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?
            }
            None => Config::default(),
        };
        if let Some(v) = &cli.bind {
            config.bind = v.clone();
        }
        if let Some(v) = cli.port {
            config.port = v;
        }
        if let Some(v) = &cli.data_dir {
            config.data_dir = v.clone();
        }
        if let Some(v) = cli.log_format {
            config.log_format = v;
        }
        if let Some(v) = cli.maxclients {
            config.maxclients = v;
        }
        if let Some(v) = cli.hz {
            config.hz = v;
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks every setting; the first bad one is the error.
    pub fn validate(&self) -> Result<(), Error> {
        if self.bind.trim().is_empty() {
            return Err(Error::Config("bind must not be empty".into()));
        }
        if self.maxclients == 0 {
            return Err(Error::Config("maxclients must be at least 1".into()));
        }
        if !(1..=500).contains(&self.hz) {
            return Err(Error::Config(format!(
                "hz must be between 1 and 500, got {}",
                self.hz
            )));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(Error::Config("data-dir must not be empty".into()));
        }
        Ok(())
    }

    /// `bind:port`.
    pub fn listen_addr(&self) -> String {
        if self.bind.contains(':') {
            format!("[{}]:{}", self.bind, self.port)
        } else {
            format!("{}:{}", self.bind, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file() {
        let dir = std::env::temp_dir().join(format!("redraft-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("redraft.toml");
        std::fs::write(&file, "port = 7000\nbind = \"127.0.0.2\"\nhz = 20\n").unwrap();
        let cli = Cli {
            config: Some(file.clone()),
            port: Some(7001),
            ..Cli::default()
        };
        let c = Config::load(&cli).unwrap();
        assert_eq!(c.port, 7001);
        assert_eq!(c.bind, "127.0.0.2");
        assert_eq!(c.hz, 20);
        std::fs::write(&file, "porty = 1\n").unwrap();
        assert!(Config::load(&cli).is_err(), "unknown keys are refused");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn validation() {
        let c = Config {
            hz: 0,
            ..Config::default()
        };
        assert!(c.validate().is_err());
        assert!(Config::default().validate().is_ok());
    }
}
