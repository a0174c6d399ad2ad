//! The Cassandra analyzer through the real TCP layer.
