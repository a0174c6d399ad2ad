//! libbeat's output codecs (`libbeat/outputs/codec`) for the outputs that take one (console,
//! file, kafka, redis): `codec.json` (`pretty`, `escape_html`; the default) or `codec.format`
//! (`string`: each event is written as that format string run on it, e.g.
//! `'%{[@timestamp]} %{[source.ip]} %{[http.request.method]}'`, see
//! [`crate::common::fmtstr`]).
//!
//! `codec` is a namespace, as libbeat's `codec.Config`: only one codec may be set (both is
//! "more than one namespace configured"), one with `enabled: false` is not set, a name libbeat
//! does not know is "'<name>' output codec is not available", and `codec.format` needs its
//! `string` ("missing required field"). When a codec is set, console's own `pretty` is not read,
//! as libbeat's console output reads it only without one.
//!
//! # Why the events are still encoded as JSON with `codec.format`
//!
//! Packet workers encode events ahead with the output's JSON codec (`OutputType::codec`, kept in
//! `Event::encoded`) and drop the fields: that is the path every JSON output takes, and a format
//! codec leaves it as it is. With `codec.format`, the workers encode compact JSON as for
//! `codec.json` (only when the format string, or kafka's topic or key, reads fields; the time
//! alone needs none), and the output reads it back into the event (`select::event_of`, as the
//! `topics`/`keys` selectors already do) to run the format string: one parse per event on the
//! output thread. (Redis has the workers encode nothing, JSON or not: its format codec builds
//! the tree from the event's fields, [`tree_of`].) Formatting in the workers instead would take
//! a second kind of pre-encoded event through the worker and the queue, and kafka and redis
//! would still need the event to choose its topic or key; an enum of codecs in the outputs
//! changes nothing for JSON (its arm writes the pre-encoded bytes exactly as before).
//!
//! # Events the format string fails on
//!
//! libbeat's format codec returns the format string's error (a field without a default is
//! missing, or has no text: an array, a null), and every output drops such an event (console;
//! file: "Failed to serialize the event"; kafka: "Dropping event"; redis: "Encoding event
//! failed"). So do these outputs: the event is left out of what is written and counted; the
//! first failure is logged as a warning with its error, later ones at debug level (libbeat warns
//! for each, which floods the log on a capture where a field is often missing), and the count is
//! logged when the output closes.

use crate::common::fmtstr::FormatString;
use crate::common::Ts;
use crate::config::types::{CodecConfig, JsonCodecConfig};
use crate::outputs::select::event_of;
use crate::publish::json::{full_tree, JsonCodec};
use crate::publish::processors::ProcEvent;
use crate::publish::Event;
use serde_yaml::Value as Yaml;
use std::sync::atomic::{AtomicU64, Ordering};

/// The codec an output writes events with.
#[derive(Debug)]
pub enum Codec {
    Json(JsonCodec),
    Format(FormatCodec),
}

/// `codec.format`: each event as a format string run on it.
#[derive(Debug)]
pub struct FormatCodec {
    format: FormatString,
    /// Events the format string failed on (dropped).
    failed: AtomicU64,
}

impl Codec {
    /// The codec of `output.<name>` (`path`) from its `codec` options; `pretty` is the output's
    /// own `pretty` (console), used when no codec is set.
    pub fn from_config(c: &CodecConfig, path: &str, pretty: bool) -> Result<Codec, String> {
        let on = |enabled: Option<bool>| enabled != Some(false);
        let json = c.json.as_ref().filter(|j| on(j.enabled));
        let format = c.format.as_ref().filter(|f| on(f.enabled));
        match (json, format) {
            (Some(_), Some(_)) => Err(format!(
                "more than one namespace configured accessing '{path}.codec'"
            )),
            (_, Some(f)) => {
                let key = format!("{path}.codec.format.string");
                let text = match &f.string {
                    None | Some(Yaml::Null) => {
                        return Err(format!("missing required field accessing '{key}'"))
                    }
                    Some(Yaml::String(s)) => s.clone(),
                    Some(Yaml::Number(n)) => n.to_string(),
                    Some(Yaml::Bool(b)) => b.to_string(),
                    Some(_) => return Err(format!("type mismatch accessing '{key}'")),
                };
                Ok(Codec::Format(FormatCodec::new(&text, &key)?))
            }
            (
                Some(JsonCodecConfig {
                    pretty,
                    escape_html,
                    ..
                }),
                None,
            ) => Ok(Codec::Json(JsonCodec {
                pretty: *pretty,
                escape_html: *escape_html,
            })),
            (None, None) => Ok(Codec::Json(JsonCodec {
                pretty,
                escape_html: false,
            })),
        }
    }

    /// The JSON codec packet workers encode events with ahead of this one
    /// ([`crate::outputs::OutputType::codec`]): the JSON codec itself; for a format string that
    /// reads fields, compact JSON the output reads back; for one that reads none (the time and
    /// text only), nothing.
    pub fn pre_encoding(&self) -> Option<JsonCodec> {
        match self {
            Codec::Json(j) => Some(*j),
            Codec::Format(f) if f.format.reads_fields() => Some(JsonCodec::default()),
            Codec::Format(_) => None,
        }
    }

    /// Writes event `e` into `out` (no newline); `false` when the format string failed on it
    /// and it is to be dropped (nothing written).
    pub fn encode_into(&self, e: &Event, out: &mut Vec<u8>) -> bool {
        match self {
            Codec::Json(j) => {
                j.encode_into(e, out);
                true
            }
            Codec::Format(f) => match f.format(e.timestamp, &f.event(e)) {
                Some(text) => {
                    out.extend_from_slice(text.as_bytes());
                    true
                }
                None => false,
            },
        }
    }

    /// Events dropped because the format string failed on them.
    pub fn failed(&self) -> u64 {
        match self {
            Codec::Json(_) => 0,
            Codec::Format(f) => f.failed.load(Ordering::Relaxed),
        }
    }

    /// Logs how many events were dropped by the codec (at close).
    pub fn log_failed(&self, output: &str) {
        let n = self.failed();
        if n > 0 {
            tracing::warn!(
                "{output}: {n} events could not be formatted by codec.format and were dropped"
            );
        }
    }
}

impl FormatCodec {
    /// Compiles the format string; `key` names the option in the error.
    pub fn new(text: &str, key: &str) -> Result<FormatCodec, String> {
        let format = FormatString::compile(text).map_err(|e| format!("{e} accessing '{key}'"))?;
        Ok(FormatCodec {
            format,
            failed: AtomicU64::new(0),
        })
    }

    /// The format string reads the event's fields (not only its time): [`FormatCodec::event`]
    /// has something to build.
    pub fn reads_fields(&self) -> bool {
        self.format.reads_fields()
    }

    /// Event `e` as the format string reads it (an empty tree when it reads no fields): from its
    /// pre-encoded JSON, else from its fields.
    pub fn event(&self, e: &Event) -> ProcEvent {
        if !self.reads_fields() {
            return ProcEvent::new(e.timestamp, Default::default(), Default::default());
        }
        tree_of(e)
    }

    /// The text for one event; `None` (logged and counted) when the format string fails on it.
    pub fn format(&self, ts: Ts, ev: &ProcEvent) -> Option<String> {
        match self.format.run(ts, ev) {
            Ok(text) => Some(text),
            Err(e) => {
                if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!("Failed to serialize the event: {e} (codec.format; further failures are logged at debug level)");
                } else {
                    tracing::debug!("Failed to serialize the event: {e}");
                }
                None
            }
        }
    }
}

/// Event `e` as processors and selectors see it: read back from its pre-encoded JSON, or built
/// from its fields when the workers did not encode it.
pub fn tree_of(e: &Event) -> ProcEvent {
    match &e.encoded {
        Some(doc) => event_of(e.timestamp, &e.meta, doc),
        None => {
            let mut fields = full_tree(e);
            fields.remove("@timestamp");
            fields.remove("@metadata");
            ProcEvent::new(e.timestamp, e.meta.clone(), fields)
        }
    }
}

/// The namespace rules on the raw `output.<name>` section (`path`): a `codec` entry that is a
/// mapping and not `enabled: false` is a codec; more than one, or one libbeat does not have, is
/// an error. (The typed options cannot tell an unknown name: serde leaves it out.)
pub fn check_namespace(section: &Yaml, path: &str) -> Result<(), String> {
    let Some(Yaml::Mapping(codec)) = section.get("codec") else {
        return Ok(());
    };
    let mut set = Vec::new();
    for (k, v) in codec {
        let Yaml::Mapping(m) = v else { continue };
        if m.get("enabled") == Some(&Yaml::Bool(false)) {
            continue;
        }
        set.push(k.as_str().unwrap_or_default().to_string());
    }
    if set.len() > 1 {
        return Err(format!(
            "more than one namespace configured accessing '{path}.codec'"
        ));
    }
    match set.first().map(String::as_str) {
        None | Some("json") | Some("format") => Ok(()),
        Some(other) => Err(format!("'{other}' output codec is not available")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::event::Map;
    use serde_json::json;

    fn codec(yaml: &str) -> Result<Codec, String> {
        let raw = crate::config::tree::normalize(serde_yaml::from_str(yaml).unwrap());
        check_namespace(&raw, "output.file")?;
        let c: crate::config::types::FileOutputConfig =
            crate::config::types::decode(&raw, "output.file", "t").map_err(|e| e.0)?;
        Codec::from_config(&c.codec, "output.file", false)
    }

    fn event(ts: Ts, doc: serde_json::Value) -> Event {
        let mut e = Event::bare(ts, Map::new());
        e.encoded = Some(serde_json::to_vec(&doc).unwrap());
        e
    }

    #[test]
    fn json_by_default_and_its_options() {
        assert!(matches!(
            codec("{}").unwrap(),
            Codec::Json(JsonCodec {
                pretty: false,
                escape_html: false
            })
        ));
        assert!(matches!(
            codec("codec.json: {pretty: true, escape_html: true}").unwrap(),
            Codec::Json(JsonCodec {
                pretty: true,
                escape_html: true
            })
        ));
        // console's `pretty` only without a codec, as libbeat's console output
        let c = Codec::from_config(&CodecConfig::default(), "output.console", true).unwrap();
        assert!(matches!(c, Codec::Json(JsonCodec { pretty: true, .. })));
        // a disabled namespace is not set
        let c = codec("codec: {json: {enabled: false}, format: {string: '%{[a]}'}}").unwrap();
        assert!(matches!(c, Codec::Format(_)));
    }

    #[test]
    fn config_errors_are_libbeats() {
        let e = codec("codec: {json: {pretty: true}, format: {string: x}}").unwrap_err();
        assert_eq!(
            e,
            "more than one namespace configured accessing 'output.file.codec'"
        );
        // The same from the typed options alone.
        let c = CodecConfig {
            json: Some(Default::default()),
            format: Some(Default::default()),
        };
        assert_eq!(
            Codec::from_config(&c, "output.kafka", false).unwrap_err(),
            "more than one namespace configured accessing 'output.kafka.codec'"
        );
        assert_eq!(
            codec("codec.format: {}").unwrap_err(),
            "missing required field accessing 'output.file.codec.format.string'"
        );
        let e = codec("codec.format.string: '%{[a]'").unwrap_err();
        assert!(
            e.ends_with("accessing 'output.file.codec.format.string'"),
            "{e}"
        );
        assert_eq!(
            codec("codec.xml: {}").unwrap_err(),
            "'xml' output codec is not available"
        );
    }

    #[test]
    fn formats_each_event_from_its_json() {
        let c = codec(
            "codec.format.string: '%{[@timestamp]} %{[type]} %{[source.ip]}:%{[source.port]} %{[@metadata.pipeline]:-} %{[x]:none}'",
        )
        .unwrap();
        assert_eq!(c.pre_encoding().map(|j| j.pretty), Some(false));
        let ts = Ts(1_424_218_386_123_456_789);
        let mut e = event(
            ts,
            json!({"@timestamp": "ignored", "@metadata": {"beat": "packetbeat"}, "type": "dns",
                   "source": {"ip": "10.0.0.1", "port": 53}}),
        );
        e.meta.insert("pipeline".into(), json!("p1"));
        let mut out = Vec::new();
        assert!(c.encode_into(&e, &mut out));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2015-02-18T00:13:06.123Z dns 10.0.0.1:53 p1 none"
        );
        // A missing field without a default drops the event (counted).
        let e = event(ts, json!({"type": "flow"}));
        let mut out = Vec::new();
        assert!(!c.encode_into(&e, &mut out) && out.is_empty());
        assert_eq!(c.failed(), 1);
    }

    #[test]
    fn an_event_the_workers_did_not_encode_is_read_from_its_fields() {
        let c = codec("codec.format.string: '%{[type]} %{[a.b]} %{[obj]}'").unwrap();
        let mut e = Event::bare(Ts(0), Map::new());
        e.put("type", "http");
        e.put("a.b", 7);
        e.put("obj.k", "<v>");
        let mut out = Vec::new();
        assert!(c.encode_into(&e, &mut out));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"http 7 {"k":"\u003cv\u003e"}"#
        );
    }

    #[test]
    fn a_format_of_the_time_alone_needs_no_encoding() {
        let c = codec("codec.format.string: '%{+yyyy} %{[@timestamp]}'").unwrap();
        assert!(c.pre_encoding().is_none());
        let e = Event::bare(Ts(0), Map::new());
        let mut out = Vec::new();
        assert!(c.encode_into(&e, &mut out));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1970 1970-01-01T00:00:00.000Z"
        );
    }
}
