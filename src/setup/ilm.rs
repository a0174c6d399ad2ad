//! The lifecycle policy (ILM, or a data stream lifecycle with `setup.dsl.enabled`), resolved
//! from `setup.ilm.*`/`setup.dsl.*` as libbeat's `idxmgmt/lifecycle` resolves it: the policy
//! name (a format string, default `packetbeat`), its body (`policy_file`, or the default hot
//! phase rolling over at 50gb per primary shard or 30 days), `check_exists` and `overwrite`.

use super::{format_static, get_bool, get_str, section_enabled, SetupConfig, Version};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Ilm,
    Dsl,
}

/// The resolved lifecycle settings and policy.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    pub mode: Mode,
    /// `enabled` after libbeat's defaults (a section with `enabled: false` is not unpacked, so
    /// the defaults, enabled, apply: libbeat's file handler behaves so).
    pub enabled: bool,
    pub name: String,
    pub body: Value,
    pub check_exists: bool,
    pub overwrite: bool,
}

/// libbeat's default ILM policy.
pub fn default_ilm_policy() -> Value {
    json!({
        "policy": {
            "phases": {
                "hot": {
                    "actions": {
                        "rollover": {"max_primary_shard_size": "50gb", "max_age": "30d"}
                    }
                }
            }
        }
    })
}

/// libbeat's default data stream lifecycle.
pub fn default_dsl_policy() -> Value {
    json!({"data_retention": "7d"})
}

/// Resolves the lifecycle settings (libbeat's `NewFileClientHandler` and `createPolicy`).
/// `policy_file` is read as given (relative to the working directory, as libbeat reads it).
pub fn lifecycle(cfg: &SetupConfig) -> Result<Lifecycle, String> {
    let ilm = cfg.lifecycle.ilm.as_ref();
    let dsl = cfg.lifecycle.dsl.as_ref();
    let (ilm_on, dsl_on) = (section_enabled(ilm), section_enabled(dsl));
    if ilm_on && dsl_on {
        return Err(
            "only one lifecycle management type can be used, but both ILM and DSL are enabled"
                .into(),
        );
    }
    let mut l = Lifecycle {
        mode: Mode::Ilm,
        enabled: true,
        name: cfg.info.beat.clone(),
        body: default_ilm_policy(),
        check_exists: true,
        overwrite: false,
    };
    let mut policy_file = String::new();
    let section = if dsl_on {
        l.mode = Mode::Dsl;
        l.body = default_dsl_policy();
        l.name = "%{[beat.name]}-%{[beat.version]}".into();
        dsl.map(|s| (s, "setup.dsl"))
    } else if ilm_on {
        ilm.map(|s| (s, "setup.ilm"))
    } else {
        None
    };
    if let Some((s, at)) = section {
        if let Some(b) = get_bool(s, "enabled", at)? {
            l.enabled = b;
        }
        if l.mode == Mode::Ilm {
            if let Some(n) = get_str(s, "policy_name", at)? {
                l.name = n;
            }
        } else {
            // A data stream lifecycle is named after the data stream.
            l.name = get_str(s, "data_stream_pattern", at)?.unwrap_or(l.name);
        }
        if let Some(f) = get_str(s, "policy_file", at)? {
            policy_file = f;
        }
        if let Some(b) = get_bool(s, "check_exists", at)? {
            l.check_exists = b;
        }
        if let Some(b) = get_bool(s, "overwrite", at)? {
            l.overwrite = b;
        }
    }
    l.name = format_static(&l.name, &cfg.info)
        .map_err(|_| "error creating policy name: failed to read ilm policy name".to_string())?;
    if !policy_file.is_empty() {
        let text = std::fs::read_to_string(&policy_file).map_err(|e| {
            format!(
                "error creating policy: failed to read policy file '{policy_file}': open {policy_file}: {}",
                crate::config::io_msg(&e)
            )
        })?;
        let body: Value = serde_json::from_str(&text).map_err(|e| {
            format!("error creating policy: failed to decode policy file '{policy_file}': {e}")
        })?;
        if !body.is_object() {
            return Err(format!(
                "error creating policy: failed to decode policy file '{policy_file}': not a JSON object"
            ));
        }
        l.body = body;
    }
    Ok(l)
}

/// Whether the lifecycle applies with this Elasticsearch version (libbeat's `CheckEnabled`):
/// ILM needs Elasticsearch 7.0.0 or later.
pub fn check_enabled(l: &Lifecycle, es_version: &Version) -> Result<bool, String> {
    if !l.enabled {
        return Ok(false);
    }
    if es_version.less_than(&Version::parse("7.0.0").expect("constant")) {
        return Err(format!(
            "ILM is not supported by the Elasticsearch version in use: Elasticsearch {} does not support ILM",
            es_version.as_str()
        ));
    }
    Ok(true)
}

/// The policy's name and body, as the Elasticsearch output installs it and `export ilm-policy`
/// prints it.
pub fn ilm_policy(cfg: &SetupConfig) -> Result<(String, Value), String> {
    let l = lifecycle(cfg)?;
    Ok((l.name, l.body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn cfg(yaml: &str) -> SetupConfig {
        SetupConfig::from_tree(&crate::config::parse_yaml(yaml).unwrap(), Path::new(".")).unwrap()
    }

    #[test]
    fn defaults_and_options() {
        let l = lifecycle(&cfg("")).unwrap();
        assert_eq!(
            (l.mode, l.name.as_str(), l.check_exists),
            (Mode::Ilm, "packetbeat", true)
        );
        assert_eq!(l.body, default_ilm_policy());
        let l = lifecycle(&cfg(
            "setup.ilm.policy_name: 'p-%{[agent.version]}'\nsetup.ilm.check_exists: false\n",
        ))
        .unwrap();
        assert_eq!(l.name, format!("p-{}", crate::BEAT_VERSION));
        assert!(!l.check_exists);
        // A disabled section is not read: libbeat's defaults apply.
        let l = lifecycle(&cfg("setup.ilm.enabled: false\nsetup.ilm.policy_name: x\n")).unwrap();
        assert_eq!(l.name, "packetbeat");
        assert!(lifecycle(&cfg("setup.ilm.enabled: true\nsetup.dsl.enabled: true\n")).is_err());
        let l = lifecycle(&cfg("setup.dsl.enabled: true\n")).unwrap();
        assert_eq!(l.mode, Mode::Dsl);
        assert_eq!(l.name, format!("packetbeat-{}", crate::BEAT_VERSION));
        let e = lifecycle(&cfg("setup.ilm.policy_file: /nonexistent/p.json\n")).unwrap_err();
        assert!(e.contains("failed to read policy file"), "{e}");
    }

    #[test]
    fn ilm_needs_es7() {
        let l = lifecycle(&cfg("")).unwrap();
        assert!(check_enabled(&l, &Version::parse("6.8.0").unwrap()).is_err());
        assert!(check_enabled(&l, &Version::parse("7.0.0").unwrap()).unwrap());
    }
}
