//! Port allowlists with strict parsing.
//!
//! OWNER: helper A.

use std::str::FromStr;

/// Why a port was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PortError {
    /// Not a plain decimal port number. Code `INVALID_PORT`.
    #[error("invalid port {input:?}: expected a decimal number from 1 to 65535")]
    Syntax {
        /// The refused text.
        input: String,
    },
}

impl PortError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        todo!()
    }
}

/// An inclusive range of ports, written `8080` or `9000-9010`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    start: u16,
    end: u16,
}

impl PortRange {
    /// The range `start..=end`; `start` must be at least 1 and not above `end`.
    pub fn new(start: u16, end: u16) -> Result<Self, PortError> {
        let _ = (start, end);
        todo!()
    }
    /// First port of the range.
    pub fn start(&self) -> u16 {
        self.start
    }
    /// Last port of the range.
    pub fn end(&self) -> u16 {
        self.end
    }
}

impl FromStr for PortRange {
    type Err = PortError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let _ = s;
        todo!()
    }
}

/// Parses a port strictly: ASCII digits only, 1 to 65535, no sign, no spaces, no leading zero.
pub fn parse_port(text: &str) -> Result<u16, PortError> {
    let _ = text;
    todo!()
}

/// Which ports a sandbox may expose.
#[derive(Debug, Clone)]
pub struct PortPolicy {
    allow: Vec<PortRange>,
    reserved: Vec<u16>,
}

impl Default for PortPolicy {
    /// 1024 to 65535, except 3000 (the control plane).
    fn default() -> Self {
        todo!()
    }
}

impl PortPolicy {
    /// A policy allowing `allow` except `reserved`.
    pub fn new(allow: Vec<PortRange>, reserved: Vec<u16>) -> Self {
        let _ = (&allow, &reserved);
        todo!()
    }
    /// Decides on a port number.
    pub fn check(&self, port: u16) -> Result<u16, PortError> {
        let _ = (port, &self.allow, &self.reserved);
        todo!()
    }
    /// Parses `text` strictly with [`parse_port`], then decides.
    pub fn check_str(&self, text: &str) -> Result<u16, PortError> {
        self.check(parse_port(text)?)
    }
}
