//! The composable index template, generated from field definitions as libbeat's
//! `template/processor.go` and `template/template.go` generate it: one mapping per field,
//! dynamic templates for `object_type` fields, `query.default_field` from the `default_field`
//! fields, and the index settings libbeat sets (`refresh_interval`, `total_fields.limit`,
//! `max_docvalue_fields_search`) under the user's `setup.template.settings`.
//!
//! Packetbeat's open-source build is not "Elastic licensed": `wildcard` fields are mapped as
//! `keyword` and `match_only_text` as `text`, as that build maps them.

use super::fields::{self, Field};
use super::{deep_update, get_path, put_path, SetupConfig, Version};
use serde_json::{json, Map, Value};

/// libbeat's `elasticLicensed` for Packetbeat's open-source build.
const ELASTIC_LICENSED: bool = false;
const DEFAULT_TOTAL_FIELDS_LIMIT: i64 = 12500;
const DEFAULT_MAX_DOCVALUE_FIELDS_SEARCH: i64 = 200;
const DEFAULT_IGNORE_ABOVE: i64 = 1024;
const DEFAULT_SCALING_FACTOR: i64 = 1000;

fn v(s: &str) -> Version {
    Version::parse(s).expect("constant version")
}

#[derive(Clone)]
struct State {
    default_field: bool,
    path: String,
}

impl State {
    /// The state for the children (or multi-fields) of `f`.
    fn inside(f: &Field) -> State {
        State {
            default_field: f.default_field.unwrap_or(false),
            path: full_path(f),
        }
    }
}

/// `path.name` of a field being processed.
fn full_path(f: &Field) -> String {
    if f.path.is_empty() {
        f.name.clone()
    } else {
        format!("{}.{}", f.path, f.name)
    }
}

/// libbeat's `template.Processor`: walks the fields, fills `properties`, collects analyzers,
/// dynamic templates and the default fields.
struct Processor {
    es_version: Version,
    migration: bool,
    dynamic_templates: Vec<Value>,
    dynamic_keys: Vec<(String, String, String)>,
    default_fields: Vec<String>,
}

type Analyzer = Option<(String, Option<Value>)>;

impl Processor {
    fn process(
        &mut self,
        fields: &[Field],
        state: Option<&State>,
        output: &mut Map<String, Value>,
        analyzers: &mut Map<String, Value>,
    ) -> Result<(), String> {
        let root = State {
            default_field: false,
            path: String::new(),
        };
        let state = state.unwrap_or(&root);
        for field in fields {
            if field.name.is_empty() {
                continue;
            }
            let mut field = field.clone();
            field.path = state.path.clone();
            if field.default_field.is_none() {
                field.default_field = Some(state.default_field);
            }
            let mut analyzer: Analyzer = None;
            let mut search_analyzer: Analyzer = None;
            let index_mapping: Option<Map<String, Value>> = match field.type_.as_str() {
                "ip" => Some(self.typed(&field, "ip")),
                "scaled_float" => Some(self.scaled_float(&field, None)),
                "half_float" => Some(self.typed(&field, "half_float")),
                "integer" => Some(self.typed(&field, "long")),
                "text" => Some(self.text(&field, analyzers, &mut analyzer, &mut search_analyzer)),
                "match_only_text" => {
                    // Unlicensed builds (and Elasticsearch before 7.14) map it as text.
                    Some(self.text(&field, analyzers, &mut analyzer, &mut search_analyzer))
                }
                "wildcard" | "" | "keyword" => Some(self.keyword(&field, analyzers)),
                "object" => Some(self.object(&field)),
                "array" => {
                    let mut p = self.default_properties(&field);
                    if !field.object_type.is_empty() {
                        p.insert("type".into(), json!(field.object_type));
                    }
                    Some(p)
                }
                "alias" => self.alias(&field),
                "histogram" => {
                    if self.es_version.less_than(&v("7.6.0")) {
                        None
                    } else {
                        Some(self.typed(&field, "histogram"))
                    }
                }
                "nested" => {
                    let mut m = self.group(&field, output, analyzers)?;
                    m.insert("type".into(), json!("nested"));
                    Some(m)
                }
                "group" => Some(self.group(&field, output, analyzers)?),
                other => Some(self.typed(&field, other)),
            };
            let _ = ELASTIC_LICENSED;

            if field.default_field == Some(true)
                && matches!(
                    field.type_.as_str(),
                    "" | "keyword" | "text" | "match_only_text" | "wildcard"
                )
            {
                self.add_default_field(&field);
            }

            if let Some(m) = index_mapping.filter(|m| !m.is_empty()) {
                if field.dynamic_template {
                    if !self.es_version.less_than(&v("7.13.0")) {
                        self.add_dynamic_template(&field.name, "", "", m);
                    }
                } else {
                    put_path(output, &generate_key(&field.name), Value::Object(m));
                }
            }

            for (name, def) in [analyzer, search_analyzer].into_iter().flatten() {
                if let Some(def) = def {
                    if let Some(prev) = analyzers.insert(name.clone(), def.clone()) {
                        if prev != def {
                            return Err(format!(
                                "inconsistent definitions for analyzers with the name \"{name}\""
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn add_default_field(&mut self, f: &Field) {
        if f.index.unwrap_or(true) {
            self.default_fields.push(full_path(f));
        }
    }

    fn default_properties(&self, f: &Field) -> Map<String, Value> {
        let mut p = Map::new();
        if let Some(i) = f.index {
            p.insert("index".into(), json!(i));
        }
        if let Some(d) = f.doc_values {
            p.insert("doc_values".into(), json!(d));
        }
        if !f.copy_to.is_empty() {
            p.insert("copy_to".into(), json!(f.copy_to));
        }
        if !self.es_version.less_than(&v("7.6.0"))
            && (!f.metric_type.is_empty() || !f.unit.is_empty())
        {
            let mut meta = Map::new();
            if !f.metric_type.is_empty() {
                meta.insert("metric_type".into(), json!(f.metric_type));
            }
            if !f.unit.is_empty() {
                meta.insert("unit".into(), json!(f.unit));
            }
            p.insert("meta".into(), Value::Object(meta));
        }
        p
    }

    fn typed(&self, f: &Field, t: &str) -> Map<String, Value> {
        let mut p = self.default_properties(f);
        if !t.is_empty() {
            p.insert("type".into(), json!(t));
        }
        p
    }

    fn scaled_float(&self, f: &Field, param: Option<i64>) -> Map<String, Value> {
        let mut p = self.default_properties(f);
        p.insert("type".into(), json!("scaled_float"));
        let mut factor = DEFAULT_SCALING_FACTOR;
        if f.scaling_factor != 0 && f.object_type_params.is_empty() {
            factor = f.scaling_factor;
        }
        if let Some(s) = param.filter(|s| *s != 0) {
            factor = s;
        }
        p.insert("scaling_factor".into(), json!(factor));
        p
    }

    fn multi_fields(
        &mut self,
        f: &Field,
        analyzers: &mut Map<String, Value>,
    ) -> Option<Map<String, Value>> {
        if f.multi_fields.is_empty() {
            return None;
        }
        let st = State::inside(f);
        let mut out = Map::new();
        // libbeat ignores errors of multi-field processing.
        let _ = self.process(&f.multi_fields, Some(&st), &mut out, analyzers);
        Some(out)
    }

    fn keyword(&mut self, f: &Field, analyzers: &mut Map<String, Value>) -> Map<String, Value> {
        let mut p = self.default_properties(f);
        p.insert("type".into(), json!("keyword"));
        match f.ignore_above {
            0 => {
                p.insert("ignore_above".into(), json!(DEFAULT_IGNORE_ABOVE));
            }
            -1 => {}
            n => {
                p.insert("ignore_above".into(), json!(n));
            }
        }
        if let Some(m) = self.multi_fields(f, analyzers) {
            p.insert("fields".into(), Value::Object(m));
        }
        p
    }

    fn text(
        &mut self,
        f: &Field,
        analyzers: &mut Map<String, Value>,
        analyzer: &mut Analyzer,
        search_analyzer: &mut Analyzer,
    ) -> Map<String, Value> {
        let mut p = self.default_properties(f);
        p.insert("type".into(), json!("text"));
        if !f.norms {
            p.insert("norms".into(), json!(false));
        }
        if let Some((name, def)) = f.analyzer.as_ref().filter(|(n, _)| !n.is_empty()) {
            p.insert("analyzer".into(), json!(name));
            *analyzer = Some((name.clone(), def.clone()));
        }
        if let Some((name, def)) = f.search_analyzer.as_ref().filter(|(n, _)| !n.is_empty()) {
            p.insert("search_analyzer".into(), json!(name));
            *search_analyzer = Some((name.clone(), def.clone()));
        }
        if let Some(m) = self.multi_fields(f, analyzers) {
            p.insert("fields".into(), Value::Object(m));
        }
        p
    }

    fn alias(&self, f: &Field) -> Option<Map<String, Value>> {
        if !self.migration && f.migration_alias {
            return None;
        }
        let mut p = self.default_properties(f);
        p.insert("type".into(), json!("alias"));
        p.insert("path".into(), json!(f.alias_path));
        Some(p)
    }

    fn group(
        &mut self,
        f: &Field,
        output: &mut Map<String, Value>,
        analyzers: &mut Map<String, Value>,
    ) -> Result<Map<String, Value>, String> {
        let mut m = Map::new();
        if let Some(d) = &f.dynamic {
            m.insert("dynamic".into(), d.clone());
        }
        // Definitions of the same group earlier in the list are combined with this one.
        let key = format!("{}.properties", generate_key(&f.name));
        let mut properties = match get_path(output, &key) {
            Some(Value::Object(o)) => o.clone(),
            Some(_) => return Err(format!("{key} is expected to be a MapStr")),
            None => Map::new(),
        };
        let st = State::inside(f);
        self.process(&f.fields, Some(&st), &mut properties, analyzers)?;
        if !properties.is_empty() {
            m.insert("properties".into(), Value::Object(properties));
        }
        Ok(m)
    }

    fn object(&mut self, f: &Field) -> Map<String, Value> {
        let params: Vec<fields::ObjectTypeCfg> = if f.object_type_params.is_empty() {
            vec![fields::ObjectTypeCfg {
                object_type: f.object_type.clone(),
                object_type_mapping_type: f.object_type_mapping_type.clone(),
                scaling_factor: f.scaling_factor,
            }]
        } else {
            f.object_type_params.clone()
        };
        let match_type = |only: &str, mt: &str| {
            if mt.is_empty() {
                only.to_string()
            } else {
                mt.to_string()
            }
        };
        for otp in &params {
            let mut dyn_props = self.default_properties(f);
            let matching = match otp.object_type.as_str() {
                "scaled_float" => {
                    dyn_props = self.scaled_float(f, Some(otp.scaling_factor));
                    match_type("*", &otp.object_type_mapping_type)
                }
                "text" => {
                    dyn_props.insert("type".into(), json!("text"));
                    match_type("string", &otp.object_type_mapping_type)
                }
                "keyword" => {
                    dyn_props.insert("type".into(), json!(otp.object_type));
                    match_type("string", &otp.object_type_mapping_type)
                }
                "byte" | "double" | "float" | "long" | "short" | "boolean" => {
                    dyn_props.insert("type".into(), json!(otp.object_type));
                    match_type(&otp.object_type, &otp.object_type_mapping_type)
                }
                "histogram" => {
                    dyn_props.insert("type".into(), json!(otp.object_type));
                    match_type("*", &otp.object_type_mapping_type)
                }
                _ => continue,
            };
            let mut path = full_path(f);
            let mut path_match = path.clone();
            if !path.contains('*') {
                path_match.push_str(".*");
            }
            if params.len() > 1 {
                path = format!("{path}_{matching}");
            }
            self.add_dynamic_template(&path, &path_match, &matching, dyn_props);
        }
        let mut p = self.default_properties(f);
        p.insert("type".into(), json!("object"));
        if let Some(e) = f.enabled {
            p.insert("enabled".into(), json!(e));
        }
        if let Some(d) = &f.dynamic {
            p.insert("dynamic".into(), d.clone());
        }
        p
    }

    fn add_dynamic_template(
        &mut self,
        name: &str,
        path_match: &str,
        match_type: &str,
        properties: Map<String, Value>,
    ) {
        let key = (
            name.to_string(),
            path_match.to_string(),
            match_type.to_string(),
        );
        if self.dynamic_keys.contains(&key) {
            return;
        }
        let mut t = Map::new();
        t.insert("mapping".into(), Value::Object(properties));
        if !match_type.is_empty() {
            t.insert("match_mapping_type".into(), json!(match_type));
        }
        if !path_match.is_empty() {
            t.insert("path_match".into(), json!(path_match));
        }
        let mut entry = Map::new();
        entry.insert(name.to_string(), Value::Object(t));
        self.dynamic_keys.push(key);
        self.dynamic_templates.push(Value::Object(entry));
    }
}

/// libbeat's `mapping.GenerateKey`: `a.b.c` → `a.properties.b.properties.c`.
pub fn generate_key(name: &str) -> String {
    name.split('.').collect::<Vec<_>>().join(".properties.")
}

/// The template's name and index pattern (`setup.template.name`/`pattern`, or
/// `setup.template.json.name`), with format strings expanded.
pub fn name_and_pattern(cfg: &SetupConfig) -> Result<(String, String), String> {
    let t = &cfg.template;
    let mut name = if t.json_enabled {
        t.json_name.clone()
    } else {
        t.name.clone()
    };
    if name.is_empty() {
        name = format!("{}-{}", cfg.info.index_prefix, cfg.info.version);
    }
    let pattern = if t.pattern.is_empty() {
        format!("{name}*")
    } else {
        t.pattern.clone()
    };
    Ok((
        super::format_static(&name, &cfg.info)?,
        super::format_static(&pattern, &cfg.info)?,
    ))
}

/// Builds the template body from field definitions (libbeat's `Template.load` + `Generate`).
/// `index_settings` are the user's `setup.template.settings.index` with the lifecycle settings
/// applied; `lifecycle` is the DSL lifecycle, if any.
fn generate(
    cfg: &SetupConfig,
    es_version: &Version,
    mut field_list: Vec<Field>,
    index_settings: &Map<String, Value>,
    lifecycle: &Map<String, Value>,
    pattern: &str,
    serverless: bool,
) -> Result<Value, String> {
    let t = &cfg.template;
    if !t.append_fields.is_empty() {
        field_list = fields::concat_fields(field_list, &t.append_fields)?;
    }
    let mut p = Processor {
        es_version: es_version.clone(),
        migration: cfg.migration,
        dynamic_templates: Vec::new(),
        dynamic_keys: Vec::new(),
        default_fields: Vec::new(),
    };
    let mut properties = Map::new();
    let mut analyzers = Map::new();
    p.process(&field_list, None, &mut properties, &mut analyzers)?;

    let mut dyn_templates = p.dynamic_templates.clone();
    dyn_templates.push(json!({
        "strings_as_keyword": {
            "mapping": {"ignore_above": 1024, "type": "keyword"},
            "match_mapping_type": "string"
        }
    }));
    let mut mappings = Map::new();
    mappings.insert(
        "_meta".into(),
        json!({"version": cfg.info.version, "beat": cfg.info.index_prefix}),
    );
    mappings.insert("date_detection".into(), json!(false));
    mappings.insert("dynamic_templates".into(), Value::Array(dyn_templates));
    mappings.insert("properties".into(), Value::Object(properties));
    if !t.settings_source.is_empty() {
        mappings.insert("_source".into(), Value::Object(t.settings_source.clone()));
    }

    let mut default_fields: Vec<Value> = p.default_fields.iter().map(|s| json!(s)).collect();
    default_fields.push(json!("fields.*"));
    let mut index = Map::new();
    index.insert("refresh_interval".into(), json!("5s"));
    index.insert(
        "mapping".into(),
        json!({"total_fields": {"limit": DEFAULT_TOTAL_FIELDS_LIMIT}}),
    );
    index.insert("query".into(), json!({ "default_field": default_fields }));
    let mut user = index_settings.clone();
    if serverless {
        // Serverless Elasticsearch rejects these settings.
        user.remove("number_of_shards");
    } else {
        index.insert(
            "max_docvalue_fields_search".into(),
            json!(DEFAULT_MAX_DOCVALUE_FIELDS_SEARCH),
        );
    }
    deep_update(&mut index, &user);

    let mut settings = Map::new();
    settings.insert("index".into(), Value::Object(index));
    if !analyzers.is_empty() {
        settings.insert("analysis".into(), json!({ "analyzer": analyzers }));
    }
    let mut template = Map::new();
    template.insert("mappings".into(), Value::Object(mappings));
    template.insert("settings".into(), Value::Object(settings));
    if !lifecycle.is_empty() {
        template.insert("lifecycle".into(), Value::Object(lifecycle.clone()));
    }
    Ok(json!({
        "template": template,
        "data_stream": {},
        "priority": t.priority,
        "index_patterns": [pattern],
    }))
}

/// The index template as the Elasticsearch output installs it and `export template` prints it.
/// `lifecycle` is the lifecycle the template refers to (`None` without ILM/DSL). Returns the
/// template's name and body. `serverless` leaves out the settings serverless Elasticsearch
/// rejects (libbeat also takes a data stream lifecycle, `setup.dsl`, to mean serverless when it
/// writes the template to a file).
pub fn template(
    cfg: &SetupConfig,
    es_version: &Version,
    lifecycle: Option<&super::ilm::Lifecycle>,
    serverless: bool,
) -> Result<(String, Value), String> {
    let (name, pattern) =
        name_and_pattern(cfg).map_err(|e| format!("error creating template instance: {e}"))?;
    let t = &cfg.template;
    if t.json_enabled {
        let path = cfg.resolve(&t.json_path);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "error checking json file {} for template: {}",
                path.display(),
                crate::config::io_msg(&e)
            )
        })?;
        let body: Value = serde_json::from_str(&text)
            .map_err(|e| format!("could not unmarshal json template: {e}"))?;
        return Ok((name, body));
    }
    let mut index_settings = t.settings_index.clone();
    let mut dsl_lifecycle = t.settings_lifecycle.clone();
    if let Some(l) = lifecycle {
        if l.name.is_empty() {
            return Err("error applying ILM settings: no policy name configured".into());
        }
        match l.mode {
            super::ilm::Mode::Ilm => {
                let lc = match index_settings.get("lifecycle") {
                    None | Some(Value::Null) => Map::new(),
                    Some(Value::Object(o)) => o.clone(),
                    Some(_) => return Err(
                        "error applying ILM settings: settings.index.lifecycle must be an object"
                            .into(),
                    ),
                };
                let mut lc = lc;
                lc.entry("name").or_insert_with(|| json!(l.name));
                index_settings.insert("lifecycle".into(), Value::Object(lc));
            }
            super::ilm::Mode::Dsl => {
                if let Value::Object(o) = &l.body {
                    dsl_lifecycle = o.clone();
                }
            }
        }
    }
    let field_list = if t.fields.is_empty() {
        fields::bundled()?
    } else {
        let path = cfg.resolve(&t.fields);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "error creating template from file {}: open {}: {}",
                path.display(),
                path.display(),
                crate::config::io_msg(&e)
            )
        })?;
        fields::load_fields(&text)
            .map_err(|e| format!("error creating template from file {}: {e}", path.display()))?
    };
    let body = generate(
        cfg,
        es_version,
        field_list,
        &index_settings,
        &dsl_lifecycle,
        &pattern,
        serverless,
    )
    .map_err(|e| format!("error creating template: {e}"))?;
    Ok((name, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc() -> Processor {
        Processor {
            es_version: v("8.17.0"),
            migration: false,
            dynamic_templates: Vec::new(),
            dynamic_keys: Vec::new(),
            default_fields: Vec::new(),
        }
    }

    #[test]
    fn mappings_of_each_kind() {
        let f = fields::load_fields(
            "- key: t\n  fields:\n  - name: g\n    type: group\n    default_field: true\n    fields:\n    - name: k\n      type: keyword\n    - name: n\n      type: integer\n      unit: ms\n    - name: o\n      type: object\n      object_type: long\n    - name: a\n      type: alias\n      path: g.k\n      migration: true\n  - name: g\n    type: group\n    fields:\n    - name: k2\n      type: keyword\n      ignore_above: -1\n",
        )
        .unwrap();
        let mut p = proc();
        let mut out = Map::new();
        p.process(&f, None, &mut out, &mut Map::new()).unwrap();
        let g = &out["g"]["properties"];
        assert_eq!(g["k"], json!({"type": "keyword", "ignore_above": 1024}));
        assert_eq!(g["n"], json!({"type": "long", "meta": {"unit": "ms"}}));
        assert_eq!(g["o"], json!({"type": "object"}));
        assert!(g.get("a").is_none(), "migration alias without migration");
        assert_eq!(
            g["k2"],
            json!({"type": "keyword"}),
            "second definition merges"
        );
        assert_eq!(p.default_fields, ["g.k"]);
        assert_eq!(
            p.dynamic_templates,
            [
                json!({"g.o": {"mapping": {"type": "long"}, "match_mapping_type": "long", "path_match": "g.o.*"}})
            ]
        );
    }

    #[test]
    fn default_template_shape() {
        let cfg = SetupConfig::defaults();
        let (name, t) = template(&cfg, &v("8.17.2"), None, false).unwrap();
        assert_eq!(name, format!("packetbeat-{}", crate::BEAT_VERSION));
        assert_eq!(t["priority"], 150);
        assert_eq!(t["data_stream"], json!({}));
        let idx = &t["template"]["settings"]["index"];
        assert_eq!(idx["mapping"]["total_fields"]["limit"], 12500);
        let df = idx["query"]["default_field"].as_array().unwrap();
        assert_eq!(df.last().unwrap(), "fields.*");
        assert!(df.iter().any(|f| f == "http.request.body.content") || df.len() > 10);
        let props = &t["template"]["mappings"]["properties"];
        assert_eq!(
            props["mysql"]["properties"]["affected_rows"]["type"],
            "long"
        );
        assert_eq!(props["@timestamp"]["type"], "date");
    }
}
