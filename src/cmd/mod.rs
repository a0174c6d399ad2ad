//! The command line, spelled as Packetbeat spells it: `packetbeat [run]`, `version`, `devices`,
//! `test config`, `export config|template|ilm-policy|index-pattern|dashboard`, `setup`,
//! `keystore`, with libbeat's global flags (`-c`, `-E`, `-e`, `-d`, `-v`, `--path.*`,
//! `--strict.perms`) and Packetbeat's run flags (`-I`, `-t`, `-l`, `--dump`, `-O`, `-N`).
//! Errors print one line, `Exiting: <message>`, and exit with status 1.

pub mod args;
pub mod export;
pub mod help;
pub mod keystore;
pub mod logging;

use crate::config::{self, Config, InterfaceConfig, LoadOptions};
use clap::{ArgAction, Args, Parser, Subcommand};
use std::path::PathBuf;

/// `packetbeat` and its subcommands.
#[derive(Parser, Debug)]
#[command(
    name = "packetbeat",
    about = "Packetbeat analyzes network traffic and sends the data to Elasticsearch.",
    disable_version_flag = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    /// Run flags are accepted without `run` too (the bare command is `run`).
    #[command(flatten)]
    pub run: RunArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// libbeat's persistent flags (valid with every subcommand).
#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// Configuration file, relative to path.config
    #[arg(short = 'c', value_name = "string", global = true, action = ArgAction::Append)]
    pub config: Vec<PathBuf>,
    /// Configuration overwrite
    #[arg(short = 'E', value_name = "setting=value", global = true, action = ArgAction::Append)]
    pub settings: Vec<String>,
    /// Enable certain debug selectors
    #[arg(short = 'd', value_name = "string", global = true, action = ArgAction::Append)]
    pub debug: Vec<String>,
    /// Log to stderr and disable syslog/file output
    #[arg(short = 'e', global = true)]
    pub log_stderr: bool,
    /// Log at INFO level
    #[arg(short = 'v', global = true)]
    pub verbose: bool,
    /// set environment being ran in
    #[arg(long = "environment", value_name = "environmentVar", global = true)]
    pub environment: Option<String>,
    /// Home path
    #[arg(long = "path.home", value_name = "string", global = true)]
    pub path_home: Option<PathBuf>,
    /// Configuration path
    #[arg(long = "path.config", value_name = "string", global = true)]
    pub path_config: Option<PathBuf>,
    /// Data path
    #[arg(long = "path.data", value_name = "string", global = true)]
    pub path_data: Option<PathBuf>,
    /// Logs path
    #[arg(long = "path.logs", value_name = "string", global = true)]
    pub path_logs: Option<PathBuf>,
    /// Load additional plugins (Go plugins: not supported, using it is an error)
    #[arg(long = "plugin", value_name = "pluginList", global = true, action = ArgAction::Append)]
    pub plugin: Vec<String>,
    /// Strict permission checking on config files
    #[arg(
        long = "strict.perms",
        value_name = "bool",
        global = true,
        num_args = 0..=1,
        require_equals = true,
        default_value = "true",
        default_missing_value = "true",
        value_parser = args::parse_go_bool
    )]
    pub strict_perms: bool,
}

/// Packetbeat's run flags.
#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// Read packet data from specified file
    #[arg(short = 'I', value_name = "string")]
    pub file: Option<PathBuf>,
    /// Read packets as fast as possible, without sleeping
    #[arg(short = 't')]
    pub top_speed: bool,
    /// Loop file. 0 - loop forever
    #[arg(short = 'l', value_name = "int", allow_negative_numbers = true)]
    pub loop_count: Option<i64>,
    /// Write all captured packets to libpcap files with this prefix - a timestamp and pcap extension are added
    #[arg(long = "dump", value_name = "string")]
    pub dump: Option<PathBuf>,
    /// Read packets one at a time (press Enter)
    #[arg(short = 'O')]
    pub one_at_a_time: bool,
    /// Disable actual publishing for testing
    #[arg(short = 'N')]
    pub no_publish: bool,
    /// Start pprof http server (accepted, no effect)
    #[arg(long = "httpprof", value_name = "string")]
    pub httpprof: Option<String>,
    /// Write cpu profile to file (accepted, no effect)
    #[arg(long = "cpuprofile", value_name = "string")]
    pub cpuprofile: Option<String>,
    /// Write memory profile to this file (accepted, no effect)
    #[arg(long = "memprofile", value_name = "string")]
    pub memprofile: Option<String>,
    /// DPDK capture: enable or disable (read from the raw command line before anything else)
    #[arg(long = "dpdk_status", value_name = "string")]
    pub dpdk_status: Option<String>,
    /// DPDK port number
    #[arg(long = "dpdk_port", value_name = "int")]
    pub dpdk_port: Option<u16>,
    /// DPDK EAL arguments (shell-split; default: env PACKETBEAT_DPDK_ARGS)
    #[arg(long = "dpdk_args", value_name = "string", allow_hyphen_values = true)]
    pub dpdk_args: Option<String>,
    /// DPDK RX queues (RSS with a symmetric key)
    #[arg(long = "dpdk_queues", value_name = "int")]
    pub dpdk_queues: Option<u16>,
}

impl RunArgs {
    /// Flags given on the subcommand win over those given before it.
    fn merged(self, other: RunArgs) -> RunArgs {
        RunArgs {
            file: self.file.or(other.file),
            top_speed: self.top_speed || other.top_speed,
            loop_count: self.loop_count.or(other.loop_count),
            dump: self.dump.or(other.dump),
            one_at_a_time: self.one_at_a_time || other.one_at_a_time,
            no_publish: self.no_publish || other.no_publish,
            httpprof: self.httpprof.or(other.httpprof),
            cpuprofile: self.cpuprofile.or(other.cpuprofile),
            memprofile: self.memprofile.or(other.memprofile),
            dpdk_status: self.dpdk_status.or(other.dpdk_status),
            dpdk_port: self.dpdk_port.or(other.dpdk_port),
            dpdk_args: self.dpdk_args.or(other.dpdk_args),
            dpdk_queues: self.dpdk_queues.or(other.dpdk_queues),
        }
    }

    fn touches_interfaces(&self) -> bool {
        self.file.is_some()
            || self.top_speed
            || self.loop_count.is_some()
            || self.dump.is_some()
            || self.one_at_a_time
            || self.dpdk_status.is_some()
            || self.dpdk_port.is_some()
            || self.dpdk_args.is_some()
            || self.dpdk_queues.is_some()
    }
}

/// Trailing arguments of commands this build does not implement.
#[derive(Args, Debug, Clone)]
pub struct Unsupported {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub rest: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run packetbeat
    Run(RunArgs),
    /// Show current version info
    Version,
    /// List available devices
    Devices,
    /// Test config
    Test {
        #[command(subcommand)]
        what: TestCommand,
    },
    /// Export current config or index template
    Export {
        #[command(subcommand)]
        what: ExportCommand,
    },
    /// Setup index template, dashboards and ML jobs
    #[command(
        long_about = "This command does initial setup of the environment:\n\n \
        * Index mapping template in Elasticsearch to ensure fields are mapped.\n \
        * Kibana dashboards (where available).\n \
        * Ingest pipelines (where available).\n \
        * ILM policy (for Elasticsearch 6.5 and newer)."
    )]
    Setup(SetupArgs),
    /// Manage secrets keystore
    Keystore {
        #[command(subcommand)]
        what: keystore::KeystoreCommand,
    },
    /// Output shell completion code for the specified shell (bash and zsh only by the moment)
    #[command(hide = true)]
    Completion {
        /// bash or zsh
        shell: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TestCommand {
    /// Test configuration settings
    Config,
    /// Test packetbeat can connect to the output by using the current settings
    Output(Unsupported),
}

#[derive(Subcommand, Debug)]
pub enum ExportCommand {
    /// Export current config to stdout
    Config,
    /// Export index template to stdout
    Template(TemplateArgs),
    /// Export kibana index pattern to stdout
    #[command(name = "index-pattern")]
    IndexPattern(EsVersionArgs),
    /// Export defined dashboard to stdout
    Dashboard(DashboardArgs),
    /// Export ILM policy
    #[command(name = "ilm-policy")]
    IlmPolicy(IlmPolicyArgs),
}

/// `export template` flags.
#[derive(Args, Debug, Clone, Default)]
pub struct TemplateArgs {
    /// Elasticsearch version
    #[arg(long = "es.version", value_name = "string")]
    pub es_version: Option<String>,
    /// Generate template with ILM disabled
    #[arg(long = "noilm")]
    pub noilm: bool,
    #[arg(
        long = "dir",
        value_name = "string",
        help = "Specify directory for printing template files. By default templates are printed to stdout."
    )]
    pub dir: Option<PathBuf>,
}

/// `setup` flags (libbeat's); only index management is implemented.
#[derive(Args, Debug, Clone, Default)]
pub struct SetupArgs {
    /// Setup all components related to Elasticsearch index management, including template, ilm policy and rollover alias
    #[arg(long = "index-management")]
    pub index_management: bool,
    /// Setup dashboards
    #[arg(long = "dashboards")]
    pub dashboards: bool,
    /// Setup Ingest pipelines (not implemented by packetbeat-rs)
    #[arg(long = "pipelines")]
    pub pipelines: bool,
    /// Setup machine learning job configurations (not implemented by packetbeat-rs)
    #[arg(long = "machine-learning")]
    pub machine_learning: bool,
    /// Behave as if all modules and filesets had been enabled
    #[arg(long = "enable-all-filesets")]
    pub enable_all_filesets: bool,
    /// Behave as if all filesets, within enabled modules, are enabled
    #[arg(long = "force-enable-module-filesets")]
    pub force_enable_module_filesets: bool,
}

/// `export ilm-policy` flags.
#[derive(Args, Debug, Clone, Default)]
pub struct IlmPolicyArgs {
    /// Elasticsearch version
    #[arg(long = "es.version", value_name = "string")]
    pub es_version: Option<String>,
    #[arg(
        long = "dir",
        value_name = "string",
        help = "Specify directory for printing policy files. By default policies are printed to stdout."
    )]
    pub dir: Option<PathBuf>,
}

/// `export dashboard` flags.
#[derive(Args, Debug, Clone, Default)]
pub struct DashboardArgs {
    /// Dashboard id
    #[arg(long = "id", value_name = "string")]
    pub id: Option<String>,
    /// Target folder to save exported assets
    #[arg(long = "folder", value_name = "string")]
    pub folder: Option<PathBuf>,
}

/// `export index-pattern` flags.
#[derive(Args, Debug, Clone, Default)]
pub struct EsVersionArgs {
    /// Elasticsearch version
    #[arg(long = "es.version", value_name = "string")]
    pub es_version: Option<String>,
}

/// The program: parses `std::env::args`, runs the command, returns the exit code.
pub fn main() -> i32 {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // DPDK first, on the main thread, before clap and before any config is read.
    if let Err(msg) = dpdk_early_init(&argv) {
        eprintln!("Exiting: {msg}");
        return 1;
    }
    let code = run_with_args(argv);
    #[cfg(feature = "dpdk")]
    crate::sniffer::dpdk::cleanup();
    code
}

#[cfg(feature = "dpdk")]
fn dpdk_early_init(argv: &[String]) -> Result<(), String> {
    crate::sniffer::dpdk::early_init(argv).map(|_| ())
}

#[cfg(not(feature = "dpdk"))]
fn dpdk_early_init(argv: &[String]) -> Result<(), String> {
    let mut it = argv.iter().skip(1);
    while let Some(a) = it.next() {
        let body = a.trim_start_matches('-');
        if body == "dpdk_status=enable"
            || (body == "dpdk_status" && it.next().map(String::as_str) == Some("enable"))
        {
            return Err(
                "--dpdk_status enable: this build has no DPDK support (built without the 'dpdk' feature)".into(),
            );
        }
    }
    Ok(())
}

/// Runs the command line `argv` (argv[0] included); returns the exit code.
pub fn run_with_args(argv: Vec<String>) -> i32 {
    use clap::{CommandFactory, FromArgMatches};
    let parsed = help::with_cobra_help(Cli::command())
        .try_get_matches_from(args::normalize_args(argv))
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return 0;
            }
            let text = e.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ")
                .to_string();
            eprintln!("Exiting: {first}");
            return 1;
        }
    };
    match execute(cli) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("Exiting: {msg}");
            1
        }
    }
}

/// The arch name Go would print (`runtime.GOARCH`).
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// `packetbeat version` output.
pub fn version_line() -> String {
    format!(
        "packetbeat version {v} ({arch}), libbeat {v} [packetbeat-rs {crate_version}]",
        v = crate::BEAT_VERSION,
        arch = go_arch(),
        crate_version = env!("CARGO_PKG_VERSION")
    )
}

fn load_options(g: &GlobalArgs) -> LoadOptions {
    LoadOptions {
        config_files: g.config.clone(),
        overrides: g.settings.clone(),
        path_home: g.path_home.clone(),
        path_config: g.path_config.clone(),
        path_data: g.path_data.clone(),
        path_logs: g.path_logs.clone(),
        strict_perms: g.strict_perms,
    }
}

/// libbeat's environments (`logp.ParseEnvironment`); under systemd and in containers the
/// log goes to stderr unless the config says where.
const ENVIRONMENTS: [&str; 5] = [
    "default",
    "systemd",
    "container",
    "macos_service",
    "windows_service",
];

fn init_logging(g: &GlobalArgs, cfg: Option<&Config>) -> Result<(), String> {
    let setting = |k: &str| {
        cfg.and_then(|c| config::lookup(&c.raw, k))
            .filter(|v| !v.is_null())
    };
    let to_stderr_cfg = setting("logging.to_stderr")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let env_stderr = matches!(g.environment.as_deref(), Some("systemd" | "container"))
        && setting("logging.to_files").is_none();
    let to_stderr = g.log_stderr || to_stderr_cfg || env_stderr;
    let files = match cfg {
        Some(c) => logging::file_settings(&c.raw, &c.paths.logs, to_stderr)?,
        None => None,
    };
    logging::init(&logging::LogSettings {
        to_stderr,
        verbose: g.verbose,
        debug_selectors: g.debug.clone(),
        level: cfg.map(|c| c.logging_level.clone()).unwrap_or_default(),
        selectors: cfg.map(|c| c.logging_selectors.clone()).unwrap_or_default(),
        files,
    })
}

/// Applies `-I`, `-t`, `-l`, `--dump`, `-O` and the DPDK flags to every interface (creating a
/// default one when the config has none).
pub fn apply_run_args(cfg: &mut Config, run: &RunArgs) {
    if cfg.interfaces.is_empty() && run.touches_interfaces() {
        cfg.interfaces.push(InterfaceConfig {
            kind: "pcap".into(),
            device: Some(
                if cfg!(target_os = "linux") {
                    "any"
                } else {
                    "default_route"
                }
                .into(),
            ),
            ..InterfaceConfig::default()
        });
    }
    for iface in &mut cfg.interfaces {
        if let Some(f) = &run.file {
            iface.file = Some(f.clone());
        }
        iface.top_speed = run.top_speed;
        iface.loop_count = run.loop_count.unwrap_or(1);
        if let Some(d) = &run.dump {
            iface.dumpfile = Some(d.clone());
        }
        iface.one_at_a_time = run.one_at_a_time;
        iface.dpdk_cli = config::DpdkCliOptions {
            status: run.dpdk_status.clone(),
            port: run.dpdk_port,
            args: run.dpdk_args.clone(),
            queues: run.dpdk_queues,
        };
    }
}

/// `completion bash|zsh`: the script the shell sources, generated from this CLI's own definition
/// (Beats' cobra command accepts the same two shells).
fn completion(shell: &str) -> Result<i32, String> {
    use clap::CommandFactory;
    let sh = match shell {
        "bash" => clap_complete::Shell::Bash,
        "zsh" => clap_complete::Shell::Zsh,
        other => {
            return Err(format!(
                "Unknown shell {other}, only bash and zsh are available"
            ))
        }
    };
    // Generated into memory first: the crate panics on a write error (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(sh, &mut Cli::command(), "packetbeat", &mut script);
    use std::io::Write;
    let _ = std::io::stdout().write_all(&script);
    Ok(0)
}

fn unsupported(what: &str) -> Result<i32, String> {
    Err(format!(
        "the '{what}' command is not implemented by packetbeat-rs"
    ))
}

fn execute(cli: Cli) -> Result<i32, String> {
    let g = cli.global;
    if let Some(p) = g.plugin.first() {
        return Err(format!(
            "loading plugin '{p}': Go plugins (--plugin) cannot be loaded by packetbeat-rs"
        ));
    }
    if let Some(env) = g
        .environment
        .as_deref()
        .filter(|e| !ENVIRONMENTS.contains(e))
    {
        return Err(format!(
            "invalid argument \"{env}\" for \"--environment\" flag: invalid environment \"{env}\" (one of {})",
            ENVIRONMENTS.join(", ")
        ));
    }
    match cli.command {
        Some(Command::Version) => {
            println!("{}", version_line());
            Ok(0)
        }
        Some(Command::Devices) => {
            let devs = crate::sniffer::devices::devices();
            if devs.is_empty() {
                println!("No devices found. You might need sudo?");
            }
            for (i, line) in crate::sniffer::devices::format_device_names(&devs, true, true)
                .iter()
                .enumerate()
            {
                println!("{i}: {line}");
            }
            Ok(0)
        }
        Some(Command::Test {
            what: TestCommand::Config,
        }) => {
            let cfg = config::load(&load_options(&g)).map_err(|e| e.0)?;
            init_logging(&g, Some(&cfg))?;
            let modules =
                crate::protos::build_modules(&cfg.protocols, &cfg.source).map_err(|e| e.0)?;
            // Live interfaces' filters must compile, as Packetbeat's dry-run sniffer setup checks.
            let flows_on = cfg.flows.as_ref().is_some_and(|f| f.enabled);
            for iface in cfg.interfaces.iter().filter(|i| i.file.is_none()) {
                let filter = crate::sniffer::bpf::effective_filter(
                    iface,
                    &modules,
                    &cfg.protocols,
                    flows_on,
                );
                if let Some(f) = filter {
                    crate::sniffer::bpf::check(&f)?;
                }
            }
            crate::publish::processors::check(&cfg)?;
            // What `run` reads before it starts: the output's options, the queue, monitoring.
            crate::outputs::check(&cfg).map_err(|e| format!("{e:#}"))?;
            crate::beater::diskqueue::queue_choice(&cfg).map_err(|e| e.0)?;
            crate::monitoring::MonitoringConfig::from_config(&cfg)?;
            crate::beater::privileges::run_as(&cfg)?;
            crate::beater::seccomp::policy(&cfg)?;
            crate::beater::limits::Limits::from_config(&cfg)?;
            println!("Config OK");
            Ok(0)
        }
        Some(Command::Test {
            what: TestCommand::Output(_),
        }) => {
            let cfg = config::load(&load_options(&g)).map_err(|e| e.0)?;
            init_logging(&g, Some(&cfg))?;
            test_output(&cfg)
        }
        Some(Command::Export {
            what: ExportCommand::Config,
        }) => {
            let (raw, _) = config::load_raw(&load_options(&g)).map_err(|e| e.0)?;
            // Secrets (passwords, API keys, credentials in URLs, keystore values) are printed
            // as xxxxx: the output of this command ends up in tickets and chat logs.
            let text = serde_yaml::to_string(&config::tree::redacted(&config::tree::sorted(&raw)))
                .map_err(|e| format!("Error converting config to YAML format: {e}."))?;
            print!("{text}");
            Ok(0)
        }
        Some(Command::Export {
            what: ExportCommand::Template(a),
        }) => Ok(export::template(&load_options(&g), &a)),
        Some(Command::Export {
            what: ExportCommand::IndexPattern(a),
        }) => Ok(export::index_pattern(&load_options(&g), &a)),
        Some(Command::Export {
            what: ExportCommand::Dashboard(a),
        }) => Ok(export::dashboard(&a)),
        Some(Command::Export {
            what: ExportCommand::IlmPolicy(a),
        }) => Ok(export::ilm_policy(&load_options(&g), &a)),
        Some(Command::Setup(a)) => setup(&g, &a),
        Some(Command::Keystore { what }) => Ok(keystore::run(&g, what)),
        Some(Command::Completion { shell }) => completion(&shell),
        Some(Command::Run(run)) => run_beat(&g, run.merged(cli.run)),
        None => run_beat(&g, cli.run),
    }
}

/// `setup`: with no flag everything Packetbeat sets up (index management, then dashboards);
/// otherwise what the flags name.
fn setup(g: &GlobalArgs, a: &SetupArgs) -> Result<i32, String> {
    if a.pipelines || a.machine_learning {
        return unsupported("setup --pipelines/--machine-learning");
    }
    let all = !a.index_management && !a.dashboards;
    if all || a.index_management {
        setup_index_management(g)?;
    }
    if all || a.dashboards {
        return Ok(export::setup_dashboards(&load_options(g)));
    }
    Ok(0)
}

fn setup_index_management(g: &GlobalArgs) -> Result<(), String> {
    let cfg = config::load(&load_options(g)).map_err(|e| e.0)?;
    init_logging(g, Some(&cfg))?;
    if crate::outputs::configured_name(&cfg) != "elasticsearch" {
        return Err(
            "Index management requested but the Elasticsearch output is not configured/enabled"
                .into(),
        );
    }
    crate::outputs::elasticsearch::setup_index_management(&cfg)
        .map_err(|e| format!("Error setting up index management: {e}"))?;
    println!("Index setup finished.");
    Ok(())
}

/// `test output`: checks the connection to the configured output, as libbeat prints it.
fn test_output(cfg: &Config) -> Result<i32, String> {
    use crate::outputs::Tested;
    Ok(match crate::outputs::test(cfg, &mut std::io::stdout())? {
        Tested::Passed => 0,
        Tested::Failed => 1,
        Tested::Unsupported => {
            let name = crate::outputs::configured_name(cfg);
            println!("{name} output doesn't support testing");
            1
        }
    })
}

fn run_beat(g: &GlobalArgs, run: RunArgs) -> Result<i32, String> {
    let mut cfg = config::load(&load_options(g)).map_err(|e| e.0)?;
    init_logging(g, Some(&cfg))?;
    apply_run_args(&mut cfg, &run);
    if run.no_publish {
        // libbeat's -N: events are processed as usual and nothing reaches the configured output.
        tracing::info!(target: "packetbeat::beater", "-N: publishing to the configured output is disabled; events are discarded");
        cfg.output = config::OutputConfig::Discard;
    }
    if run.httpprof.is_some() || run.cpuprofile.is_some() || run.memprofile.is_some() {
        tracing::warn!(target: "packetbeat::beater", "--httpprof, --cpuprofile and --memprofile are accepted but have no effect in packetbeat-rs");
    }
    if let Some(env) = &g.environment {
        tracing::debug!(target: "packetbeat::beater", "environment: {env}");
    }
    tracing::info!(target: "packetbeat::beater", "Home path: [{}] Config path: [{}] Data path: [{}] Logs path: [{}]",
        cfg.paths.home.display(), cfg.paths.config.display(), cfg.paths.data.display(), cfg.paths.logs.display());
    crate::beater::run(cfg).map_err(|e| format!("{e:#}"))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        let mut v = vec!["packetbeat".to_string()];
        v.extend(args.iter().map(|s| s.to_string()));
        Cli::try_parse_from(args::normalize_args(v)).unwrap()
    }

    #[test]
    fn setup_flags() {
        let c = parse(&["setup", "--index-management", "-e"]);
        match c.command {
            Some(Command::Setup(a)) => assert!(a.index_management && !a.dashboards),
            other => panic!("{other:?}"),
        }
        let c = parse(&["setup", "--dashboards"]);
        let Some(Command::Setup(a)) = c.command else {
            panic!()
        };
        assert!(a.dashboards);
    }

    #[test]
    fn global_flags_anywhere() {
        let c = parse(&[
            "-c",
            "a.yml",
            "test",
            "config",
            "-E",
            "x=1",
            "-e",
            "-d",
            "http,tcp",
            "--path.home",
            "/h",
        ]);
        assert_eq!(c.global.config, [PathBuf::from("a.yml")]);
        assert_eq!(c.global.settings, ["x=1"]);
        assert!(c.global.log_stderr);
        assert_eq!(c.global.debug, ["http,tcp"]);
        assert_eq!(c.global.path_home, Some(PathBuf::from("/h")));
        assert!(c.global.strict_perms);
        assert!(matches!(
            c.command,
            Some(Command::Test {
                what: TestCommand::Config
            })
        ));
    }

    #[test]
    fn strict_perms_forms() {
        assert!(
            !parse(&["--strict.perms=false", "version"])
                .global
                .strict_perms
        );
        assert!(
            !parse(&["-strict.perms=false", "version"])
                .global
                .strict_perms
        );
        assert!(parse(&["--strict.perms", "version"]).global.strict_perms);
    }

    #[test]
    fn run_flags_bare_and_on_run() {
        let c = parse(&["-I", "x.pcap", "-t", "-l", "3", "--dump", "d", "-O"]);
        assert!(c.command.is_none());
        assert_eq!(c.run.file, Some(PathBuf::from("x.pcap")));
        assert!(c.run.top_speed && c.run.one_at_a_time);
        assert_eq!(c.run.loop_count, Some(3));
        let c = parse(&[
            "run",
            "-I",
            "y.pcap",
            "--dpdk_status",
            "enable",
            "--dpdk_port",
            "1",
            "--dpdk_args",
            "-l 0-3",
        ]);
        let Some(Command::Run(r)) = c.command else {
            panic!()
        };
        assert_eq!(r.file, Some(PathBuf::from("y.pcap")));
        assert_eq!(r.dpdk_status.as_deref(), Some("enable"));
        assert_eq!(r.dpdk_port, Some(1));
        assert_eq!(r.dpdk_args.as_deref(), Some("-l 0-3"));
    }

    #[test]
    fn run_args_reach_every_interface() {
        let mut cfg = config::load_from_str(
            "packetbeat.interfaces:\n- device: eth0\n- device: eth1\noutput.console: {}\n",
            "t.yml",
            &[],
        )
        .unwrap();
        let run = RunArgs {
            file: Some("f.pcap".into()),
            top_speed: true,
            loop_count: Some(2),
            dump: Some("d".into()),
            ..Default::default()
        };
        apply_run_args(&mut cfg, &run);
        for i in &cfg.interfaces {
            assert_eq!(i.file.as_deref(), Some(std::path::Path::new("f.pcap")));
            assert!(i.top_speed);
            assert_eq!(i.loop_count, 2);
            assert_eq!(i.dumpfile.as_deref(), Some(std::path::Path::new("d")));
        }
        let mut cfg = config::load_from_str("output.console: {}\n", "t.yml", &[]).unwrap();
        apply_run_args(&mut cfg, &run);
        assert_eq!(cfg.interfaces.len(), 1);
        assert_eq!(
            cfg.interfaces[0].file.as_deref(),
            Some(std::path::Path::new("f.pcap"))
        );
    }

    #[test]
    fn version_format() {
        let v = version_line();
        assert!(
            v.starts_with(&format!("packetbeat version {} (", crate::BEAT_VERSION)),
            "{v}"
        );
        assert!(
            v.contains(&format!(
                "), libbeat {} [packetbeat-rs ",
                crate::BEAT_VERSION
            )),
            "{v}"
        );
    }
}
