//! The built-in Kibana dashboards: kibana/8 is what scripts/gen-kibana makes of kibana/spec.yml,
//! and `export dashboard` prints or saves a dashboard's saved objects. (The fields the
//! dashboards use are checked against fields/ and the captures' events in fields_coverage.rs.)

mod common;

use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_packetbeat"))
}

#[test]
fn generated_dashboards_match_the_spec() {
    let python = common::on_path("python3").filter(|_| {
        Command::new("python3")
            .args(["-c", "import yaml"])
            .status()
            .is_ok_and(|s| s.success())
    });
    let Some(python) = common::require_or_skip(python, "python3 with PyYAML", common::HOW_DEPS)
    else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(python)
        .arg(root.join("scripts/gen-kibana"))
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn export_dashboard_prints_and_saves_saved_objects() {
    let out = bin()
        .args(["export", "dashboard", "--id", "packetbeat-http"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let objs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objs.last().unwrap()["type"], "dashboard");
    assert_eq!(
        objs.last().unwrap()["attributes"]["title"],
        "[Packetbeat] HTTP"
    );
    assert!(objs[..objs.len() - 1]
        .iter()
        .all(|o| o["type"] == "visualization"));

    let tmp = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["export", "dashboard", "--id", "packetbeat-dns", "--folder"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let saved = std::fs::read_to_string(tmp.path().join("packetbeat-dns.ndjson")).unwrap();
    assert!(saved.contains("\"[Packetbeat] DNS\""));

    let out = bin()
        .args(["export", "dashboard", "--id", "nosuch"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no dashboard with id 'nosuch'"));
}
