//! Runs the built binary: `test config`, `export config`, `version`, flags and exit codes.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_packetbeat");

/// A temp dir holding one config file (mode 0600, like a safe Beats config).
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(yaml: &str) -> Fixture {
        let f = Fixture {
            dir: tempfile::tempdir().unwrap(),
        };
        f.write("packetbeat.yml", yaml);
        f
    }

    fn write(&self, name: &str, yaml: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, yaml).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn cfg(&self) -> String {
        self.dir.path().join("packetbeat.yml").display().to_string()
    }
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).env_remove("RUST_LOG");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `test config` must fail with exit 1 and print exactly one `Exiting:` line containing `needle`.
fn assert_config_error(o: &Output, needle: &str) {
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    let err = stderr(o);
    let exiting: Vec<&str> = err.lines().filter(|l| l.starts_with("Exiting: ")).collect();
    assert_eq!(exiting.len(), 1, "{err}");
    assert!(exiting[0].contains(needle), "expected {needle:?} in {err}");
    assert!(!stdout(o).contains("Config OK"));
}

const CONSOLE: &str = "output.console:\n  pretty: false\n";

#[test]
fn test_config_ok() {
    let f = Fixture::new(&format!(
        "packetbeat.interfaces.device: lo\npacketbeat.flows:\n  timeout: 10s\npacketbeat.protocols:\n- type: tls\n  ports: [443]\n{CONSOLE}"
    ));
    let o = run(&["test", "config", "-c", &f.cfg()], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "Config OK");
}

#[test]
fn test_config_bad_yaml() {
    let f = Fixture::new("packetbeat.interfaces:\n  device: [eth0\n");
    let o = run(&["test", "config", "-c", &f.cfg()], &[]);
    assert_config_error(&o, "error loading config file: yaml: line");
}

#[test]
fn test_config_wrong_type_names_key_and_file() {
    let f = Fixture::new(&format!("packetbeat.interfaces.snaplen: huge\n{CONSOLE}"));
    let o = run(&["test", "config", "-c", &f.cfg()], &[]);
    assert_config_error(&o, "accessing 'packetbeat.interfaces.snaplen'");
    assert!(
        stderr(&o).contains(&format!("(source:'{}')", f.cfg())),
        "{}",
        stderr(&o)
    );
}

#[test]
fn test_config_unknown_output_type() {
    let f = Fixture::new("output.carrier_pigeon:\n  hosts: [coop]\n");
    let o = run(&["test", "config", "-c", &f.cfg()], &[]);
    assert_config_error(&o, "output type carrier_pigeon undefined");
    assert!(stderr(&o).contains("'output.carrier_pigeon'"));
}

#[test]
fn test_config_no_output_and_two_outputs() {
    let f = Fixture::new("packetbeat.interfaces.device: any\n");
    let o = run(&["test", "config", "-c", &f.cfg()], &[]);
    assert_config_error(
        &o,
        "no outputs are defined, please define one under the output section",
    );
    let f = Fixture::new("output.console: {}\noutput.file.path: /tmp\n");
    let o = run(&["test", "config", "-c", &f.cfg()], &[]);
    assert_config_error(&o, "more than one namespace configured accessing 'output'");
}

#[test]
fn test_config_unknown_protocol_and_bad_protocol_option() {
    let f = Fixture::new(&format!(
        "packetbeat.protocols:\n- type: gopher\n  ports: [70]\n{CONSOLE}"
    ));
    let o = run(&["test", "config", "-c", &f.cfg()], &[]);
    assert_config_error(&o, "unknown protocol type 'gopher'");
    let f = Fixture::new(&format!(
        "packetbeat.protocols.tls.ports: [443, https]\n{CONSOLE}"
    ));
    let o = run(&["test", "config", "-c", &f.cfg()], &[]);
    assert_config_error(&o, "packetbeat.protocols.tls.ports");
}

#[test]
fn test_config_missing_env_var() {
    let f = Fixture::new(&format!(
        "packetbeat.interfaces.device: ${{PBRS_IT_NO_SUCH_VAR}}\n{CONSOLE}"
    ));
    let o = run(&["test", "config", "-c", &f.cfg()], &[]);
    assert_config_error(&o, "PBRS_IT_NO_SUCH_VAR");
    assert!(
        stderr(&o).contains("'packetbeat.interfaces.device'"),
        "{}",
        stderr(&o)
    );
    // Set, it resolves.
    let o = run(
        &["test", "config", "-c", &f.cfg()],
        &[("PBRS_IT_NO_SUCH_VAR", "lo")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn list_and_map_protocols_both_work() {
    for protos in [
        "packetbeat.protocols:\n- type: tls\n  ports: [443]\n- type: sip\n  ports: [5060]\n",
        "packetbeat.protocols:\n  tls:\n    ports: [443]\n  sip:\n    ports: [5060]\n",
        "packetbeat.protocols.tls.ports: [443]\npacketbeat.protocols.sip.ports: [5060]\n",
    ] {
        let f = Fixture::new(&format!("{protos}{CONSOLE}"));
        let o = run(&["test", "config", "-c", &f.cfg()], &[]);
        assert_eq!(o.status.code(), Some(0), "{protos}: {}", stderr(&o));
        let o = run(&["export", "config", "-c", &f.cfg()], &[]);
        let out = stdout(&o);
        assert!(out.contains("tls") && out.contains("5060"), "{out}");
    }
}

#[test]
fn dotted_and_nested_keys_merge() {
    let f = Fixture::new(&format!(
        "packetbeat.interfaces.device: lo\npacketbeat:\n  interfaces:\n    snaplen: 1514\n{CONSOLE}"
    ));
    let o = run(&["export", "config", "-c", &f.cfg()], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_yaml::Value = serde_yaml::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        v["packetbeat"]["interfaces"]["device"],
        serde_yaml::Value::from("lo")
    );
    assert_eq!(
        v["packetbeat"]["interfaces"]["snaplen"],
        serde_yaml::Value::from(1514)
    );
}

#[test]
fn export_config_shows_overrides_typed() {
    let f = Fixture::new(&format!("packetbeat.protocols.tls.ports: [443]\n{CONSOLE}"));
    let o = run(
        &[
            "export",
            "config",
            "-c",
            &f.cfg(),
            "-E",
            "output.console.pretty=true",
            "-E",
            "packetbeat.protocols.tls.ports=[443,8443]",
            "-E",
            "packetbeat.interfaces.snaplen=1514",
            "-E",
            "name=probe-7",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_yaml::Value = serde_yaml::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        v["output"]["console"]["pretty"],
        serde_yaml::Value::Bool(true)
    );
    assert_eq!(
        v["packetbeat"]["protocols"]["tls"]["ports"],
        serde_yaml::from_str::<serde_yaml::Value>("[443, 8443]").unwrap()
    );
    assert_eq!(
        v["packetbeat"]["interfaces"]["snaplen"],
        serde_yaml::Value::from(1514)
    );
    assert_eq!(v["name"], serde_yaml::Value::from("probe-7"));
    // The path defaults are part of the exported tree.
    assert!(v["path"]["home"].is_string());
}

#[test]
fn env_default_and_override_reach_the_config() {
    // `${VAR:default}` takes the default when unset; -E overrides what the file says.
    let f = Fixture::new(&format!(
        "packetbeat.interfaces.device: ${{PBRS_IT_DEV:lo}}\npacketbeat.interfaces.type: ${{PBRS_IT_TYPE:pcap}}\n{CONSOLE}"
    ));
    let o = run(&["test", "config", "-c", &f.cfg()], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run(
        &["test", "config", "-c", &f.cfg()],
        &[("PBRS_IT_TYPE", "pf_ring")],
    );
    assert_config_error(&o, "pf_ring");
    let o = run(
        &[
            "test",
            "config",
            "-c",
            &f.cfg(),
            "-E",
            "packetbeat.interfaces.type=af_packet",
        ],
        &[("PBRS_IT_TYPE", "pf_ring")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run(
        &[
            "test",
            "config",
            "-c",
            &f.cfg(),
            "-E",
            "packetbeat.interfaces.snaplen=[1]",
        ],
        &[],
    );
    assert_config_error(&o, "packetbeat.interfaces.snaplen");
}

#[test]
fn go_style_path_flags_find_the_config() {
    let f = Fixture::new(&format!("packetbeat.interfaces.device: lo\n{CONSOLE}"));
    let dir = f.path().display().to_string();
    for args in [
        vec!["test", "config", "-path.config", &dir],
        vec!["test", "config", "--path.config", &dir],
        vec!["-path.home", &dir, "test", "config"],
    ] {
        let o = run(&args, &[]);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert_eq!(stdout(&o).trim(), "Config OK", "{args:?}");
    }
    let eq = format!("-path.config={dir}");
    let o = run(&["test", "config", &eq, "-c=packetbeat.yml"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Without the flag, packetbeat.yml is looked up in the working directory.
    let o = Command::new(BIN)
        .args(["test", "config"])
        .current_dir(f.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let empty = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .args(["test", "config"])
        .current_dir(empty.path())
        .output()
        .unwrap();
    assert_config_error(&o, "stat packetbeat.yml: no such file or directory");
}

#[test]
fn strict_perms_rejects_group_writable_config() {
    let f = Fixture::new(&format!("packetbeat.interfaces.device: lo\n{CONSOLE}"));
    std::fs::set_permissions(f.cfg(), std::fs::Permissions::from_mode(0o664)).unwrap();
    let o = run(&["test", "config", "-c", &f.cfg()], &[]);
    assert_config_error(
        &o,
        "can only be writable by the owner but the permissions are \"-rw-rw-r--\"",
    );
    assert!(stderr(&o).contains("chmod go-w"), "{}", stderr(&o));
    for flag in ["--strict.perms=false", "-strict.perms=false"] {
        let o = run(&["test", "config", "-c", &f.cfg(), flag], &[]);
        assert_eq!(o.status.code(), Some(0), "{flag}: {}", stderr(&o));
    }
}

#[test]
fn version_output() {
    let o = run(&["version"], &[]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    assert_eq!(
        out.trim(),
        format!(
            "packetbeat version 8.17.2 ({arch}), libbeat 8.17.2 [packetbeat-rs {}]",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn bad_flags_exit_1_with_one_line() {
    let o = run(&["--no-such-flag"], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("Exiting: "), "{err}");
    let o = run(&["run", "-l", "many"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("Exiting: "));
}

#[test]
fn run_reports_config_errors_and_beater_errors_with_exit_1() {
    let f = Fixture::new("packetbeat.interfaces.device: lo\n");
    let o = run(&["-c", &f.cfg()], &[]);
    assert_config_error(&o, "no outputs are defined");
    let o = run(
        &[
            "run",
            "-c",
            &f.cfg(),
            "-E",
            "output.discard.enabled=true",
            "-I",
            "/nonexistent.pcap",
            "-t",
        ],
        &[],
    );
    // Whatever the beater says, a failure is one `Exiting:` line and exit 1; success is exit 0.
    if o.status.code() != Some(0) {
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            stderr(&o).lines().any(|l| l.starts_with("Exiting: ")),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn devices_lists_any_and_lo() {
    let o = run(&["devices"], &[]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(
        out.lines()
            .any(|l| l.contains(": any (Pseudo-device that captures on all interfaces)")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains(": lo (") && l.contains("127.0.0.1")),
        "{out}"
    );
    for (i, line) in out.lines().enumerate() {
        assert!(line.starts_with(&format!("{i}: ")), "{out}");
    }
}

#[test]
fn several_c_flags_merge() {
    let f = Fixture::new(&format!("packetbeat.interfaces.device: lo\n{CONSOLE}"));
    let extra = f.write("extra.yml", "packetbeat.interfaces.snaplen: 99\n");
    let o = run(
        &[
            "export",
            "config",
            "-c",
            &f.cfg(),
            "-c",
            &extra.display().to_string(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_yaml::Value = serde_yaml::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        v["packetbeat"]["interfaces"]["snaplen"],
        serde_yaml::Value::from(99)
    );
    assert_eq!(
        v["packetbeat"]["interfaces"]["device"],
        serde_yaml::Value::from("lo")
    );
}

/// Hostile configuration input: each is a clear error at once, never a hang or an
/// out-of-memory.
#[test]
fn hostile_config_input_is_a_clear_error() {
    let started = std::time::Instant::now();
    // An alias bomb: nine levels of nine aliases (9^9 nodes once expanded).
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
    for i in 0..8u8 {
        let (this, prev) = ((b'b' + i) as char, (b'a' + i) as char);
        bomb.push_str(&format!(
            "{this}: &{this} [{}]\n",
            vec![format!("*{prev}"); 9].join(", ")
        ));
    }
    bomb.push_str(CONSOLE);
    let f = Fixture::new(&bomb);
    let o = run(&["test", "config", "-c", &f.cfg()], &[]);
    assert_config_error(&o, "yaml: repetition limit exceeded");

    // Deep nesting, in flow style and in block style.
    let f = Fixture::new(&format!(
        "x: {}{}\n{CONSOLE}",
        "[".repeat(200_000),
        "]".repeat(200_000)
    ));
    let o = run(&["test", "config", "-c", &f.cfg()], &[]);
    assert_config_error(&o, "yaml: line 1: exceeded max depth of 128");
    let f = Fixture::new(&format!("x: {}1\n{CONSOLE}", "- ".repeat(100_000)));
    let o = run(&["test", "config", "-c", &f.cfg()], &[]);
    assert_config_error(&o, "error loading config file: yaml: line 1:");
    // Brackets inside quotes and comments are not nesting.
    let f = Fixture::new(&format!(
        "a: '{}'\nb: \"{}\"\n# {}\n{CONSOLE}",
        "[".repeat(500),
        "{".repeat(500),
        "[".repeat(500)
    ));
    let o = run(&["test", "config", "-c", &f.cfg()], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // A huge file (a capture passed by mistake): refused without reading it whole.
    let big = f.path().join("big.yml");
    {
        let file = std::fs::File::create(&big).unwrap();
        file.set_len(64 * 1024 * 1024).unwrap();
        std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let o = run(&["test", "config", "-c", big.to_str().unwrap()], &[]);
    assert_config_error(&o, "file is larger than 16 MiB, not a configuration file");

    // Binary garbage.
    let garbage = f.path().join("garbage.yml");
    let bytes: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 256) as u8).collect();
    std::fs::write(&garbage, bytes).unwrap();
    std::fs::set_permissions(&garbage, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = run(&["test", "config", "-c", garbage.to_str().unwrap()], &[]);
    assert_config_error(&o, "error loading config file:");

    // `${VAR}` loops: through the config's own keys, and an environment variable whose value
    // names itself (expanded once, as Beats does: no loop).
    let f = Fixture::new(&format!(
        "a: ${{b}}\nb: ${{a}}\npacketbeat.interfaces.device: ${{a}}\n{CONSOLE}"
    ));
    let o = run(&["test", "config", "-c", &f.cfg()], &[]);
    assert_config_error(&o, "cyclic reference detected accessing 'b'");
    let f = Fixture::new(&format!(
        "packetbeat.interfaces.device: ${{LOOPY}}\n{CONSOLE}"
    ));
    let o = run(
        &["test", "config", "-c", &f.cfg()],
        &[("LOOPY", "${LOOPY}")],
    );
    assert!(o.status.code().is_some(), "exits");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

/// `completion bash` is a script bash sources, completing the subcommands and their flags;
/// `zsh` too; any other shell is refused as Beats refuses it.
#[test]
fn completion_scripts() {
    let o = run(&["completion", "bash"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("pb.bash");
    std::fs::write(&script, &o.stdout).unwrap();
    let words = |line: &str| {
        let probe = format!(
            "source '{}'; COMP_WORDS=({line}); COMP_CWORD=$((${{#COMP_WORDS[@]}}-1)); COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; _packetbeat packetbeat \"${{COMP_WORDS[-1]}}\" \"${{COMP_WORDS[-2]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        );
        let o = Command::new("bash").arg("-c").arg(&probe).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let top = words("packetbeat ''");
    for cmd in [
        "run", "setup", "export", "keystore", "devices", "test", "version",
    ] {
        assert!(top.lines().any(|w| w == cmd), "{cmd} not in {top}");
    }
    let export = words("packetbeat export te");
    assert_eq!(export.trim(), "template");
    let z = run(&["completion", "zsh"], &[]);
    assert!(z.status.success() && stdout(&z).starts_with("#compdef packetbeat"));
    let f = run(&["completion", "fish"], &[]);
    assert_eq!(f.status.code(), Some(1));
    assert!(stderr(&f).contains("Unknown shell fish"), "{}", stderr(&f));
}

/// `--help` in cobra's layout, as Packetbeat prints it: sections, pflag's columns (three spaces
/// after the longest flag), flags sorted by name with their Go type and default, the hidden
/// `completion`, `help` at the root only, and the closing line.
#[test]
fn help_has_cobras_layout() {
    let o = run(&["--help"], &[]);
    assert!(o.status.success());
    let root = stdout(&o);
    assert!(root.starts_with("Usage:\n  packetbeat [flags]\n  packetbeat [command]\n\nAvailable Commands:\n  devices     List available devices\n"), "{root}");
    for line in [
        "  help        Help about any command",
        "  -E, --E setting=value              Configuration overwrite",
        "  -c, --c string                     Configuration file, relative to path.config (default \"packetbeat.yml\")",
        "      --environment environmentVar   set environment being ran in (default default)",
        "  -h, --help                         help for packetbeat",
        "  -l, --l int                        Loop file. 0 - loop forever (default 1)",
        "      --strict.perms                 Strict permission checking on config files (default true)",
    ] {
        assert!(root.lines().any(|l| l == line), "{line:?} in\n{root}");
    }
    assert!(!root.contains("completion"), "{root}");
    assert!(
        root.ends_with(
            "\nUse \"packetbeat [command] --help\" for more information about a command.\n"
        ),
        "{root}"
    );
    // Sorted by flag name, upper case first (byte order), as pflag sorts.
    let flags: Vec<&str> = root
        .split("\nFlags:\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| !l.is_empty())
        .map(|l| {
            l.trim_start()
                .split_whitespace()
                .find(|w| w.starts_with("--"))
                .unwrap()
        })
        .collect();
    let mut sorted = flags.clone();
    sorted.sort();
    assert_eq!(flags, sorted);
    assert_eq!(&flags[..4], ["--E", "--I", "--N", "--O"]);

    // A subcommand: its own flags, then the inherited ones.
    let run_help = stdout(&run(&["run", "--help"], &[]));
    assert!(
        run_help.starts_with("Run packetbeat\n\nUsage:\n  packetbeat run [flags]\n\nFlags:\n"),
        "{run_help}"
    );
    let (own, inherited) = run_help.split_once("\nGlobal Flags:\n").unwrap();
    assert!(own.contains("\n  -I, --I string "), "{own}");
    assert!(own.contains("\n  -h, --help "), "{own}");
    assert!(!own.contains("--path.data"), "{own}");
    assert!(
        inherited.contains("\n      --path.data string "),
        "{inherited}"
    );
    assert!(!inherited.contains("--I "), "{inherited}");
    // A group: its commands padded to the longest name, no `help`, and the closing line.
    let export = stdout(&run(&["export", "--help"], &[]));
    assert!(
        export.contains("\n  index-pattern Export kibana index pattern to stdout\n"),
        "{export}"
    );
    assert!(
        export.contains("\nUsage:\n  packetbeat export [command]\n\n"),
        "{export}"
    );
    assert!(!export.contains("\n  help "), "{export}");
    let tmpl = stdout(&run(&["export", "template", "--help"], &[]));
    assert!(tmpl.contains("\n      --dir string          Specify directory for printing template files. By default templates are printed to stdout.\n"), "{tmpl}");
    let completion = stdout(&run(&["completion", "--help"], &[]));
    assert!(
        completion.contains("\n  packetbeat completion SHELL [flags]\n"),
        "{completion}"
    );
}

/// `test config` refuses what `run` would refuse at start: an output option out of range, a
/// queue option that does not parse, a monitoring port that is not one.
#[test]
fn test_config_checks_the_output_queue_and_monitoring_options() {
    for (yaml, needle) in [
        (
            "output.kafka: {hosts: ['127.0.0.1:9092'], topic: t, compression_level: 12}\n",
            "compression_level must be between 0 and 9",
        ),
        (
            "output.console: {}\nqueue.mem.flush.timeout: soon\n",
            "queue.mem.flush.timeout",
        ),
        ("output.console: {}\nhttp.port: 99999\n", "http.port"),
        (
            "output.console: {}\npacketbeat.run_as.user: no-such-user-here\n",
            "packetbeat.run_as.user: no user 'no-such-user-here'",
        ),
        (
            "output.console: {}\nseccomp.syscalls: [{action: errno, names: [connect, no_such_call]}]\n",
            "seccomp.syscalls.0.names: 'no_such_call' is not a system call",
        ),
        (
            "output.console: {}\nseccomp.default_action: deny\n",
            "seccomp.default_action: expected one of allow, errno",
        ),
    ] {
        let f = Fixture::new(yaml);
        let o = run(&["test", "config", "-c", &f.cfg()], &[]);
        assert_eq!(o.status.code(), Some(1), "{yaml}: {}", stdout(&o));
        assert!(stderr(&o).contains(needle), "{yaml}: {}", stderr(&o));
    }
    let f = Fixture::new(
        "output.console: {}\nqueue.mem: {events: 4096, flush.min_events: 512, flush.timeout: 1s}\n",
    );
    let o = run(&["test", "config", "-c", &f.cfg()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `seccomp.*`: the filter is on every thread of a run. A policy that refuses `connect` makes
/// the Logstash output's connections fail with `EPERM` ("Operation not permitted"), where the
/// same run without the filter meets the closed port ("Connection refused").
#[test]
fn seccomp_policy_applies_to_the_whole_process() {
    use std::io::{BufRead, BufReader};
    let Some(pcap) = common::shared_or_skip("pcaps/http_post.pcap") else {
        return;
    };
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for (seccomp, needle) in [
        (
            "seccomp.syscalls: [{action: errno, names: [connect]}]",
            "Operation not permitted",
        ),
        ("seccomp.enabled: false", "Connection refused"),
    ] {
        let f = Fixture::new(&format!(
            "packetbeat.protocols:\n- type: http\n  ports: [80]\noutput.logstash: {{hosts: ['127.0.0.1:{port}'], timeout: 2}}\n{seccomp}\n"
        ));
        let mut child = Command::new(env!("CARGO_BIN_EXE_packetbeat"))
            .args(["-e", "-t", "-I"])
            .arg(&pcap)
            .args(["-c", &f.cfg(), "--strict.perms=false"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut log = String::new();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let found = loop {
            match lines.next() {
                Some(Ok(l)) if l.contains("Failed to connect") => break l.contains(needle),
                Some(Ok(l)) => log.push_str(&l),
                _ => break false,
            }
        };
        child.kill().ok();
        child.wait().ok();
        assert!(
            found,
            "{seccomp}: no connection error with '{needle}': {log}"
        );
        if seccomp.contains("errno") {
            assert!(
                log.contains("Syscall filter successfully installed (1 call(s) named"),
                "{log}"
            );
        } else {
            assert!(log.contains("Syscall filter disabled"), "{log}");
        }
    }
}
