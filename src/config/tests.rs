//! Loader tests: whole configs through `load_from_str` / `load`.

use super::*;

const OUT: &str = "output.console.enabled: true\n";

fn ok(yaml: &str) -> Config {
    load_from_str(yaml, "packetbeat.yml", &[]).unwrap_or_else(|e| panic!("{e}"))
}

fn err(yaml: &str) -> String {
    load_from_str(yaml, "packetbeat.yml", &[]).unwrap_err().0
}

#[test]
fn packetbeat_default_file_loads() {
    let text = include_str!("../../packetbeat.yml");
    let cfg = load_from_str(text, "packetbeat.yml", &[]).unwrap();
    assert_eq!(cfg.interfaces.len(), 1);
    assert_eq!(cfg.interfaces[0].device.as_deref(), Some("any"));
    assert!(cfg.flows.is_some());
    assert!(cfg.protocols.iter().any(|p| p.kind == "http"));
    assert!(matches!(&cfg.output, OutputConfig::Other(t, _) if t == "elasticsearch"));
}

#[test]
fn reference_file_loads() {
    let text = include_str!("../../packetbeat.reference.yml");
    let cfg = load_from_str(text, "packetbeat.reference.yml", &[]).unwrap();
    assert!(matches!(&cfg.output, OutputConfig::Other(t, _) if t == "elasticsearch"));
}

#[test]
fn interface_defaults_and_dotted_keys() {
    let cfg = ok(&format!("packetbeat.interfaces.bpf_filter: port 53\n{OUT}"));
    let i = &cfg.interfaces[0];
    assert_eq!(i.device.as_deref(), Some("any"));
    assert_eq!(i.kind, "pcap");
    assert_eq!(i.snaplen, 65535);
    assert_eq!(i.buffer_size_mb, 30);
    assert_eq!(i.bpf_filter.as_deref(), Some("port 53"));
    assert_eq!(i.loop_count, 1);
}

#[test]
fn dotted_and_nested_forms_merge() {
    let cfg = ok(&format!(
        "packetbeat.interfaces.device: eth0\npacketbeat:\n  interfaces:\n    snaplen: 1514\n    type: af_packet\n{OUT}"
    ));
    assert_eq!(cfg.interfaces.len(), 1);
    assert_eq!(cfg.interfaces[0].device.as_deref(), Some("eth0"));
    assert_eq!(cfg.interfaces[0].snaplen, 1514);
    assert_eq!(cfg.interfaces[0].kind, "af_packet");
}

#[test]
fn interface_list_and_duplicates() {
    let cfg = ok(&format!(
        "packetbeat.interfaces:\n- device: eth0\n- device: lo\n  type: autodetect\n{OUT}"
    ));
    assert_eq!(cfg.interfaces.len(), 2);
    assert_eq!(cfg.interfaces[1].kind, "pcap");
    let e = err(&format!(
        "packetbeat.interfaces:\n- device: eth0\n- device: eth0\n{OUT}"
    ));
    assert_eq!(e, "duplicated device configurations: eth0");
    // Two empty devices both mean `any`.
    let e = err(&format!(
        "packetbeat.interfaces:\n- snaplen: 100\n- {{}}\n{OUT}"
    ));
    assert!(
        e.starts_with("duplicated device configurations: any"),
        "{e}"
    );
}

#[test]
fn numeric_device_is_kept_as_text() {
    let cfg = ok(&format!(
        "packetbeat.interfaces: {{device: 0, type: dpdk}}\n{OUT}"
    ));
    assert_eq!(cfg.interfaces[0].device.as_deref(), Some("0"));
    assert_eq!(cfg.interfaces[0].kind, "dpdk");
}

#[test]
fn interface_file_option() {
    let cfg = ok(&format!("packetbeat.interfaces.file: /tmp/x.pcap\n{OUT}"));
    assert_eq!(
        cfg.interfaces[0].file.as_deref(),
        Some(std::path::Path::new("/tmp/x.pcap"))
    );
}

#[test]
fn fanout_group_needs_af_packet() {
    let e = err(&format!(
        "packetbeat.interfaces: {{device: eth0, fanout_group: 1}}\n{OUT}"
    ));
    assert_eq!(e, "fanout_group is only valid with af_packet type accessing 'packetbeat.interfaces' (source:'packetbeat.yml')");
    let cfg = ok(&format!(
        "packetbeat.interfaces: {{device: eth0, type: af_packet, fanout_group: 1}}\n{OUT}"
    ));
    assert_eq!(cfg.interfaces[0].fanout_group, Some(1));
}

#[test]
fn unknown_sniffer_type_names_key() {
    let e = err(&format!(
        "packetbeat.interfaces: {{device: eth0, type: pf_ring}}\n{OUT}"
    ));
    assert!(e.contains("pf_ring"), "{e}");
    assert!(e.contains("accessing 'packetbeat.interfaces.type'"), "{e}");
}

#[test]
fn wrong_type_names_key_and_file() {
    let e = err(&format!("packetbeat.interfaces.snaplen: lots\n{OUT}"));
    assert!(
        e.contains("accessing 'packetbeat.interfaces.snaplen'"),
        "{e}"
    );
    assert!(e.contains("(source:'packetbeat.yml')"), "{e}");
}

#[test]
fn empty_value_takes_default() {
    let cfg = ok(&format!(
        "packetbeat.interfaces:\n  snaplen:\n  device:\n{OUT}"
    ));
    assert_eq!(cfg.interfaces[0].snaplen, 65535);
    assert_eq!(cfg.interfaces[0].device.as_deref(), Some("any"));
}

#[test]
fn protocols_as_list() {
    let cfg = ok(&format!("packetbeat.protocols:\n- type: http\n  ports: [80, 8080]\n- type: dns\n  ports: [53]\n{OUT}"));
    assert_eq!(cfg.protocols.len(), 2);
    assert_eq!(cfg.protocols[0].kind, "http");
    assert_eq!(cfg.protocols[0].key, "packetbeat.protocols.0");
    assert!(cfg.protocols[0].options.get("type").is_none());
    assert_eq!(
        cfg.protocols[0].options.get("ports").unwrap(),
        &serde_yaml::from_str::<Value>("[80, 8080]").unwrap()
    );
    assert_eq!(cfg.protocols[1].key, "packetbeat.protocols.1");
}

#[test]
fn protocols_as_map_in_both_spellings() {
    for yaml in [
        "packetbeat.protocols.http: {ports: [80]}\npacketbeat.protocols.dns.ports: [53]\n",
        "packetbeat.protocols:\n  http:\n    ports: [80]\n  dns:\n    ports: [53]\n",
    ] {
        let cfg = ok(&format!("{yaml}{OUT}"));
        let kinds: Vec<_> = cfg
            .protocols
            .iter()
            .map(|p| (p.kind.as_str(), p.key.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("http", "packetbeat.protocols.http"),
                ("dns", "packetbeat.protocols.dns")
            ]
        );
    }
}

#[test]
fn list_entry_without_type_is_an_error() {
    let e = err(&format!("packetbeat.protocols:\n- ports: [80]\n{OUT}"));
    assert_eq!(
        e,
        "missing required field accessing 'packetbeat.protocols.0.type' (source:'packetbeat.yml')"
    );
}

#[test]
fn flows_presence_enables() {
    assert!(ok(OUT).flows.is_none());
    let f = ok(&format!("packetbeat.flows:\n  timeout: 5s\n{OUT}"))
        .flows
        .unwrap();
    assert_eq!(f.timeout.0, std::time::Duration::from_secs(5));
    assert!(ok(&format!("packetbeat.flows:\n  enabled: false\n{OUT}"))
        .flows
        .is_none());
    let f = ok(&format!("packetbeat.flows.period: -1s\n{OUT}"))
        .flows
        .unwrap();
    assert!(f.period.negative);
}

#[test]
fn general_settings() {
    let cfg = ok(&format!(
        "name: probe-1\ntags: web\nfields: {{env: prod}}\nfields_under_root: true\npacketbeat.ignore_outgoing: true\n\
         packetbeat.shutdown_timeout: 5s\nlogging.level: debug\nlogging.selectors: [http, tcp]\n\
         processors:\n- drop_fields: {{fields: [a]}}\n{OUT}"
    ));
    assert_eq!(cfg.name, "probe-1");
    assert_eq!(cfg.tags, ["web"]);
    assert_eq!(cfg.fields, Some(serde_json::json!({"env": "prod"})));
    assert!(cfg.fields_under_root);
    assert!(cfg.ignore_outgoing);
    assert_eq!(cfg.shutdown_timeout, std::time::Duration::from_secs(5));
    assert_eq!(cfg.logging_level, "debug");
    assert_eq!(cfg.logging_selectors, ["http", "tcp"]);
    assert_eq!(cfg.processors.len(), 1);
}

#[test]
fn name_defaults_to_host_name() {
    assert_eq!(ok(OUT).name, gethostname::gethostname().to_string_lossy());
}

#[test]
fn outputs() {
    assert_eq!(
        err("name: x\n"),
        "no outputs are defined, please define one under the output section"
    );
    assert_eq!(
        err("output.console.enabled: false\n"),
        "no outputs are defined, please define one under the output section"
    );
    assert_eq!(
        err("output.console: {}\noutput.file: {path: /tmp}\n"),
        "error unpacking config data: more than one namespace configured accessing 'output' (source:'packetbeat.yml')"
    );
    let cfg = ok("output.console: {}\noutput.elasticsearch: {enabled: false, hosts: [x]}\n");
    assert!(matches!(cfg.output, OutputConfig::Console(_)));
    let e = err("output.carrier_pigeon: {}\n");
    assert!(e.contains("output type carrier_pigeon undefined"), "{e}");
    assert!(e.contains("accessing 'output.carrier_pigeon'"), "{e}");
    let cfg = ok("output.logstash.hosts: ['localhost:5044']\n");
    assert!(
        matches!(&cfg.output, OutputConfig::Other(t, v) if t == "logstash" && v.get("hosts").is_some())
    );
    assert!(matches!(
        ok("output.discard: {}\n").output,
        OutputConfig::Discard
    ));
}

#[test]
fn file_output_defaults_and_checks() {
    let OutputConfig::File(f) = ok("output.file.path: /tmp/pb\n").output else {
        panic!()
    };
    assert_eq!(f.filename, "packetbeat");
    assert_eq!(f.number_of_files, 7);
    assert_eq!(f.rotate_every_kb, 10240);
    assert_eq!(f.path.as_deref(), Some(std::path::Path::new("/tmp/pb")));
    let e = err("output.file: {path: /tmp, number_of_files: 1}\n");
    assert!(e.contains("number_of_files"), "{e}");
}

#[test]
fn overrides_apply_last_and_are_typed() {
    let cfg = load_from_str(
        "packetbeat.protocols:\n  http:\n    ports: [80]\noutput.file.path: /tmp/a\n",
        "packetbeat.yml",
        &[
            "output.file.path=/tmp/x".into(),
            "packetbeat.protocols.http.ports=[80,8080]".into(),
            "packetbeat.interfaces.snaplen=1514".into(),
        ],
    )
    .unwrap();
    let OutputConfig::File(f) = &cfg.output else {
        panic!()
    };
    assert_eq!(f.path.as_deref(), Some(std::path::Path::new("/tmp/x")));
    assert_eq!(
        cfg.protocols[0].options.get("ports").unwrap(),
        &serde_yaml::from_str::<Value>("[80, 8080]").unwrap()
    );
    assert_eq!(cfg.interfaces[0].snaplen, 1514);
    assert_eq!(
        lookup(&cfg.raw, "output.file.path"),
        Some(&Value::String("/tmp/x".into()))
    );
}

#[test]
fn an_override_on_a_list_element_changes_that_element_only() {
    let text = include_str!("../../packetbeat.yml");
    let plain = load_from_str(text, "packetbeat.yml", &[]).unwrap();
    let cfg = load_from_str(
        text,
        "packetbeat.yml",
        &["packetbeat.protocols.4.ports=[5353]".into()],
    )
    .unwrap();
    assert_eq!(cfg.protocols.len(), plain.protocols.len());
    for (i, (p, q)) in cfg.protocols.iter().zip(&plain.protocols).enumerate() {
        assert_eq!(p.kind, q.kind, "protocol {i}");
        if i != 4 {
            assert_eq!(p.options, q.options, "protocol {i}");
        }
    }
    assert_eq!(cfg.protocols[4].kind, "dns");
    assert_eq!(
        cfg.protocols[4].options.get("ports").unwrap(),
        &serde_yaml::from_str::<Value>("[5353]").unwrap()
    );
}

#[test]
fn override_can_switch_outputs() {
    let cfg = load_from_str(
        "output.elasticsearch.hosts: [localhost:9200]\n",
        "packetbeat.yml",
        &[
            "output.elasticsearch.enabled=false".into(),
            "output.console.pretty=true".into(),
        ],
    )
    .unwrap();
    let OutputConfig::Console(c) = cfg.output else {
        panic!("{:?}", cfg.output)
    };
    assert!(c.pretty);
}

#[test]
fn environment_variables() {
    std::env::set_var("PBRS_TEST_DEVICE", "eth7");
    std::env::set_var("PBRS_TEST_PORTS", "[8080, 8081]");
    let cfg = ok(&format!(
        "packetbeat.interfaces.device: ${{PBRS_TEST_DEVICE}}\npacketbeat.protocols.http.ports: ${{PBRS_TEST_PORTS}}\n\
         name: ${{PBRS_TEST_UNSET_NAME:fallback}}\n{OUT}"
    ));
    assert_eq!(cfg.interfaces[0].device.as_deref(), Some("eth7"));
    assert_eq!(
        cfg.protocols[0].options.get("ports").unwrap(),
        &serde_yaml::from_str::<Value>("[8080, 8081]").unwrap()
    );
    assert_eq!(cfg.name, "fallback");
    let e = err("output.file.path: ${PBRS_TEST_DEFINITELY_UNSET}\n");
    assert!(e.contains("PBRS_TEST_DEFINITELY_UNSET"), "{e}");
    assert!(e.contains("accessing 'output.file.path'"), "{e}");
}

#[test]
fn paths_default_from_home() {
    let opts = LoadOptions {
        path_home: Some("/opt/pb".into()),
        ..LoadOptions::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pb.yml");
    std::fs::write(&file, OUT).unwrap();
    let opts = LoadOptions {
        config_files: vec![file.clone()],
        ..opts
    };
    let cfg = load(&opts).unwrap();
    assert_eq!(cfg.paths.home, std::path::PathBuf::from("/opt/pb"));
    assert_eq!(cfg.paths.config, std::path::PathBuf::from("/opt/pb"));
    assert_eq!(cfg.paths.data, std::path::PathBuf::from("/opt/pb/data"));
    assert_eq!(cfg.paths.logs, std::path::PathBuf::from("/opt/pb/logs"));
    assert_eq!(cfg.source, file.display().to_string());
}

#[test]
fn config_file_is_found_under_path_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("packetbeat.yml"), OUT).unwrap();
    let opts = LoadOptions {
        path_config: Some(dir.path().into()),
        ..LoadOptions::default()
    };
    assert_eq!(opts.config_paths(), [dir.path().join("packetbeat.yml")]);
    assert!(load(&opts).is_ok());
    let opts = LoadOptions {
        path_home: Some("/h".into()),
        config_files: vec!["x.yml".into()],
        ..LoadOptions::default()
    };
    assert_eq!(opts.config_paths(), [std::path::PathBuf::from("/h/x.yml")]);
    let opts = LoadOptions::default();
    assert_eq!(
        opts.config_paths(),
        [std::path::PathBuf::from("packetbeat.yml")]
    );
}

#[test]
fn several_config_files_merge_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yml");
    let b = dir.path().join("b.yml");
    std::fs::write(
        &a,
        "packetbeat.interfaces.device: eth0\noutput.console: {}\n",
    )
    .unwrap();
    std::fs::write(&b, "packetbeat.interfaces.snaplen: 100\n").unwrap();
    let cfg = load(&LoadOptions {
        config_files: vec![a, b],
        ..LoadOptions::default()
    })
    .unwrap();
    assert_eq!(cfg.interfaces[0].device.as_deref(), Some("eth0"));
    assert_eq!(cfg.interfaces[0].snaplen, 100);
}

#[test]
fn yaml_errors_read_like_go_yaml() {
    let e = err("a: b: c\n");
    assert!(
        e.starts_with("error loading config file: yaml: line 1: "),
        "{e}"
    );
}

#[test]
fn missing_file() {
    let opts = LoadOptions {
        config_files: vec!["/nonexistent/pb.yml".into()],
        ..LoadOptions::default()
    };
    assert_eq!(
        load(&opts).unwrap_err().0,
        "error loading config file: stat /nonexistent/pb.yml: no such file or directory"
    );
    let opts = LoadOptions {
        strict_perms: false,
        ..opts
    };
    assert_eq!(
        load(&opts).unwrap_err().0,
        "error loading config file: open /nonexistent/pb.yml: no such file or directory"
    );
}

#[test]
fn bad_logging_level() {
    let e = err(&format!("logging.level: loud\n{OUT}"));
    assert!(e.contains("accessing 'logging.level'"), "{e}");
}

#[test]
fn scalar_lists() {
    let cfg = ok(&format!(
        "tags: web\nlogging.selectors: http\npacketbeat.flows.tags: f\n\
         packetbeat.interfaces.internal_networks: private\n{OUT}"
    ));
    assert_eq!(cfg.tags, ["web"]);
    assert_eq!(cfg.logging_selectors, ["http"]);
    assert_eq!(cfg.flows.unwrap().tags, ["f"]);
    assert_eq!(cfg.interfaces[0].internal_networks, ["private"]);
}
