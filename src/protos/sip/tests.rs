//! SIP parser and event tests.
