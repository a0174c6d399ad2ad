//! The Kibana index pattern (`packetbeat-*`), generated from the field definitions as libbeat's
//! `kibana/index_pattern_generator.go` and `fields_transformer.go` generate it: one entry per
//! leaf field (aliases resolved to their target's attributes, multi-fields after their parent),
//! then `_id`, `_type`, `_index`, `_score`; `fields` and `fieldFormatMap` are JSON text inside
//! the saved object, as Kibana stores them.

use super::fields::{self, Field};
use super::{to_go_json, SetupConfig, Version};
use serde_json::{json, Map, Value};

struct Transformer<'a> {
    all: &'a [Field],
    version: Version,
    migration: bool,
    out: Vec<Map<String, Value>>,
    keys: std::collections::HashMap<String, usize>,
    formats: Map<String, Value>,
}

fn kibana_type(t: &str) -> Option<&'static str> {
    Some(match t {
        "binary" => "binary",
        "half_float" | "scaled_float" | "float" | "integer" | "long" | "short" | "byte" => "number",
        "text" | "keyword" | "" => "string",
        "geo_point" => "geo_point",
        "date" => "date",
        "ip" => "ip",
        "ip_range" => "ip_range",
        "boolean" => "boolean",
        _ => return None,
    })
}

fn transform_field(
    version: &Version,
    f: &Field,
) -> (Map<String, Value>, Option<Map<String, Value>>) {
    let mut m = Map::new();
    m.insert("name".into(), json!(f.path));
    m.insert("count".into(), json!(f.count));
    m.insert("scripted".into(), json!(false));
    m.insert("indexed".into(), json!(f.index.unwrap_or(true)));
    m.insert("analyzed".into(), json!(f.analyzed.unwrap_or(false)));
    m.insert("doc_values".into(), json!(f.doc_values.unwrap_or(true)));
    m.insert("searchable".into(), json!(f.searchable.unwrap_or(true)));
    m.insert("aggregatable".into(), json!(f.aggregatable.unwrap_or(true)));
    if let Some(t) = kibana_type(&f.type_) {
        m.insert("type".into(), json!(t));
    }
    if f.type_ == "binary" {
        m.insert("aggregatable".into(), json!(false));
        m.insert("analyzed".into(), json!(false));
        m.insert("doc_values".into(), json!(f.doc_values.unwrap_or(false)));
        m.insert("indexed".into(), json!(false));
        m.insert("searchable".into(), json!(false));
    }
    if f.type_ == "object" {
        if let Some(enabled) = f.enabled {
            m.insert("enabled".into(), json!(enabled));
            if !enabled {
                for k in [
                    "aggregatable",
                    "analyzed",
                    "doc_values",
                    "indexed",
                    "searchable",
                ] {
                    m.insert(k.into(), json!(false));
                }
            }
        }
    }
    if f.type_ == "text" {
        m.insert("aggregatable".into(), json!(false));
    }
    if !f.script.is_empty() {
        m.insert("scripted".into(), json!(true));
        m.insert("script".into(), json!(f.script));
        m.insert("lang".into(), json!("painless"));
        m.insert("doc_values".into(), json!(false));
    }
    let mut format = None;
    if !f.format.is_empty() || !f.pattern.is_empty() {
        let mut fm = Map::new();
        if !f.format.is_empty() {
            fm.insert("id".into(), json!(f.format));
        }
        let mut params = Map::new();
        for (k, v) in [
            ("pattern", &f.pattern),
            ("inputFormat", &f.input_format),
            ("outputFormat", &f.output_format),
            ("labelTemplate", &f.label_template),
        ] {
            if !v.is_empty() {
                params.insert(k.into(), json!(v));
            }
        }
        if let Some(p) = f.output_precision {
            params.insert("outputPrecision".into(), json!(p));
        }
        if let Some(b) = f.open_link_in_current_tab {
            params.insert("openLinkInCurrentTab".into(), json!(b));
        }
        // url_template: the value of the highest min_version not above the target version.
        let mut best: Option<(Version, &str)> = None;
        for (min, val) in &f.url_template {
            if let Ok(mv) = Version::parse(min) {
                let fits = !version.less_than(&mv);
                let better = best.as_ref().is_none_or(|(b, _)| !mv.less_than(b));
                if fits && better {
                    best = Some((mv, val));
                }
            }
        }
        if let Some((_, val)) = best.filter(|(_, v)| !v.is_empty()) {
            params.insert("urlTemplate".into(), json!(val));
        }
        if !params.is_empty() {
            fm.insert("params".into(), Value::Object(params));
        }
        format = Some(fm);
    }
    (m, format)
}

impl Transformer<'_> {
    fn walk(&mut self, list: &[Field], path: &str) -> Result<(), String> {
        for f in list {
            let mut f = f.clone();
            f.path = if path.is_empty() {
                f.name.clone()
            } else {
                format!("{path}.{}", f.name)
            };
            if f.type_ == "group" {
                if f.enabled.unwrap_or(true) {
                    self.walk(&f.fields, &f.path)?;
                }
                continue;
            }
            if f.type_ == "alias" {
                if self
                    .version
                    .less_than(&Version::parse("6.4.0").expect("constant"))
                {
                    continue;
                }
                if f.migration_alias && !self.migration {
                    continue;
                }
                if let Some(target) = fields::get_field(self.all, &f.alias_path) {
                    let (p, n) = (f.path.clone(), f.name.clone());
                    f = target.clone();
                    f.path = p;
                    f.name = n;
                }
            }
            self.add(&f)?;
            let base = f.path.clone();
            for mf in &f.multi_fields {
                let mut g = f.clone();
                g.type_ = mf.type_.clone();
                g.path = format!("{base}.{}", mf.name);
                self.add(&g)?;
            }
        }
        Ok(())
    }

    fn add(&mut self, f: &Field) -> Result<(), String> {
        if let Some(&i) = self.keys.get(&f.path) {
            let (field, _) = transform_field(&self.version, f);
            let target = &mut self.out[i];
            if f.type_.is_empty() || target.get("type") == field.get("type") {
                for (k, v) in field {
                    target.insert(k, v);
                }
                if !f.overwrite {
                    return Err(format!(
                        "field <{}> is duplicated, remove it or set 'overwrite: true'",
                        f.path
                    ));
                }
                return Ok(());
            }
            return Err(format!("field <{}> is duplicated", f.path));
        }
        let (field, format) = transform_field(&self.version, f);
        self.keys.insert(f.path.clone(), self.out.len());
        self.out.push(field);
        if let Some(fm) = format {
            self.formats.insert(f.path.clone(), Value::Object(fm));
        }
        Ok(())
    }
}

/// The index pattern saved object for Kibana `version` (libbeat's `IndexPatternGenerator`).
pub fn index_pattern(cfg: &SetupConfig, version: &Version) -> Result<Value, String> {
    let text = fields::fields_yml();
    let all = fields::load_fields(&text)?;
    let title = format!("{}-*", cfg.info.index_prefix);
    let mut attrs = Map::new();
    attrs.insert("timeFieldName".into(), json!("@timestamp"));
    attrs.insert("title".into(), json!(title));
    let filters = fields::source_filters(&text)?;
    if !filters.is_empty() {
        let v: Vec<Value> = filters.iter().map(|f| json!({ "value": f })).collect();
        attrs.insert("sourceFilters".into(), json!(to_go_json(&Value::Array(v))));
    }
    let mut t = Transformer {
        all: &all,
        version: version.clone(),
        migration: cfg.migration,
        out: Vec::new(),
        keys: Default::default(),
        formats: Map::new(),
    };
    t.walk(&all, "")?;
    for (name, typ, searchable) in [
        ("_id", "keyword", false),
        ("_type", "keyword", true),
        ("_index", "keyword", false),
        ("_score", "integer", false),
    ] {
        let f = Field {
            path: name.into(),
            type_: typ.into(),
            index: Some(false),
            analyzed: Some(false),
            doc_values: Some(false),
            searchable: Some(searchable),
            aggregatable: Some(searchable),
            ..Field::default()
        };
        t.add(&f)?;
    }
    let fields_v = Value::Array(t.out.into_iter().map(Value::Object).collect());
    attrs.insert("fields".into(), json!(to_go_json(&fields_v)));
    attrs.insert(
        "fieldFormatMap".into(),
        json!(to_go_json(&Value::Object(t.formats))),
    );
    Ok(json!({
        "type": "index-pattern",
        "id": title,
        // libbeat passes Packetbeat's settings.Version here, which Packetbeat leaves empty.
        "version": "",
        "attributes": attrs,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_fields() {
        let cfg = SetupConfig::defaults();
        let p = index_pattern(&cfg, &Version::parse("8.17.2").unwrap()).unwrap();
        assert_eq!(p["id"], "packetbeat-*");
        let fields: Vec<Value> =
            serde_json::from_str(p["attributes"]["fields"].as_str().unwrap()).unwrap();
        let by_name = |n: &str| fields.iter().find(|f| f["name"] == n).cloned();
        assert_eq!(by_name("mysql.affected_rows").unwrap()["type"], "number");
        assert_eq!(by_name("@timestamp").unwrap()["type"], "date");
        assert_eq!(fields.last().unwrap()["name"], "_score");
        // Migration aliases appear only with migration enabled.
        assert!(by_name("beat.name").is_none());
        let mut m = cfg.clone();
        m.migration = true;
        let p = index_pattern(&m, &Version::parse("8.17.2").unwrap()).unwrap();
        assert!(p["attributes"]["fields"]
            .as_str()
            .unwrap()
            .contains("\"beat.name\""));
    }
}
