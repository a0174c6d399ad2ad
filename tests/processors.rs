//! Processors through the real binary on Packetbeat's own captures: the stock `packetbeat.yml`
//! chain (its cloud metadata host and Docker socket pointed at servers this test runs on
//! loopback and in a temp dir), a `drop_event` filter, global `drop_fields` of builtins,
//! `timestamp.precision`, and bad configs failing `test config` with the processor and key.

mod common;

use common::{run_capture, shared_or_skip};
use serde_json::Value;
use std::io::{Read, Write};
use std::process::Command;

const HTTP: &str = "packetbeat.protocols:\n- type: http\n  ports: [80]\n";

/// A loopback server answering the AWS instance metadata paths (IMDSv2).
fn metadata_server() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let body = if head.starts_with("PUT /latest/api/token ") {
                "TOKEN".to_string()
            } else if head.starts_with("GET /latest/dynamic/instance-identity/document ")
                && head.contains("X-aws-ec2-metadata-token: TOKEN")
            {
                r#"{"accountId":"111111111111","availabilityZone":"us-east-1c","imageId":"ami-abcd1234","instanceId":"i-11111111","instanceType":"t2.medium","region":"us-east-1"}"#.to_string()
            } else {
                let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
                continue;
            };
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

/// A Docker API on a Unix socket listing one container.
fn docker_socket(dir: &std::path::Path, id: &str) -> std::path::PathBuf {
    let path = dir.join("docker.sock");
    let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let body = format!(
        r#"[{{"Id":"{id}","Names":["/minitwit"],"Image":"python:3.12","Labels":{{"app.tier":"web"}}}}]"#
    );
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        }
    });
    path
}

/// The `processors` list of the stock packetbeat.yml, with `add_cloud_metadata` and
/// `add_docker_metadata` given the test's endpoints (and the docker processor a field to match).
fn stock_chain(metadata_host: &str, socket: &std::path::Path) -> String {
    let yml = shared_or_skip("reference/packetbeat/packetbeat.yml").expect("checked by caller");
    let text = std::fs::read_to_string(yml).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let mut procs = doc["processors"]
        .as_sequence()
        .expect("stock processors")
        .clone();
    let mut found = (false, false);
    for p in &mut procs {
        let Some(m) = p.as_mapping_mut() else {
            continue;
        };
        if m.contains_key("add_cloud_metadata") {
            let mut c = serde_yaml::Mapping::new();
            c.insert("host".into(), metadata_host.into());
            c.insert("providers".into(), serde_yaml::to_value(["aws"]).unwrap());
            m.insert("add_cloud_metadata".into(), c.into());
            found.0 = true;
        }
        if m.contains_key("add_docker_metadata") {
            let mut c = serde_yaml::Mapping::new();
            c.insert("host".into(), format!("unix://{}", socket.display()).into());
            c.insert(
                "match_fields".into(),
                serde_yaml::to_value(["fields.container_id"]).unwrap(),
            );
            m.insert("add_docker_metadata".into(), c.into());
            found.1 = true;
        }
    }
    assert_eq!(
        found,
        (true, true),
        "the stock chain has both metadata processors"
    );
    let mut root = serde_yaml::Mapping::new();
    root.insert("processors".into(), serde_yaml::Value::Sequence(procs));
    serde_yaml::to_string(&root).unwrap()
}

fn status_code(e: &Value) -> Option<u64> {
    e["http"]["response"]["status_code"].as_u64()
}

#[test]
fn stock_chain_enriches_every_event() {
    let Some(pcap) = shared_or_skip("pcaps/http_minitwit.pcap") else {
        return;
    };
    let Some(_) = shared_or_skip("reference/packetbeat/packetbeat.yml") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let id = "f".repeat(64);
    let sock = docker_socket(dir.path(), &id);
    let chain = stock_chain(&metadata_server(), &sock);
    let cfg = format!(
        "{HTTP}  include_body_for: [text/html]\n  fields: {{container_id: '{id}'}}\n{chain}"
    );
    let run = run_capture(&pcap, &cfg, &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(!run.events.is_empty(), "{}", run.stderr);
    let hostname = gethostname_lower();
    let mut with_mime = 0;
    for e in &run.events {
        // add_host_metadata (the `else` branch: no `forwarded` tag).
        assert_eq!(e["host"]["hostname"], hostname.as_str(), "{e}");
        assert_eq!(e["host"]["name"], hostname.as_str());
        assert_eq!(e["host"]["os"]["type"], "linux");
        assert!(e["host"]["architecture"].is_string());
        // add_cloud_metadata from the loopback server.
        assert_eq!(e["cloud"]["provider"], "aws");
        assert_eq!(e["cloud"]["instance"]["id"], "i-11111111");
        assert_eq!(e["cloud"]["region"], "us-east-1");
        // add_docker_metadata from the socket.
        assert_eq!(e["container"]["id"], id.as_str());
        assert_eq!(e["container"]["name"], "minitwit");
        assert_eq!(e["container"]["image"]["name"], "python:3.12");
        assert_eq!(e["container"]["labels"]["app_tier"], "web");
        if e["http"]["response"]["body"]["content"].is_string() {
            assert_eq!(
                e["http"]["response"]["mime_type"], "text/html; charset=utf-8",
                "{e}"
            );
            with_mime += 1;
        }
    }
    assert!(with_mime > 0, "some responses carry an HTML body");

    // The same chain on events tagged `forwarded` drops `host` instead.
    let cfg = format!(
        "{HTTP}  tags: [forwarded]\n{}",
        stock_chain(&metadata_server(), &sock)
    );
    let run = run_capture(&pcap, &cfg, &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(!run.events.is_empty());
    for e in &run.events {
        assert!(e.get("host").is_none(), "{e}");
        assert_eq!(e["cloud"]["provider"], "aws");
    }
}

fn gethostname_lower() -> String {
    let out = Command::new("hostname").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_lowercase()
}

#[test]
fn drop_event_builtins_and_precision() {
    let Some(pcap) = shared_or_skip("pcaps/http_minitwit.pcap") else {
        return;
    };
    let base = run_capture(&pcap, HTTP, &[]);
    assert_eq!(base.status, 0, "{}", base.stderr);
    let ok = base
        .events
        .iter()
        .filter(|e| status_code(e) == Some(200))
        .count();
    assert!(
        ok > 0 && ok < base.events.len(),
        "the capture has 200s and others"
    );

    let cfg = format!(
        "{HTTP}timestamp.precision: nanosecond\nprocessors:\n\
         - drop_event.when.equals.http.response.status_code: 200\n\
         - drop_fields: {{fields: [agent.ephemeral_id, host]}}\n"
    );
    let run = run_capture(&pcap, &cfg, &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.events.len(), base.events.len() - ok);
    for e in &run.events {
        assert_ne!(status_code(e), Some(200));
        assert!(e.get("host").is_none());
        assert!(e["agent"].get("ephemeral_id").is_none());
        assert_eq!(e["agent"]["type"], "packetbeat");
        let ts = e["@timestamp"].as_str().unwrap();
        assert_eq!(ts.len(), "2006-01-02T15:04:05.000000000Z".len(), "{ts}");
        let start = e["event"]["start"].as_str().unwrap();
        assert_eq!(start.len(), ts.len(), "{start}");
    }
    // The same instants as at millisecond precision.
    let ms: Vec<String> = base
        .events
        .iter()
        .filter(|e| status_code(e) != Some(200))
        .map(|e| e["@timestamp"].as_str().unwrap().to_string())
        .collect();
    let ns: Vec<String> = run
        .events
        .iter()
        .map(|e| {
            let t = e["@timestamp"].as_str().unwrap();
            format!("{}Z", &t[..23])
        })
        .collect();
    let (mut ms, mut ns) = (ms, ns);
    ms.sort();
    ns.sort();
    assert_eq!(ms, ns);
}

#[test]
fn bad_processor_config_fails_test_config() {
    let dir = tempfile::tempdir().unwrap();
    for (yaml, want) in [
        (
            "processors:\n- drop_fields: {ignore_missing: true}\n",
            "error initializing processors: failed to unpack the drop_fields configuration: missing required field accessing 'processors.0.drop_fields.fields'",
        ),
        (
            "processors:\n- add_tags: {tags: [a]}\n- nope: {}\n",
            "error initializing processors: the processor action nope does not exist.",
        ),
        (
            "processors:\n- drop_event.when.regexp.message: '('\n",
            "error initializing processors: error parsing regexp",
        ),
        (
            "processors:\n- add_host_metadata: {netinfo.enabled: sometimes}\n",
            "type mismatch accessing 'processors.0.add_host_metadata.netinfo.enabled'",
        ),
        (
            "packetbeat.flows:\n  processors:\n  - if.equals.a: 1\n",
            "failed to make if/then/else processor: missing required field accessing 'packetbeat.flows.processors.0.then'",
        ),
        (
            "packetbeat.protocols:\n- type: http\n  ports: [80]\n  processors:\n  - rename: {fields: [{to: b}]}\n",
            "missing required field accessing 'packetbeat.protocols.0.processors.0.rename.fields.0.from'",
        ),
        (
            "processors:\n- script: {lang: javascript, source: 'function process(e) {}'}\n",
            "the processor action script (at 'processors.0.script') is not supported by packetbeat-rs",
        ),
    ] {
        let path = dir.path().join("bad.yml");
        std::fs::write(&path, format!("{yaml}output.console.enabled: true\n")).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_packetbeat"))
            .args(["test", "config", "--strict.perms=false", "-c"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{yaml}: {stderr}");
        assert!(stderr.contains(want), "{yaml}: want {want:?} in {stderr}");
    }
}

#[test]
fn flows_processors_apply_to_flow_events_only() {
    let Some(pcap) = shared_or_skip("pcaps/http_minitwit.pcap") else {
        return;
    };
    let cfg = format!(
        "{HTTP}packetbeat.flows:\n  timeout: 30s\n  period: -1s\n  processors:\n  \
         - add_tags: {{tags: [flowtag]}}\n  - drop_event.when.not.equals.network.transport: tcp\n"
    );
    let run = run_capture(&pcap, &cfg, &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let flows: Vec<&Value> = run.events.iter().filter(|e| e["type"] == "flow").collect();
    let http: Vec<&Value> = run.events.iter().filter(|e| e["type"] == "http").collect();
    assert!(!flows.is_empty() && !http.is_empty());
    for f in &flows {
        assert_eq!(f["tags"], serde_json::json!(["flowtag"]), "{f}");
        assert_eq!(f["network"]["transport"], "tcp");
    }
    for h in &http {
        assert!(h.get("tags").is_none(), "{h}");
    }
}
