//! packetbeat-rs: a drop-in Rust reimplementation of Elastic Packetbeat.
//!
//! Layers, in the order a packet crosses them (as in Packetbeat's source tree):
//! `cmd` (CLI) → `beater` (lifecycle) → `sniffer` (packet sources) → `decoder` (link, network,
//! transport) → `protos` (`tcp`, `udp`, one folder per analyzer) and `flows` → `publish`
//! (events, processors, queue) → `outputs`. `config` holds the typed configuration.

pub mod beater;
pub mod cmd;
pub mod common;
pub mod config;
pub mod decoder;
pub mod flows;
pub mod keystore;
pub mod monitoring;
pub mod outputs;
pub mod protos;
pub mod publish;
pub mod setup;
pub mod sniffer;

/// The Packetbeat version this build is compatible with; used for `agent.version`,
/// `@metadata.version` and index names, so dashboards and templates match.
pub const BEAT_VERSION: &str = "8.17.2";
/// ECS version written in `ecs.version`, as Packetbeat 8 writes it.
pub const ECS_VERSION: &str = "8.0.0";
