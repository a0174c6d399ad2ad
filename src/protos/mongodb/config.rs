//! The `mongodb` section's own keys (`config.go` in Packetbeat's `protos/mongodb`).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MongodbConfig {
    /// Longest document text in `response`; longer ones are cut and end in ` ...`. 0: no limit.
    pub max_doc_length: i64,
    /// Documents of a reply written to `response`; more end in `[...]`. 0: no limit.
    pub max_docs: i64,
}

impl Default for MongodbConfig {
    fn default() -> Self {
        MongodbConfig {
            max_doc_length: 5000,
            max_docs: 10,
        }
    }
}
