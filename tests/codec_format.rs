//! `codec.format` end to end (libbeat's format codec): `output.file` and `output.console` write
//! each event as the format string run on it, one line per event, in place of the JSON the
//! default codec writes for the same capture; an event the format string fails on is dropped,
//! said and counted; a bad `codec` section is libbeat's error, naming the key.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

const FORMAT: &str = "%{[@timestamp]} %{[type]} %{[source.ip]}:%{[source.port]}";

/// [`FORMAT`] built by hand from each JSON event `output.file` writes for the capture with the
/// default codec.
fn expected_lines(home: &Path, pcap: &Path) -> Vec<String> {
    mongodb_file_lines(home, pcap)
        .iter()
        .map(|l| {
            let e: Value = serde_json::from_str(l).unwrap();
            let s = |v: &Value| {
                v.as_str()
                    .unwrap_or_else(|| panic!("{v} in {l}"))
                    .to_string()
            };
            let port = e["source"]["port"].as_u64().unwrap();
            format!(
                "{} {} {}:{port}",
                s(&e["@timestamp"]),
                s(&e["type"]),
                s(&e["source"]["ip"])
            )
        })
        .collect()
}

/// Every line of the files in `dir`.
fn lines_in(dir: &Path) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Runs the MongoDB capture as [`run_mongodb`] does, with `output`; exit code, stdout, stderr.
fn run_stdout(home: &Path, pcap: &Path, output: &str) -> (i32, String, String) {
    run_to_end(packetbeat_on(home, pcap, MONGODB, output, true))
}

#[test]
fn file_and_console_write_the_formatted_line_of_each_event() {
    let Some(pcap) = shared_or_skip("pcaps/mongo_3.0_session.pcap") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let expected = expected_lines(h, &pcap);
    assert!(expected.len() >= 20, "{}", expected.len());

    let out = h.join("format-out");
    let (rc, err) = run_mongodb(
        h,
        &pcap,
        &format!(
            "output.file: {{path: {}, codec.format.string: '{FORMAT}'}}",
            out.display()
        ),
        true,
    );
    assert_eq!(rc, 0, "{err}");
    assert_eq!(lines_in(&out), expected, "{err}");
    assert!(!err.contains("Failed to serialize"), "{err}");

    let (rc, stdout, err) = run_stdout(
        h,
        &pcap,
        &format!("output.console.codec.format.string: '{FORMAT}'"),
    );
    assert_eq!(rc, 0, "{err}");
    let got: Vec<&str> = stdout.lines().collect();
    assert_eq!(got, expected, "{err}");
}

#[test]
fn an_event_the_format_string_fails_on_is_dropped_and_counted() {
    let Some(pcap) = shared_or_skip("pcaps/mongo_3.0_session.pcap") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // A default stands in for a missing field; without one the event is dropped.
    let (rc, stdout, err) = run_stdout(
        h,
        &pcap,
        "output.console.codec.format.string: '%{[type]} %{[no.such.field]:-}'",
    );
    assert_eq!(rc, 0, "{err}");
    let n = stdout.lines().count();
    assert!(
        n >= 20 && stdout.lines().all(|l| l == "mongodb -"),
        "{stdout}"
    );
    let (rc, stdout, err) = run_stdout(
        h,
        &pcap,
        "output.console.codec.format.string: '%{[type]} %{[no.such.field]}'",
    );
    assert_eq!(rc, 0, "{err}");
    assert_eq!(stdout, "", "{err}");
    assert!(
        err.contains("Failed to serialize the event: key not found: no.such.field"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "console: {n} events could not be formatted by codec.format and were dropped"
        )),
        "{err}"
    );
}

#[test]
fn bad_codec_sections_are_libbeats_errors() {
    let Some(pcap) = shared_or_skip("pcaps/mongo_3.0_session.pcap") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let out = h.join("out");
    let out = out.display();
    for (output, msg) in [
        (
            format!("output.file: {{path: {out}, codec: {{json: {{pretty: true}}, format: {{string: x}}}}}}"),
            "more than one namespace configured accessing 'output.file.codec'",
        ),
        (
            "output.console: {codec.format: {}}".to_string(),
            "missing required field accessing 'output.console.codec.format.string'",
        ),
        (
            format!("output.file: {{path: {out}, codec.format.string: '%{{[type]'}}"),
            "accessing 'output.file.codec.format.string'",
        ),
        (
            "output.console: {codec.xml: {}}".to_string(),
            "'xml' output codec is not available",
        ),
    ] {
        let (rc, err) = run_mongodb(h, &pcap, &output, true);
        assert_ne!(rc, 0, "{output}: {err}");
        assert!(err.contains(msg), "{output}: {err}");
    }
}
