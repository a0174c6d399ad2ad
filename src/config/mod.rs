//! Configuration with Beats semantics.
//!
//! [`load`] does what libbeat's `cfgfile.Load` and Packetbeat's config unpacking do together:
//! - the default tree `path.{home,config,data,logs}` (home: the directory of the binary as
//!   invoked, config `${path.home}`, data `${path.home}/data`, logs `${path.home}/logs`);
//! - the config files (`-c`, default `packetbeat.yml`, relative to `--path.config`, else
//!   `--path.home`, else the working directory), checked for strict permissions, YAML, dotted keys
//!   meaning nesting ([`tree`]);
//! - the `-E` overrides and `--path.*` flags merged last ([`overrides`]);
//! - `${VAR}` / `${VAR:default}` / `${path.home}` resolved ([`expand`]);
//! - the typed [`Config`] built and validated ([`build`]).

pub mod build;
pub mod expand;
pub mod overrides;
pub mod perms;
pub mod tree;
pub mod types;

pub use build::build;
pub use types::*;

use serde_yaml::{Mapping, Value};
use std::path::{Path, PathBuf};

/// The beat name: default config file `packetbeat.yml`, default `output.file.filename`.
pub const BEAT_NAME: &str = "packetbeat";

/// What the command line says about where the configuration is and what overrides it.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// `-c` (repeatable; later files merge over earlier ones). Empty means `packetbeat.yml`.
    pub config_files: Vec<PathBuf>,
    /// `-E key=value` (applied in order, after the files).
    pub overrides: Vec<String>,
    /// `--path.home`, `--path.config`, `--path.data`, `--path.logs`.
    pub path_home: Option<PathBuf>,
    pub path_config: Option<PathBuf>,
    pub path_data: Option<PathBuf>,
    pub path_logs: Option<PathBuf>,
    /// `--strict.perms` (default true): refuse config files writable by group/other or owned by
    /// another user than the current one or root.
    pub strict_perms: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            config_files: Vec::new(),
            overrides: Vec::new(),
            path_home: None,
            path_config: None,
            path_data: None,
            path_logs: None,
            strict_perms: true,
        }
    }
}

impl LoadOptions {
    /// The config files to read, as libbeat locates them: relative names are joined to
    /// `--path.config`, else `--path.home`, else left relative to the working directory.
    pub fn config_paths(&self) -> Vec<PathBuf> {
        let base: Option<&PathBuf> = self.path_config.as_ref().or(self.path_home.as_ref());
        let files = if self.config_files.is_empty() {
            vec![PathBuf::from(format!("{BEAT_NAME}.yml"))]
        } else {
            self.config_files.clone()
        };
        files
            .into_iter()
            .map(|f| match base {
                Some(b) if f.is_relative() => b.join(f),
                _ => f,
            })
            .collect()
    }

    /// `-E` overrides plus the `--path.*` flags (which libbeat turns into overrides too).
    fn all_overrides(&self) -> Result<Value, ConfigError> {
        let mut t = overrides::settings_tree(&self.overrides)
            .map_err(|e| ConfigError(format!("invalid argument for \"-E\" flag: {e}")))?;
        for (key, v) in [
            ("home", &self.path_home),
            ("config", &self.path_config),
            ("data", &self.path_data),
            ("logs", &self.path_logs),
        ] {
            if let Some(p) = v {
                tree::set_path(
                    &mut t,
                    &["path", key],
                    Value::String(p.display().to_string()),
                    true,
                );
            }
        }
        Ok(t)
    }
}

/// libbeat's default for `path.home`: the absolute directory of the binary as invoked
/// (`filepath.Abs(filepath.Dir(os.Args[0]))`; a binary found through `$PATH` gives the working
/// directory, as in Packetbeat).
pub fn default_home() -> PathBuf {
    let arg0 = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .unwrap_or_default();
    let dir = match arg0.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    absolute(&dir)
}

fn absolute(p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|c| c.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    // Lexical clean-up like Go's filepath.Clean (no symlink resolution).
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The defaults libbeat merges under every config.
fn defaults_tree(home: &Path) -> Value {
    let mut path = Mapping::new();
    path.insert("home".into(), Value::String(home.display().to_string()));
    path.insert("config".into(), "${path.home}".into());
    path.insert(
        "data".into(),
        Value::String(format!("${{path.home}}{}data", std::path::MAIN_SEPARATOR)),
    );
    path.insert(
        "logs".into(),
        Value::String(format!("${{path.home}}{}logs", std::path::MAIN_SEPARATOR)),
    );
    let mut root = Mapping::new();
    root.insert("path".into(), Value::Mapping(path));
    Value::Mapping(root)
}

/// The largest configuration file read. Real ones are kilobytes; the cap keeps a mistaken path
/// (a capture, a log) from being read into memory whole.
pub const MAX_CONFIG_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Deepest nesting of flow collections (`[`, `{`) accepted. libyaml's scanner spends time
/// quadratic in the nesting before its own recursion limit (128) rejects it, so a file of
/// brackets would hang start-up; this linear pre-check answers at once.
const MAX_FLOW_DEPTH: usize = 128;

fn read_config_file(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| io_msg(&e))?;
    let mut text = String::new();
    f.take(MAX_CONFIG_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| io_msg(&e))?;
    if text.len() as u64 > MAX_CONFIG_FILE_BYTES {
        return Err(format!(
            "file is larger than {} MiB, not a configuration file",
            MAX_CONFIG_FILE_BYTES >> 20
        ));
    }
    Ok(text)
}

/// The deepest nesting of `[`/`{` outside quoted scalars and comments, and the line where it
/// passes `MAX_FLOW_DEPTH`.
fn flow_too_deep(text: &str) -> Option<usize> {
    let (mut depth, mut line) = (0usize, 1usize);
    let mut bytes = text.bytes().peekable();
    let mut prev = b'\n';
    while let Some(b) = bytes.next() {
        match b {
            b'\n' => line += 1,
            b'#' if prev == b' ' || prev == b'\t' || prev == b'\n' => {
                while bytes.next_if(|&c| c != b'\n').is_some() {}
            }
            b'\'' | b'"' => {
                // A quoted scalar: skip to its closing quote ('' and \" escape one).
                while let Some(c) = bytes.next() {
                    match c {
                        b'\n' => line += 1,
                        b'\\' if b == b'"' => {
                            bytes.next();
                        }
                        c if c == b => {
                            if b == b'\'' && bytes.next_if_eq(&b'\'').is_some() {
                                continue;
                            }
                            break;
                        }
                        _ => {}
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Some(line);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        prev = b;
    }
    None
}

/// Parses one YAML document into a normalised tree. Errors read like go-yaml's
/// (`yaml: line 3: mapping values are not allowed in this context`).
pub fn parse_yaml(text: &str) -> Result<Value, String> {
    if let Some(line) = flow_too_deep(text) {
        return Err(format!(
            "yaml: line {line}: exceeded max depth of {MAX_FLOW_DEPTH}"
        ));
    }
    let v: Value = serde_yaml::from_str(text).map_err(|e| {
        let msg = e.to_string();
        let msg = match msg.find(" at line ") {
            Some(i) => msg[..i].to_string(),
            None => msg,
        };
        match e.location() {
            Some(loc) => format!("yaml: line {}: {}", loc.line(), msg),
            None => format!("yaml: {msg}"),
        }
    })?;
    match v {
        Value::Null => Ok(Value::Mapping(Mapping::new())),
        Value::Mapping(_) => Ok(tree::normalize(v)),
        other => Err(format!(
            "required 'object', but found '{}' in field '.'",
            match other {
                Value::Sequence(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                Value::Bool(_) => "bool",
                _ => "value",
            }
        )),
    }
}

/// Reads and merges the config files and the overrides, without resolving variables: the tree
/// `export config` prints (as libbeat, which disables the resolver there). Returns the tree and
/// the source name used in messages.
pub fn load_raw(opts: &LoadOptions) -> Result<(Value, String), ConfigError> {
    let home = opts.path_home.clone().unwrap_or_else(default_home);
    let mut root = defaults_tree(&home);
    let paths = opts.config_paths();
    for path in &paths {
        let shown = path.display().to_string();
        if opts.strict_perms {
            perms::check_owner_exclusive_write(path)
                .map_err(|e| ConfigError(format!("error loading config file: {e}")))?;
        }
        let text = read_config_file(path)
            .map_err(|e| ConfigError(format!("error loading config file: open {shown}: {e}")))?;
        let t = parse_yaml(&text)
            .map_err(|e| ConfigError(format!("error loading config file: {e}")))?;
        tree::merge(&mut root, t);
    }
    tree::merge(&mut root, opts.all_overrides()?);
    let source = paths
        .first()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    Ok((root, source))
}

/// Go-style text of an I/O error (`no such file or directory`).
pub fn io_msg(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let s = std::io::Error::from_raw_os_error(code).to_string();
            // "No such file or directory (os error 2)" -> "no such file or directory"
            let s = s.split(" (os error").next().unwrap_or(&s).to_string();
            let mut c = s.chars();
            match c.next() {
                Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
                None => s,
            }
        }
        None => e.to_string(),
    }
}

/// Loads the configuration: files, overrides, variables, then the typed [`Config`].
pub fn load(opts: &LoadOptions) -> Result<Config, ConfigError> {
    let (raw, source) = load_raw(opts)?;
    resolve_and_build(&raw, &source, opts.strict_perms)
}

/// Loads a configuration from YAML text (tests and embedding): `source` names it in messages,
/// `overrides` are `-E` settings.
pub fn load_from_str(
    yaml: &str,
    source: &str,
    overrides: &[String],
) -> Result<Config, ConfigError> {
    let mut root = defaults_tree(&default_home());
    let t = parse_yaml(yaml).map_err(|e| ConfigError(format!("error loading config file: {e}")))?;
    tree::merge(&mut root, t);
    let opts = LoadOptions {
        overrides: overrides.to_vec(),
        ..LoadOptions::default()
    };
    tree::merge(&mut root, opts.all_overrides()?);
    resolve_and_build(&root, source, false)
}

/// Where the keystore of this configuration is: `keystore.path`, by default
/// `${path.data}/packetbeat.keystore` (libbeat's `LoadKeystore`).
pub fn keystore_path(raw: &Value, source: &str) -> Result<PathBuf, ConfigError> {
    let env = |k: &str| std::env::var(k).ok();
    let at = |key: &str| {
        expand::expand_at(raw, key, &env).map_err(|e| ConfigError::at(e.msg, &e.key, source))
    };
    if let Some(Value::String(p)) = at("keystore.path")? {
        if !p.is_empty() {
            return Ok(PathBuf::from(p));
        }
    }
    let data = match at("path.data")? {
        Some(Value::String(d)) => PathBuf::from(d),
        _ => default_home().join("data"),
    };
    Ok(data.join("packetbeat.keystore"))
}

/// Resolves `${…}` against the config, then the keystore, then the environment (libbeat's
/// resolver order), and builds the typed configuration.
fn resolve_and_build(raw: &Value, source: &str, strict_perms: bool) -> Result<Config, ConfigError> {
    let store = crate::keystore::FileKeystore::open(&keystore_path(raw, source)?, strict_perms)
        .map_err(|e| ConfigError(format!("could not initialize the keystore: {e}")))?;
    let lookup = |k: &str| match store.get(k) {
        Some(secret) => Some(String::from_utf8_lossy(secret).into_owned()),
        None => std::env::var(k).ok(),
    };
    let expanded =
        expand::expand_tree(raw, &lookup).map_err(|e| ConfigError::at(e.msg, &e.key, source))?;
    build(&expanded, source)
}

#[cfg(test)]
mod tests;
