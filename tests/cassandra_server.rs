//! A real single-node Cassandra (cassandra-all from Maven Central, run on Java 17 from the
//! local Maven repository that scripts/install-deps fills) driven by the Python driver
//! (cassandra-driver from PyPI) over CQL v4, captured with tcpdump on loopback and replayed.
//! The events are checked against what the client saw: each query once, its row count, the
//! server's error, USE, PREPARE/EXECUTE, BATCH, a traced query, paging, the server's
//! SCHEMA_CHANGE pushes; then a session compressed with snappy (decoded with
//! `compressor: snappy`) and one with LZ4 (headers only).

mod common;

use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CASSANDRA: &str = "org.apache.cassandra:cassandra-all:5.0.2";

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ok(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The server's class path, resolved offline from the local Maven repository.
fn classpath(dir: &Path) -> Option<String> {
    let (g, rest) = CASSANDRA.split_once(':')?;
    let (a, v) = rest.split_once(':')?;
    let pom = format!(
        "<project xmlns=\"http://maven.apache.org/POM/4.0.0\"><modelVersion>4.0.0</modelVersion>\
         <groupId>local</groupId><artifactId>cp</artifactId><version>1</version><dependencies>\
         <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version>\
         </dependency></dependencies></project>"
    );
    std::fs::write(dir.join("pom.xml"), pom).ok()?;
    let out = dir.join("cp.txt");
    let built = ok(Command::new("mvn")
        .current_dir(dir)
        .args(["-q", "-o", "-B", "dependency:build-classpath"])
        .arg(format!("-Dmdep.outputFile={}", out.display())));
    if !built {
        return None;
    }
    let cp = std::fs::read_to_string(out).ok()?;
    let home = std::env::var("HOME").ok()?;
    let jar = format!(
        "{home}/.m2/repository/{}/{a}/{v}/{a}-{v}.jar",
        g.replace('.', "/")
    );
    Path::new(&jar)
        .exists()
        .then(|| format!("{}:{jar}", cp.trim()))
}

/// The module openings Cassandra's jvm17-server.options asks of Java 17.
const JAVA17: &[&str] = &[
    "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-exports=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-exports=java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports=java.sql/java.sql=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.math=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.net=ALL-UNNAMED",
];

/// The client: one session, every step's outcome as the driver saw it, as JSON.
const CLIENT: &str = r#"
import json, sys
from cassandra.cluster import Cluster
from cassandra.query import BatchStatement, SimpleStatement
port, comp, ks = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = Cluster(['127.0.0.1'], port=port, protocol_version=4,
            compression=(comp if comp != 'none' else False))
s = c.connect()
out = {"rows": {}, "errors": {}}
def q(cql, **kw):
    try:
        out["rows"][cql] = len(list(s.execute(cql, **kw)))
    except Exception as e:
        out["errors"][cql] = str(e)
q("CREATE KEYSPACE %s WITH replication = {'class':'SimpleStrategy','replication_factor':1}" % ks)
q("CREATE TABLE %s.users (id int PRIMARY KEY, name text, tags set<text>, attrs map<text,int>)" % ks)
for i in range(3):
    q("INSERT INTO %s.users (id, name, tags, attrs) VALUES (%d, 'user%d', {'a','b'}, {'k':%d})" % (ks, i, i, i))
q("SELECT * FROM %s.users" % ks)
q("SELECT * FROM %s.nosuchtable" % ks)
q("USE %s" % ks)
p = s.prepare("SELECT name FROM %s.users WHERE id = ?" % ks)
out["executed"] = len(list(s.execute(p, [1])))
b = BatchStatement()
b.add(SimpleStatement("INSERT INTO %s.users (id, name) VALUES (10, 'x')" % ks))
s.execute(b)
r = s.execute("SELECT id FROM %s.users" % ks, trace=True)
out["traced"] = len(list(r))
out["paged"] = len(list(s.execute(SimpleStatement("SELECT name FROM %s.users" % ks, fetch_size=2))))
c.shutdown()
print(json.dumps(out))
"#;

fn get<'a>(e: &'a Value, k: &str) -> Option<&'a Value> {
    common::get(e, k)
}

fn s<'a>(e: &'a Value, k: &str) -> Option<&'a str> {
    get(e, k).and_then(Value::as_str)
}

fn n(e: &Value, k: &str) -> Option<i64> {
    get(e, k).and_then(Value::as_i64)
}

#[test]
fn cassandra_server_session() {
    let dir = tempfile::tempdir().unwrap();
    let have_tools = ["java", "mvn", "tcpdump", "python3"]
        .iter()
        .all(|t| ok(Command::new("sh").arg("-c").arg(format!("command -v {t}"))));
    let have_driver = have_tools
        && ok(Command::new("python3").args(["-c", "import cassandra.cluster, lz4, snappy"]));
    let cp = if have_driver {
        classpath(dir.path())
    } else {
        None
    };
    let Some(cp) = cp else {
        let why = "java, mvn, tcpdump, python3 with cassandra-driver, lz4 and python-snappy, \
                   and cassandra-all in ~/.m2";
        if common::ci() {
            panic!("{why} are needed: run scripts/install-deps");
        }
        eprintln!("skipping: {why} are needed (scripts/install-deps)");
        return;
    };

    let (cql, storage, jmx) = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let d = dir.path().display();
    let yaml = format!(
        "cluster_name: pbtest\nnum_tokens: 1\n\
         partitioner: org.apache.cassandra.dht.Murmur3Partitioner\n\
         commitlog_sync: periodic\ncommitlog_sync_period: 10000ms\n\
         endpoint_snitch: SimpleSnitch\n\
         seed_provider:\n  - class_name: org.apache.cassandra.locator.SimpleSeedProvider\n\
         \x20   parameters:\n      - seeds: \"127.0.0.1:{storage}\"\n\
         listen_address: 127.0.0.1\nrpc_address: 127.0.0.1\nstorage_port: {storage}\n\
         native_transport_port: {cql}\nstart_native_transport: true\n\
         data_file_directories: [{d}/data]\ncommitlog_directory: {d}/commitlog\n\
         saved_caches_directory: {d}/saved_caches\nhints_directory: {d}/hints\n\
         cdc_raw_directory: {d}/cdc\n"
    );
    std::fs::write(dir.path().join("cassandra.yaml"), yaml).unwrap();
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let _server = Killed(
        Command::new("java")
            .args(["-Xms512m", "-Xmx512m"])
            .args(JAVA17)
            .arg(format!("-Dcassandra.config=file://{d}/cassandra.yaml"))
            .arg(format!("-Dcassandra.storagedir={d}"))
            .arg(format!("-Dcassandra.jmx.local.port={jmx}"))
            .args([
                "-Dcassandra-foreground=yes",
                "-Dcassandra.skip_wait_for_gossip_to_settle=0",
                "-cp",
                &cp,
                "org.apache.cassandra.service.CassandraDaemon",
            ])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", cql)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "Cassandra did not listen on {cql}: {}",
            std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let pcap = dir.path().join("cassandra.pcap");
    let dump = common::LoopbackCapture::start(&pcap, &format!("tcp port {cql}"));
    let client = dir.path().join("client.py");
    std::fs::write(&client, CLIENT).unwrap();
    let mut truth = Vec::new();
    for (comp, ks) in [
        ("none", "pbplain"),
        ("snappy", "pbsnappy"),
        ("lz4", "pblz4"),
    ] {
        let out = common::output_within(
            &mut Command::new("python3")
                .arg(&client)
                .args([&cql.to_string(), comp, ks]),
            common::PROGRAM_LIMIT,
        );
        assert!(
            out.status.success(),
            "client ({comp}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let t: Value = serde_json::from_slice(out.stdout.trim_ascii()).unwrap();
        truth.push((ks, t));
    }
    std::thread::sleep(Duration::from_millis(1000));
    dump.stop();

    let cfg = format!(
        "packetbeat.protocols:\n  - type: cassandra\n    ports: [{cql}]\n    compressor: snappy\n"
    );
    let run = common::run_capture(&pcap, &cfg, &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let ev = &run.events;
    let by_query = |q: &str| -> Vec<&Value> {
        ev.iter()
            .filter(|e| s(e, "cassandra.request.query") == Some(q))
            .collect()
    };
    for (ks, t) in &truth[..2] {
        // Every query the client ran, once, with the rows the client got.
        for (q, rows) in t["rows"].as_object().unwrap() {
            let found = by_query(q);
            assert_eq!(found.len(), 1, "{q}: {:?}", run.stderr);
            let e = found[0];
            assert_eq!(s(e, "status"), Some("OK"), "{q}");
            assert_eq!(
                n(e, "cassandra.response.headers.stream"),
                n(e, "cassandra.request.headers.stream")
            );
            if let Some(num) = n(e, "cassandra.response.result.rows.num_rows") {
                assert_eq!(num, rows.as_i64().unwrap(), "{q}");
            }
        }
        let select = by_query(&format!("SELECT * FROM {ks}.users"))[0];
        assert_eq!(s(select, "cassandra.response.result.type"), Some("rows"));
        assert_eq!(
            n(select, "cassandra.response.result.rows.num_rows"),
            Some(3)
        );
        assert_eq!(
            s(select, "cassandra.response.result.rows.meta.keyspace"),
            Some(*ks)
        );
        assert_eq!(
            s(select, "cassandra.response.result.rows.meta.table"),
            Some("users")
        );
        assert_eq!(
            n(select, "cassandra.response.result.rows.meta.col_count"),
            Some(4)
        );
        let create = by_query(&format!(
            "CREATE TABLE {ks}.users (id int PRIMARY KEY, name text, tags set<text>, attrs map<text,int>)"
        ))[0];
        assert_eq!(
            s(create, "cassandra.response.result.type"),
            Some("schemaChanged")
        );
        assert_eq!(
            s(create, "cassandra.response.result.schema_change.object"),
            Some("users")
        );
        // The server's error, as the client got it.
        for (q, msg) in t["errors"].as_object().unwrap() {
            let e = by_query(q)[0];
            assert_eq!(s(e, "status"), Some("Error"));
            assert_eq!(s(e, "cassandra.response.headers.op"), Some("ERROR"));
            assert_eq!(n(e, "cassandra.response.error.code"), Some(0x2200));
            assert_eq!(s(e, "cassandra.response.error.type"), Some("errInvalid"));
            // The driver quotes the server's message: `… message="table … does not exist"`.
            let ours = s(e, "cassandra.response.error.msg").unwrap();
            let theirs = msg.as_str().unwrap();
            assert!(
                theirs.contains(&format!("message=\"{ours}\"")),
                "{q}: {ours} / {theirs}"
            );
        }
        let used = by_query(&format!("USE {ks}"))[0];
        assert_eq!(
            s(used, "cassandra.response.result.type"),
            Some("set_keyspace")
        );
        assert_eq!(s(used, "cassandra.response.result.keyspace"), Some(*ks));
        // PREPARE and EXECUTE of one statement, on this keyspace's table.
        let prepared: Vec<&Value> = ev
            .iter()
            .filter(|e| {
                s(e, "cassandra.response.result.type") == Some("prepared")
                    && s(e, "cassandra.response.result.prepared.req_meta.keyspace") == Some(*ks)
            })
            .collect();
        assert_eq!(prepared.len(), 1);
        let p = prepared[0];
        assert_eq!(s(p, "cassandra.request.headers.op"), Some("PREPARE"));
        assert_eq!(
            get(
                p,
                "cassandra.response.result.prepared.req_meta.pkey_columns"
            ),
            Some(&serde_json::json!([0]))
        );
        assert_eq!(
            s(p, "cassandra.response.result.prepared.resp_meta.table"),
            Some("users")
        );
        let executed: Vec<&Value> = ev
            .iter()
            .filter(|e| {
                s(e, "cassandra.request.headers.op") == Some("EXECUTE")
                    && s(e, "cassandra.response.result.rows.meta.keyspace") == Some(*ks)
            })
            .collect();
        assert_eq!(executed.len(), 1);
        assert_eq!(
            n(executed[0], "cassandra.response.result.rows.num_rows"),
            t["executed"].as_i64()
        );
        // The traced query: its response starts with the tracing id.
        let traced = by_query(&format!("SELECT id FROM {ks}.users"));
        assert_eq!(traced.len(), 1);
        // Packetbeat names a flag alone; Compress and Tracing together are `UnknownFlag_3`.
        let flags = s(traced[0], "cassandra.request.headers.flags");
        assert!(
            matches!(flags, Some("Tracing" | "UnknownFlag_3")),
            "{flags:?}"
        );
        assert_eq!(
            n(traced[0], "cassandra.response.result.rows.num_rows"),
            t["traced"].as_i64()
        );
        // Paging: one event per page, the rows adding up to what the client read.
        let pages = by_query(&format!("SELECT name FROM {ks}.users"));
        let total: i64 = pages
            .iter()
            .map(|e| n(e, "cassandra.response.result.rows.num_rows").unwrap())
            .sum();
        assert!(pages.len() >= 2, "{} pages", pages.len());
        assert_eq!(Some(total), t["paged"].as_i64());
        assert!(pages
            .iter()
            .any(|e| get(e, "cassandra.response.result.rows.meta.paging_state").is_some()));
        // The server pushed the keyspace's creation to the control connection.
        assert!(ev.iter().any(|e| {
            get(e, "cassandra.no_request") == Some(&Value::Bool(true))
                && s(e, "cassandra.response.event.type") == Some("SCHEMA_CHANGE")
                && s(e, "cassandra.response.event.schema_change.keyspace") == Some(*ks)
        }));
    }
    // BATCH: a void result (one per session).
    let batches = ev
        .iter()
        .filter(|e| s(e, "cassandra.request.headers.op") == Some("BATCH"))
        .filter(|e| s(e, "cassandra.response.result.type") == Some("void"))
        .count();
    assert_eq!(batches, 2, "decoded batches (plain and snappy)");
    // The snappy session's frames were compressed.
    assert!(ev.iter().any(|e| {
        s(e, "cassandra.request.headers.flags") == Some("Compress")
            && s(e, "cassandra.request.query")
                .is_some_and(|q| q.starts_with("SELECT * FROM pbsnappy.users"))
    }));
    // LZ4: transactions with their headers, no body decoded.
    let lz4: Vec<&Value> = ev
        .iter()
        .filter(|e| s(e, "cassandra.request.headers.flags") == Some("Compress"))
        .filter(|e| get(e, "cassandra.request.query").is_none())
        .filter(|e| s(e, "cassandra.request.headers.op") == Some("QUERY"))
        .collect();
    let lz4_queries = truth[2].1["rows"].as_object().unwrap().len()
        + truth[2].1["errors"].as_object().unwrap().len();
    assert!(lz4.len() >= lz4_queries, "{} LZ4 queries", lz4.len());
    assert!(lz4
        .iter()
        .all(|e| get(e, "cassandra.response.result").is_none()));
}
