//! Arbitrary text through the processors that parse strings (dissect, timestamp with several
//! Go layouts, urldecode, base64, gzip, JSON, MIME sniffing, registered_domain, convert,
//! truncate, replace) and the conditions that read it. Nothing may panic; every error is the
//! processor's to report.
#![no_main]

use libfuzzer_sys::fuzz_target;
use packetbeat::common::Ts;
use packetbeat::publish::processors::{build, ProcEvent};
use serde_json::Value;
use std::sync::OnceLock;

const CHAIN: &str = r#"
- dissect: {tokenizer: '%{a} %{+a/2} %{?b}|%{*c}=%{&c} %{d->} %{e|integer}', ignore_failure: true}
- dissect: {tokenizer: '"%{x}" - %{y}', target_prefix: '', trim_values: all}
- timestamp: {field: message, ignore_failure: true, layouts: ['2006-01-02T15:04:05.999999999Z07:00', 'Jan _2 15:04:05', '02/Jan/2006:15:04:05 -0700', 'Mon, 02 Jan 2006 15:04:05 MST', '3:04PM', '002 06', UNIX, UNIX_MS]}
- urldecode: {fields: [{from: message, to: u}], fail_on_error: false}
- decode_base64_field: {field: {from: message, to: b}}
- decompress_gzip_field: {field: {from: message, to: g}}
- decode_json_fields: {fields: [message], target: j, max_depth: 3, process_array: true}
- detect_mime_type: {field: message, target: mime}
- registered_domain: {field: message, target_field: rd, target_etld_field: etld, target_subdomain_field: sub}
- convert: {fields: [{from: message, to: i, type: long}, {from: message, to: f, type: double}, {from: message, to: ip, type: ip}], fail_on_error: false}
- truncate_fields: {fields: [message], max_characters: 7}
- replace: {fields: [{field: u, pattern: '[aeiou]+', replacement: '$0$0'}], ignore_missing: true}
- lowercase: {values: [message]}
- fingerprint: {fields: [message, u]}
- drop_event: {when: {or: [{regexp: {message: '^(a|b)+$'}}, {network: {message: [private, '10.0.0.0/8']}}, {range: {message.gt: 5}}, {contains: {message: zz}}]}}
"#;

fuzz_target!(|data: &[u8]| {
    static LIST: OnceLock<packetbeat::publish::processors::List> = OnceLock::new();
    let list = LIST.get_or_init(|| {
        let v: serde_yaml::Value = serde_yaml::from_str(CHAIN).unwrap();
        build(v.as_sequence().unwrap(), "processors").unwrap()
    });
    let text = String::from_utf8_lossy(data).into_owned();
    let mut fields = packetbeat::publish::Map::new();
    fields.insert("message".into(), Value::from(text));
    let mut e = ProcEvent::new(Ts(1), packetbeat::publish::Map::new(), fields);
    let _ = list.run(&mut e);
});
