//! `export template|ilm-policy|index-pattern` against the reference Packetbeat's, for every case
//! of tests/golden/export/cases.json: same exit status, and standard output equal as JSON values
//! after the reference's version string is replaced by ours (the index pattern's `fields` and
//! `fieldFormatMap` are JSON text, compared as text), and then byte for byte (Go's layout).
//!
//! The reference outputs are the committed tests/golden/export/<case>.stdout (written by
//! `scripts/export-golden --regen`), or the directory in EXPORT_GOLDEN. When the reference binary
//! is built (scripts/reference-packetbeat, .cache/), a fresh run of it is compared as well.

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `binary <args>` the way scripts/export-golden runs the reference: in a fresh directory
/// holding packetbeat.yml and the case's files, which is also path.home and path.config.
fn run_case(binary: &Path, base: &str, case: &Value) -> (i32, String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = format!("{base}{}", case["config"].as_str().unwrap_or(""));
    std::fs::write(dir.join("packetbeat.yml"), config).unwrap();
    if let Some(files) = case["files"].as_object() {
        for (name, text) in files {
            std::fs::write(dir.join(name), text.as_str().unwrap()).unwrap();
        }
    }
    let args: Vec<&str> = case["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let out = Command::new(binary)
        .args(&args)
        .args([
            "-c",
            "packetbeat.yml",
            "--strict.perms=false",
            "--path.home",
        ])
        .arg(dir)
        .arg("--path.config")
        .arg(dir)
        .arg("--path.data")
        .arg(dir.join("data"))
        .arg("--path.logs")
        .arg(dir.join("logs"))
        .current_dir(dir)
        .output()
        .expect("run the binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The first differences between two JSON values, as `path: reference vs ours`.
fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    if out.len() >= 8 {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => diff(&format!("{path}.{k}"), v, w, out),
                    None => out.push(format!("{path}.{k}: only in the reference")),
                }
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                out.push(format!("{path}.{k}: only in ours"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                out.push(format!("{path}: {} elements vs {}", x.len(), y.len()));
            }
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                diff(&format!("{path}[{i}]"), v, w, out);
            }
        }
        (Value::String(x), Value::String(y))
            if x != y && (x.starts_with('[') || x.starts_with('{')) =>
        {
            // JSON text inside a string (index pattern): say where it differs.
            match (
                serde_json::from_str::<Value>(x),
                serde_json::from_str::<Value>(y),
            ) {
                (Ok(p), Ok(q)) if p != q => diff(&format!("{path}(json)"), &p, &q, out),
                _ => out.push(format!("{path}: text differs")),
            }
        }
        _ if a != b => out.push(format!("{path}: {a} vs {b}")),
        _ => {}
    }
}

/// The libbeat version the reference reports ("Packetbeat <pin> (libbeat 9.0.0, ...)").
fn reference_version(golden: &Path) -> String {
    let text = std::fs::read_to_string(golden.join("VERSION")).unwrap_or_default();
    text.split("(libbeat ")
        .nth(1)
        .and_then(|s| s.split([',', ')']).next())
        .unwrap_or("9.0.0")
        .to_string()
}

/// Compares ours with the outputs of one reference run; returns the failures.
fn compare(
    label: &str,
    cases: &[Value],
    base: &str,
    reference: &dyn Fn(&Value) -> (i32, String),
    ref_version: &str,
) -> Vec<String> {
    let ours_bin = PathBuf::from(env!("CARGO_BIN_EXE_packetbeat"));
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (ref_status, ref_out) = reference(case);
        let (status, out, err) = run_case(&ours_bin, base, case);
        if status != ref_status {
            failures.push(format!(
                "{label} {name}: exit {status}, reference {ref_status} (stderr: {})",
                err.trim()
            ));
            continue;
        }
        let ref_out = ref_out.replace(ref_version, packetbeat::BEAT_VERSION);
        if ref_out.trim().is_empty() || out.trim().is_empty() {
            if ref_out.trim() != out.trim() {
                failures.push(format!(
                    "{label} {name}: output {} bytes, reference {} bytes",
                    out.len(),
                    ref_out.len()
                ));
            }
            continue;
        }
        let r: Value = serde_json::from_str(&ref_out)
            .unwrap_or_else(|e| panic!("{label} {name}: reference output is not JSON: {e}"));
        let o: Value = match serde_json::from_str(&out) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{label} {name}: our output is not JSON: {e}"));
                continue;
            }
        };
        if r != o {
            let mut d = Vec::new();
            diff("", &r, &o, &mut d);
            failures.push(format!("{label} {name}:\n    {}", d.join("\n    ")));
        } else if out != ref_out {
            // Equal values, other text: Go's layout (key order, indentation, escaping) differs.
            let at = out
                .bytes()
                .zip(ref_out.bytes())
                .position(|(a, b)| a != b)
                .unwrap_or(out.len().min(ref_out.len()));
            failures.push(format!(
                "{label} {name}: same JSON value, different text from byte {at}"
            ));
        }
    }
    failures
}

#[test]
fn export_equals_reference() {
    let default_golden = manifest().join("tests/golden/export");
    let golden = std::env::var_os("EXPORT_GOLDEN")
        .map(PathBuf::from)
        .unwrap_or_else(|| default_golden.clone());
    let spec: Value =
        serde_json::from_str(&std::fs::read_to_string(default_golden.join("cases.json")).unwrap())
            .unwrap();
    let base = spec["base"].as_str().unwrap();
    let cases = spec["cases"].as_array().unwrap();
    let status: Value =
        serde_json::from_str(&std::fs::read_to_string(golden.join("status.json")).unwrap())
            .unwrap();
    let ref_version = reference_version(&default_golden);

    let committed = |case: &Value| {
        let name = case["name"].as_str().unwrap();
        let out = std::fs::read_to_string(golden.join(format!("{name}.stdout")))
            .unwrap_or_else(|e| panic!("{name}.stdout: {e} (scripts/export-golden --regen)"));
        (
            status[name].as_i64().expect("status of every case") as i32,
            out,
        )
    };
    let mut failures = compare("golden", cases, base, &committed, &ref_version);

    // A fresh run of the reference the outputs were captured with, when it is built.
    let version_text = std::fs::read_to_string(default_golden.join("VERSION")).unwrap_or_default();
    let pin = version_text.split_whitespace().nth(1).unwrap_or("none");
    let fresh = Some(
        manifest()
            .join(".cache/reference-packetbeat")
            .join(pin)
            .join("packetbeat"),
    )
    .filter(|p| p.is_file());
    match fresh {
        Some(bin) => {
            let run = |case: &Value| {
                let (s, o, _) = run_case(&bin, base, case);
                (s, o)
            };
            failures.extend(compare("fresh reference", cases, base, &run, &ref_version));
        }
        None => eprintln!(
            "the reference binary is not built (scripts/reference-packetbeat): compared with the committed outputs only"
        ),
    }
    assert!(
        failures.is_empty(),
        "{} difference(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// `--dir` writes `template/<name>.json` and `policy/<name>.json` instead of printing.
#[test]
fn export_to_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("packetbeat.yml");
    std::fs::write(&cfg, "output.console.enabled: true\n").unwrap();
    let out_dir = tmp.path().join("out");
    for what in ["template", "ilm-policy"] {
        let o = Command::new(env!("CARGO_BIN_EXE_packetbeat"))
            .args(["export", what, "--dir"])
            .arg(&out_dir)
            .arg("-c")
            .arg(&cfg)
            .arg("--strict.perms=false")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stdout).starts_with("Writing to directory "));
    }
    let t: Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join(format!(
            "template/packetbeat-{}.json",
            packetbeat::BEAT_VERSION
        )))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        t["template"]["settings"]["index"]["lifecycle"]["name"],
        "packetbeat"
    );
    let p: Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("policy/packetbeat.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        p["policy"]["phases"]["hot"]["actions"]["rollover"]["max_age"],
        "30d"
    );
}
