//! Where the log goes, as libbeat decides it: files under `path.logs` by default, stderr with
//! `-e`, `logging.to_stderr` or `--environment systemd|container`, nowhere with
//! `logging.to_files: false`.

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Output};

fn run(home: &Path, pcap: &Path, config: &str, args: &[&str]) -> Output {
    let cfg = home.join("packetbeat.yml");
    std::fs::write(
        &cfg,
        format!(
            "packetbeat.protocols:\n- type: http\n  ports: [80]\noutput.file: {{path: {}}}\n{config}",
            home.join("out").display()
        ),
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_packetbeat"))
        .args(["-t", "-I"])
        .arg(pcap)
        .arg("--path.home")
        .arg(home)
        .arg("--strict.perms=false")
        .args(args)
        .output()
        .unwrap()
}

fn log_files(home: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(home.join("logs"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn files_under_path_logs_by_default_rotated_on_startup() {
    let Some(pcap) = shared_or_skip("pcaps/http_post.pcap") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let day = chrono::Local::now().format("%Y%m%d").to_string();
    let o = run(h, &pcap, "", &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(log_files(h), [format!("packetbeat-{day}.ndjson")]);
    let text =
        std::fs::read_to_string(h.join("logs").join(format!("packetbeat-{day}.ndjson"))).unwrap();
    let summary = text
        .lines()
        .find(|l| l.contains("events: 1 published"))
        .unwrap_or_else(|| panic!("no exit summary in the log file:\n{text}"));
    let v: serde_json::Value = serde_json::from_str(summary).unwrap();
    assert_eq!(v["log.level"], "info");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(h.join("logs").join(format!("packetbeat-{day}.ndjson")))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // The next start goes on in -1; keepfiles: 1 keeps it and one backup.
    assert!(run(h, &pcap, "", &[]).status.success());
    assert!(run(h, &pcap, "logging.files.keepfiles: 1\n", &[])
        .status
        .success());
    assert_eq!(
        log_files(h),
        [
            format!("packetbeat-{day}-1.ndjson"),
            format!("packetbeat-{day}-2.ndjson")
        ]
    );
}

#[test]
fn stderr_with_e_or_environment_and_nowhere_when_files_are_off() {
    let Some(pcap) = shared_or_skip("pcaps/http_post.pcap") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let o = run(h, &pcap, "", &["-e"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("events: 1 published"));
    let o = run(h, &pcap, "", &["--environment", "systemd"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("events: 1 published"));
    let o = run(h, &pcap, "logging.to_files: false\n", &[]);
    assert!(o.status.success());
    assert!(o.stderr.is_empty());
    assert!(log_files(h).is_empty(), "{:?}", log_files(h));
    let o = run(h, &pcap, "", &["--environment", "moon"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid environment \"moon\""));
    // A log directory that cannot be made is an error at start.
    std::fs::write(h.join("blocker"), b"").unwrap();
    let o = run(
        h,
        &pcap,
        "logging.files.path: ${path.home}/blocker/logs\n",
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("log directory"));
}
