//! The `nfs` section has no keys of its own (Packetbeat's `protos/nfs/config.go`): `ports`,
//! `send_request`, `send_response` and `transaction_timeout` (1 minute for NFS) are the
//! framework's common ones.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NfsConfig {}
