//! The MySQL analyzer through the real TCP layer: segments in, events out.
