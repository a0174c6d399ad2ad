//! A single-node Kafka broker (KRaft, broker and controller in one JVM) on 127.0.0.1 for the
//! output tests, from Apache Kafka's jars that `scripts/install-deps` copies out of Maven
//! Central into `~/.cache/packetbeat-rs/kafka-<version>/libs`; and Kafka's own console consumer
//! to read topics back.

use crate::common::{free_port, on_path, require_or_skip};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const KAFKA_VERSION: &str = "4.1.1";
/// A loaded machine starts a JVM slowly.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// The jars, or `None` (a skip, a failure under CI=true) with how to get them.
pub fn libs() -> Option<PathBuf> {
    require_or_skip(
        on_path("java"),
        "java",
        "bash scripts/install-deps (openjdk-17-jre-headless)",
    )?;
    let home = std::env::var_os("HOME").map(PathBuf::from)?;
    let dir = home.join(format!(".cache/packetbeat-rs/kafka-{KAFKA_VERSION}/libs"));
    let found = dir
        .join(format!("kafka_2.13-{KAFKA_VERSION}.jar"))
        .exists()
        .then_some(dir);
    require_or_skip(
        found,
        &format!("Apache Kafka {KAFKA_VERSION} jars"),
        "bash scripts/install-deps (fetches them with Maven)",
    )
}

pub struct Broker {
    child: Option<Child>,
    pub port: u16,
    libs: PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn classpath(libs: &Path) -> String {
    format!("{}/*", libs.display())
}

/// A Kafka cluster id: 16 random bytes, base64url without padding.
fn cluster_id() -> String {
    let b: [u8; 16] = rand_bytes();
    let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = String::new();
    for byte in b {
        bits = (bits << 8) | byte as u32;
        n += 8;
        while n >= 6 {
            n -= 6;
            out.push(table[((bits >> n) & 63) as usize] as char);
        }
    }
    if n > 0 {
        out.push(table[((bits << (6 - n)) & 63) as usize] as char);
    }
    out
}

fn rand_bytes() -> [u8; 16] {
    let mut b = [0u8; 16];
    let f = std::fs::read("/proc/sys/kernel/random/uuid").unwrap();
    for (i, c) in f
        .iter()
        .filter(|c| c.is_ascii_hexdigit())
        .enumerate()
        .take(32)
    {
        let v = (*c as char).to_digit(16).unwrap() as u8;
        b[i / 2] = (b[i / 2] << 4) | v;
    }
    b
}

impl Broker {
    /// Formats a log directory and starts a broker with `extra` appended to its
    /// server.properties; auto-created topics get 3 partitions.
    pub fn start(libs: &Path, extra: &str) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let cport = loop {
            let p = free_port();
            if p != port {
                break p;
            }
        };
        let listeners = if extra.contains("listeners=") {
            String::new()
        } else {
            format!(
                "listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}\n\
                 advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
                 listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\
                 inter.broker.listener.name=PLAINTEXT\n"
            )
        };
        let extra = extra
            .replace("{port}", &port.to_string())
            .replace("{cport}", &cport.to_string());
        let props = format!(
            "process.roles=broker,controller\nnode.id=1\n\
             controller.quorum.voters=1@127.0.0.1:{cport}\n\
             controller.listener.names=CONTROLLER\n{listeners}\
             log.dirs={}\nnum.partitions=3\nauto.create.topics.enable=true\n\
             offsets.topic.replication.factor=1\ntransaction.state.log.replication.factor=1\n\
             transaction.state.log.min.isr=1\ngroup.initial.rebalance.delay.ms=0\n\
             share.coordinator.state.topic.replication.factor=1\n\
             share.coordinator.state.topic.min.isr=1\n{extra}\n",
            dir.path().join("logs").display()
        );
        std::fs::write(dir.path().join("server.properties"), props).unwrap();
        let mut format = Command::new("java");
        format
            .arg("-cp")
            .arg(classpath(libs))
            // One argument: an id starting with '-' (base64url) would read as a flag.
            .args([
                "kafka.tools.StorageTool",
                "format",
                &format!("--cluster-id={}", cluster_id()),
                "-c",
            ])
            .arg(dir.path().join("server.properties"));
        if let Some(scram) = extra_scram(&extra) {
            format.args(["--add-scram", &scram]);
        }
        let o = format.output().unwrap();
        assert!(
            o.status.success(),
            "kafka-storage format: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let mut b = Broker {
            child: None,
            port,
            libs: libs.to_path_buf(),
            dir,
        };
        b.run();
        b
    }

    /// Starts (again) the broker on the formatted directory and waits until it serves.
    pub fn run(&mut self) {
        let log = self.dir.path().join("server.log");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let before = std::fs::read_to_string(&log).unwrap_or_default().len();
        let child = Command::new("java")
            .args([
                "-Xmx512m",
                "-Xms128m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
            ])
            .arg("-cp")
            .arg(classpath(&self.libs))
            .arg("kafka.Kafka")
            .arg(self.dir.path().join("server.properties"))
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .stdin(Stdio::null())
            .spawn()
            .expect("start java");
        self.child = Some(child);
        let t0 = Instant::now();
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.len() > before && text[before..].contains("Kafka Server started") {
                return;
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("kafka exited ({st}):\n{}", &text[before..]);
            }
            assert!(
                t0.elapsed() < START_TIMEOUT,
                "kafka did not start within {START_TIMEOUT:?}:\n{}",
                &text[before..]
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Bytes in the log segments of `topic`'s partitions (records written by the broker).
    pub fn stored_bytes(&self, topic: &str) -> u64 {
        let Ok(rd) = std::fs::read_dir(self.dir.path().join("logs")) else {
            return 0;
        };
        rd.flatten()
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_prefix(topic)?.strip_prefix('-'))
                    .is_some_and(|p| p.parse::<u32>().is_ok())
            })
            .flat_map(|e| std::fs::read_dir(e.path()).into_iter().flatten().flatten())
            .filter(|f| f.path().extension().is_some_and(|x| x == "log"))
            .map(|f| f.metadata().map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    /// Kills the JVM at once (SIGKILL): requests in flight get no answer.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The records of the topics matching `topic_regex` as the console consumer prints them
    /// (`Partition:N`, headers, key, value, tab-separated), read from the beginning until `count`
    /// records or 60 s of silence; `client_props` is its consumer configuration.
    pub fn consume(&self, topic_regex: &str, count: usize, client_props: &str) -> Vec<String> {
        let props = self.dir.path().join("consumer.properties");
        std::fs::write(&props, client_props).unwrap();
        let o = Command::new("java")
            .args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
            .arg("-cp")
            .arg(classpath(&self.libs))
            .arg("org.apache.kafka.tools.consumer.ConsoleConsumer")
            .args(["--bootstrap-server", &format!("127.0.0.1:{}", self.port)])
            .args(["--include", topic_regex, "--from-beginning"])
            .args([
                "--max-messages",
                &count.to_string(),
                "--timeout-ms",
                "60000",
            ])
            .args([
                "--property",
                "print.partition=true",
                "--property",
                "print.key=true",
                "--property",
                "print.headers=true",
            ])
            .args(["--property", "key.separator=\t"])
            .arg("--consumer.config")
            .arg(&props)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// `# scram=user:password` in the extra properties: the SCRAM credential to format with.
fn extra_scram(extra: &str) -> Option<String> {
    extra.lines().find_map(|l| {
        let (user, pw) = l.strip_prefix("# scram=")?.split_once(':')?;
        Some(format!("SCRAM-SHA-512=[name={user},password={pw}]"))
    })
}
