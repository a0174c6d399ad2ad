//! A real RabbitMQ (Debian's rabbitmq-server) driven by pika (tests/amqp/client.py), captured
//! with tcpdump and replayed: the queue declared, a publish and the basic.get that takes it,
//! a basic.get on the empty queue, a 300 KB message published and delivered over several body
//! frames, its ack, and a passive declare of a missing queue that the broker answers with
//! channel.close 404 NOT_FOUND, each reported as the client saw it.
//!
//! The broker runs as this user with its own node name, ports, epmd, cookie, database and
//! logs in a temp dir, on loopback.

mod common;

use serde_json::Value;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The broker's Erlang VM: stopped by its pid file (the start script does not pass signals on).
struct Broker {
    script: Killed,
    pid_file: std::path::PathBuf,
    pid: Option<i32>,
}

impl Broker {
    fn stop(&mut self) {
        let pid = self.pid.take().or_else(|| {
            std::fs::read_to_string(&self.pid_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
        });
        if let Some(pid) = pid {
            unsafe { libc_kill(pid, 15) };
            let start = Instant::now();
            while Path::new(&format!("/proc/{pid}")).exists()
                && start.elapsed() < Duration::from_secs(20)
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            if Path::new(&format!("/proc/{pid}")).exists() {
                unsafe { libc_kill(pid, 9) };
            }
        }
        let _ = self.script.0.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn str_at<'a>(e: &'a Value, path: &str) -> &'a str {
    common::get(e, path)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{path} missing in {e}"))
}

fn u64_at(e: &Value, path: &str) -> u64 {
    common::get(e, path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{path} missing in {e}"))
}

#[test]
fn rabbitmq_session() {
    let have_server = Path::new(SERVER).exists().then_some(());
    if common::require_or_skip(have_server, "rabbitmq-server", common::HOW_DEPS).is_none()
        || common::require_or_skip(common::on_path("epmd"), "epmd (erlang)", common::HOW_DEPS)
            .is_none()
        || common::require_or_skip(common::on_path("tcpdump"), "tcpdump", common::HOW_DEPS)
            .is_none()
    {
        return;
    }
    let pika = Command::new("python3")
        .args(["-c", "import pika"])
        .status()
        .is_ok_and(|s| s.success())
        .then_some(());
    if common::require_or_skip(pika, "python package pika", common::HOW_DEPS).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (port, dist_port, epmd_port) = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    std::fs::write(dir.path().join("enabled_plugins"), "[].\n").unwrap();
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let _epmd = Killed(
        Command::new("epmd")
            .args(["-port", &epmd_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let p = |name: &str| dir.path().join(name);
    let pid_file = p("rabbit.pid");
    let mut broker = Broker {
        script: Killed(
            Command::new(SERVER)
                .env("HOME", dir.path())
                .env("ERL_EPMD_PORT", epmd_port.to_string())
                .env("RABBITMQ_NODENAME", format!("pbtest{port}@localhost"))
                .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
                .env("RABBITMQ_NODE_PORT", port.to_string())
                .env("RABBITMQ_DIST_PORT", dist_port.to_string())
                .env("RABBITMQ_MNESIA_BASE", p("mnesia"))
                .env("RABBITMQ_LOG_BASE", p("log"))
                .env("RABBITMQ_LOGS", "-")
                .env("RABBITMQ_ENABLED_PLUGINS_FILE", p("enabled_plugins"))
                .env("RABBITMQ_CONFIG_FILE", p("rabbitmq"))
                .env("RABBITMQ_ADVANCED_CONFIG_FILE", p("advanced.config"))
                .env("RABBITMQ_CONF_ENV_FILE", p("rabbitmq-env.conf"))
                .env("RABBITMQ_PID_FILE", &pid_file)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        ),
        pid_file: pid_file.clone(),
        pid: None,
    };
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "rabbitmq-server did not listen: {}",
            std::fs::read_to_string(p("server.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    broker.pid = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok());

    let pcap = p("amqp.pcap");
    let dump = common::LoopbackCapture::start(&pcap, &format!("tcp port {port}"));
    let client = common::output_within(
        &mut Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/amqp/client.py"))
            .arg(port.to_string()),
        common::PROGRAM_LIMIT,
    );
    assert!(
        client.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&client.stderr)
    );
    let truth: Value = serde_json::from_slice(&client.stdout).unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    dump.stop();
    broker.stop();

    let cfg = format!(
        "packetbeat.protocols:\n  - type: amqp\n    ports: [{port}]\n    send_request: true\n    send_response: true\n"
    );
    let run = common::run_capture(&pcap, &cfg, &[]);
    let ev = &run.events;
    let methods: Vec<&str> = ev.iter().map(|e| str_at(e, "method")).collect();
    let by = |m: &str| -> Vec<&Value> { ev.iter().filter(|e| str_at(e, "method") == m).collect() };
    let one = |m: &str| -> &Value {
        let found = by(m);
        assert_eq!(found.len(), 1, "{m}: {methods:?} {}", run.stderr);
        found[0]
    };
    for e in ev {
        assert_eq!(str_at(e, "type"), "amqp");
        assert_eq!(str_at(e, "network.protocol"), "amqp");
    }

    // queue.declare pb_test, answered.
    let declares = by("queue.declare");
    assert_eq!(
        declares.len(),
        1,
        "the passive declare became the close: {methods:?}"
    );
    let d = declares[0];
    assert_eq!(str_at(d, "amqp.queue"), truth["queue"].as_str().unwrap());
    assert_eq!(
        u64_at(d, "amqp.message-count"),
        truth["declared_messages"].as_u64().unwrap()
    );
    assert_eq!(str_at(d, "status"), "OK");
    assert_eq!(str_at(d, "request"), "queue.declare pb_test");
    assert_eq!(str_at(d, "response"), "OK");
    assert_eq!(u64_at(d, "destination.port"), u64::from(port));

    // Two publishes: the small one with its properties, the big one cut at max_body_length.
    let pubs = by("basic.publish");
    assert_eq!(pubs.len(), 2, "{methods:?}");
    assert_eq!(str_at(pubs[0], "request"), "hello amqp");
    assert_eq!(u64_at(pubs[0], "source.bytes"), 10);
    assert_eq!(str_at(pubs[0], "amqp.routing-key"), "pb_test");
    assert_eq!(str_at(pubs[0], "amqp.content-type"), "text/plain");
    assert_eq!(str_at(pubs[0], "amqp.delivery-mode"), "persistent");
    assert_eq!(str_at(pubs[0], "amqp.headers.origin"), "pika");
    let big = truth["big_len"].as_u64().unwrap();
    assert_eq!(u64_at(pubs[1], "source.bytes"), big);
    assert_eq!(
        str_at(pubs[1], "request"),
        format!("{} [...]", "x".repeat(1000))
    );

    // basic.get that found the message, then the empty queue.
    let get = one("basic.get");
    assert_eq!(str_at(get, "response"), truth["got"].as_str().unwrap());
    assert_eq!(
        u64_at(get, "amqp.message-count"),
        truth["got_remaining"].as_u64().unwrap()
    );
    assert_eq!(u64_at(get, "destination.bytes"), 10);
    assert!(truth["get_empty"].as_bool().unwrap());
    let empty = one("basic.get-empty");
    assert_eq!(str_at(empty, "status"), "OK");
    assert_eq!(str_at(empty, "event.action"), "amqp.basic.get-empty");
    assert_eq!(str_at(empty, "amqp.queue"), "pb_test");
    assert_eq!(str_at(empty, "request"), "basic.get pb_test");

    // The consumer: consume-ok, the delivery over several body frames, its ack, the cancel.
    let delivered = truth["delivered"].as_array().unwrap();
    assert_eq!(delivered.len(), 1);
    let tag = delivered[0]["consumer_tag"].as_str().unwrap();
    let consume = one("basic.consume");
    assert_eq!(str_at(consume, "amqp.consumer-tag"), tag);
    let del = one("basic.deliver");
    assert_eq!(str_at(del, "amqp.consumer-tag"), tag);
    assert_eq!(
        u64_at(del, "amqp.delivery-tag"),
        delivered[0]["delivery_tag"].as_u64().unwrap()
    );
    assert_eq!(
        u64_at(del, "destination.bytes"),
        delivered[0]["len"].as_u64().unwrap()
    );
    assert_eq!(
        str_at(del, "response"),
        format!("{} [...]", "x".repeat(1000))
    );
    assert_eq!(u64_at(del, "source.port"), u64_at(d, "source.port"));
    let ack = one("basic.ack");
    assert_eq!(
        u64_at(ack, "amqp.delivery-tag"),
        delivered[0]["delivery_tag"].as_u64().unwrap()
    );
    assert_eq!(str_at(one("basic.cancel"), "amqp.consumer-tag"), tag);

    // The passive declare of a missing queue: the broker's channel.close, answered by the
    // client's close-ok.
    let closed = &truth["closed"];
    let close = one("channel.close");
    assert_eq!(str_at(close, "status"), "Error");
    assert_eq!(
        u64_at(close, "amqp.reply-code"),
        closed["code"].as_u64().unwrap()
    );
    assert_eq!(u64_at(close, "amqp.reply-code"), 404);
    assert_eq!(
        str_at(close, "amqp.reply-text"),
        closed["text"].as_str().unwrap()
    );
    assert!(str_at(close, "amqp.reply-text").starts_with("NOT_FOUND"));
    assert_eq!(u64_at(close, "amqp.class-id"), 50);
    assert_eq!(u64_at(close, "amqp.method-id"), 10);
    assert_eq!(
        u64_at(close, "source.port"),
        u64::from(port),
        "the broker closed it"
    );
    assert!(common::get(close, "error.message").is_none());
    // Hidden by default: the connection set-up and the closes without an error.
    assert!(
        !methods.iter().any(|m| m.starts_with("connection.")),
        "{methods:?}"
    );
    assert_eq!(ev.len(), 10, "{methods:?}");
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
