//! Field definitions in the Beats `fields.yml` format: the embedded `fields/` tree of the
//! repository, and the parser libbeat's `mapping` package applies to it (`mapping.Field`,
//! `LoadFields`, `GetField`, `ConcatFields`).
//!
//! Hand-written because no crate reads `fields.yml`: the format is libbeat's own, and the
//! template and index-pattern generators depend on its exact semantics (which keys matter, the
//! defaults of absent keys, how dotted names and duplicate names resolve).

use serde_json::Value;

/// The repository's `fields/` files, in the order of Packetbeat's bundled `fields.yml`: libbeat's
/// (ECS, common, processors, autodiscover), Packetbeat's common fields, then the protocol
/// analyzers by name (libbeat registers module fields sorted by name).
pub const FIELDS_FILES: &[(&str, &str)] = &[
    (
        "libbeat/ecs.yml",
        include_str!("../../fields/libbeat/ecs.yml"),
    ),
    (
        "libbeat/beat.yml",
        include_str!("../../fields/libbeat/beat.yml"),
    ),
    (
        "libbeat/add_cloud_metadata.yml",
        include_str!("../../fields/libbeat/add_cloud_metadata.yml"),
    ),
    (
        "libbeat/add_docker_metadata.yml",
        include_str!("../../fields/libbeat/add_docker_metadata.yml"),
    ),
    (
        "libbeat/add_host_metadata.yml",
        include_str!("../../fields/libbeat/add_host_metadata.yml"),
    ),
    (
        "libbeat/add_kubernetes_metadata.yml",
        include_str!("../../fields/libbeat/add_kubernetes_metadata.yml"),
    ),
    (
        "libbeat/add_process_metadata.yml",
        include_str!("../../fields/libbeat/add_process_metadata.yml"),
    ),
    (
        "libbeat/jolokia-autodiscover.yml",
        include_str!("../../fields/libbeat/jolokia-autodiscover.yml"),
    ),
    (
        "packetbeat/common.yml",
        include_str!("../../fields/packetbeat/common.yml"),
    ),
    (
        "packetbeat/protos/amqp.yml",
        include_str!("../../fields/packetbeat/protos/amqp.yml"),
    ),
    (
        "packetbeat/protos/cassandra.yml",
        include_str!("../../fields/packetbeat/protos/cassandra.yml"),
    ),
    (
        "packetbeat/protos/dhcpv4.yml",
        include_str!("../../fields/packetbeat/protos/dhcpv4.yml"),
    ),
    (
        "packetbeat/protos/dns.yml",
        include_str!("../../fields/packetbeat/protos/dns.yml"),
    ),
    (
        "packetbeat/protos/http.yml",
        include_str!("../../fields/packetbeat/protos/http.yml"),
    ),
    (
        "packetbeat/protos/icmp.yml",
        include_str!("../../fields/packetbeat/protos/icmp.yml"),
    ),
    (
        "packetbeat/protos/memcache.yml",
        include_str!("../../fields/packetbeat/protos/memcache.yml"),
    ),
    (
        "packetbeat/protos/mongodb.yml",
        include_str!("../../fields/packetbeat/protos/mongodb.yml"),
    ),
    (
        "packetbeat/protos/mysql.yml",
        include_str!("../../fields/packetbeat/protos/mysql.yml"),
    ),
    (
        "packetbeat/protos/nfs.yml",
        include_str!("../../fields/packetbeat/protos/nfs.yml"),
    ),
    (
        "packetbeat/protos/pgsql.yml",
        include_str!("../../fields/packetbeat/protos/pgsql.yml"),
    ),
    (
        "packetbeat/protos/redis.yml",
        include_str!("../../fields/packetbeat/protos/redis.yml"),
    ),
    (
        "packetbeat/protos/sip.yml",
        include_str!("../../fields/packetbeat/protos/sip.yml"),
    ),
    (
        "packetbeat/protos/thrift.yml",
        include_str!("../../fields/packetbeat/protos/thrift.yml"),
    ),
    (
        "packetbeat/protos/tls.yml",
        include_str!("../../fields/packetbeat/protos/tls.yml"),
    ),
];

/// The whole bundled `fields.yml`: every file of [`FIELDS_FILES`], one after the other.
pub fn fields_yml() -> String {
    let mut s = String::with_capacity(FIELDS_FILES.iter().map(|(_, t)| t.len() + 1).sum());
    for (_, text) in FIELDS_FILES {
        s.push_str(text);
        if !text.ends_with('\n') {
            s.push('\n');
        }
    }
    s
}

/// One `object_type_params` entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectTypeCfg {
    pub object_type: String,
    pub object_type_mapping_type: String,
    pub scaling_factor: i64,
}

/// A field definition, with the keys libbeat's `mapping.Field` reads; absent keys take libbeat's
/// zero values (`None` where libbeat keeps a pointer and tells "absent" from `false`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Field {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub fields: Vec<Field>,
    pub multi_fields: Vec<Field>,
    pub enabled: Option<bool>,
    /// `analyzer`: a name, or `{name: definition}`.
    pub analyzer: Option<(String, Option<Value>)>,
    pub search_analyzer: Option<(String, Option<Value>)>,
    pub norms: bool,
    /// `dynamic`: `true`, `false` or `"strict"`.
    pub dynamic: Option<Value>,
    pub index: Option<bool>,
    pub doc_values: Option<bool>,
    pub copy_to: String,
    pub ignore_above: i64,
    /// `path` of an alias.
    pub alias_path: String,
    /// `migration`: an alias that exists only with `migration.6_to_7.enabled`.
    pub migration_alias: bool,
    pub dynamic_template: bool,
    pub unit: String,
    pub metric_type: String,
    pub object_type: String,
    pub object_type_mapping_type: String,
    pub scaling_factor: i64,
    pub object_type_params: Vec<ObjectTypeCfg>,
    pub analyzed: Option<bool>,
    pub count: i64,
    pub searchable: Option<bool>,
    pub aggregatable: Option<bool>,
    pub script: String,
    pub pattern: String,
    pub input_format: String,
    pub output_format: String,
    pub output_precision: Option<i64>,
    pub label_template: String,
    /// `url_template`: (min_version, value) pairs.
    pub url_template: Vec<(String, String)>,
    pub open_link_in_current_tab: Option<bool>,
    pub overwrite: bool,
    pub default_field: Option<bool>,
    /// Dotted path of the enclosing groups (set while processing, never read from YAML).
    pub path: String,
}

fn yaml_to_json(v: &serde_yaml::Value) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn key_of(k: &serde_yaml::Value) -> String {
    crate::config::tree::key_string(k)
}

/// A scalar as go-ucfg converts it to a string.
pub(crate) fn as_string(v: &serde_yaml::Value, key: &str) -> Result<String, String> {
    match v {
        serde_yaml::Value::String(s) => Ok(s.clone()),
        serde_yaml::Value::Number(n) => Ok(n.to_string()),
        serde_yaml::Value::Bool(b) => Ok(b.to_string()),
        serde_yaml::Value::Null => Ok(String::new()),
        _ => Err(format!(
            "required 'string', but found a structure in field '{key}'"
        )),
    }
}

pub(crate) fn as_bool(v: &serde_yaml::Value, key: &str) -> Result<bool, String> {
    match v {
        serde_yaml::Value::Bool(b) => Ok(*b),
        serde_yaml::Value::String(s) => match s.as_str() {
            "true" | "yes" | "on" => Ok(true),
            "false" | "no" | "off" => Ok(false),
            _ => Err(format!("type mismatch accessing '{key}'")),
        },
        _ => Err(format!("type mismatch accessing '{key}'")),
    }
}

fn as_int(v: &serde_yaml::Value, key: &str) -> Result<i64, String> {
    match v {
        serde_yaml::Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .ok_or_else(|| format!("type mismatch accessing '{key}'")),
        serde_yaml::Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("type mismatch accessing '{key}'")),
        _ => Err(format!("type mismatch accessing '{key}'")),
    }
}

fn analyzer(v: &serde_yaml::Value, key: &str) -> Result<(String, Option<Value>), String> {
    match v {
        serde_yaml::Value::String(s) => Ok((s.clone(), None)),
        serde_yaml::Value::Mapping(m) if m.len() == 1 => {
            let (k, d) = m.iter().next().expect("one entry");
            Ok((key_of(k), Some(yaml_to_json(d))))
        }
        _ => Err(format!(
            "'{}' is invalid analyzer setting accessing '{key}'",
            yaml_to_json(v)
        )),
    }
}

fn field_list(v: &serde_yaml::Value, key: &str) -> Result<Vec<Field>, String> {
    match v {
        serde_yaml::Value::Sequence(s) => s
            .iter()
            .enumerate()
            .map(|(i, f)| Field::from_yaml(f, &format!("{key}.{i}")))
            .collect(),
        serde_yaml::Value::Null => Ok(Vec::new()),
        // go-ucfg accepts a single object where a list is expected.
        serde_yaml::Value::Mapping(_) => Ok(vec![Field::from_yaml(v, &format!("{key}.0"))?]),
        _ => Err(format!(
            "required 'object', but found a scalar in field '{key}'"
        )),
    }
}

impl Field {
    /// Reads one field definition (a YAML mapping); `at` names it in errors.
    pub fn from_yaml(v: &serde_yaml::Value, at: &str) -> Result<Field, String> {
        let m = v
            .as_mapping()
            .ok_or_else(|| format!("required 'object', but found a scalar in field '{at}'"))?;
        let mut f = Field::default();
        for (k, val) in m {
            let key = key_of(k);
            let here = format!("{at}.{key}");
            let s = || as_string(val, &here);
            match key.as_str() {
                "name" => f.name = s()?,
                "type" => f.type_ = s()?,
                "format" => f.format = s()?,
                "fields" => f.fields = field_list(val, &here)?,
                "multi_fields" => f.multi_fields = field_list(val, &here)?,
                "enabled" => f.enabled = Some(as_bool(val, &here)?),
                "analyzer" => f.analyzer = Some(analyzer(val, &here)?),
                "search_analyzer" => f.search_analyzer = Some(analyzer(val, &here)?),
                "norms" => f.norms = as_bool(val, &here)?,
                "dynamic" => {
                    f.dynamic = Some(match s()?.as_str() {
                        "true" => Value::Bool(true),
                        "false" => Value::Bool(false),
                        "strict" => Value::String("strict".into()),
                        other => {
                            return Err(format!(
                                "'{other}' is invalid dynamic setting accessing '{here}'"
                            ))
                        }
                    })
                }
                "index" => f.index = Some(as_bool(val, &here)?),
                "doc_values" => f.doc_values = Some(as_bool(val, &here)?),
                "copy_to" => f.copy_to = s()?,
                "ignore_above" => f.ignore_above = as_int(val, &here)?,
                "path" => f.alias_path = s()?,
                "migration" => f.migration_alias = as_bool(val, &here)?,
                "dynamic_template" => f.dynamic_template = as_bool(val, &here)?,
                "unit" => f.unit = s()?,
                "metric_type" => f.metric_type = s()?,
                "object_type" => f.object_type = s()?,
                "object_type_mapping_type" => f.object_type_mapping_type = s()?,
                "scaling_factor" => f.scaling_factor = as_int(val, &here)?,
                "object_type_params" => {
                    let list = val.as_sequence().cloned().unwrap_or_default();
                    for (i, p) in list.iter().enumerate() {
                        let pat = format!("{here}.{i}");
                        let pm = p.as_mapping().ok_or_else(|| {
                            format!("required 'object', but found a scalar in field '{pat}'")
                        })?;
                        let mut c = ObjectTypeCfg::default();
                        for (pk, pv) in pm {
                            let pk = key_of(pk);
                            let ph = format!("{pat}.{pk}");
                            match pk.as_str() {
                                "object_type" => c.object_type = as_string(pv, &ph)?,
                                "object_type_mapping_type" => {
                                    c.object_type_mapping_type = as_string(pv, &ph)?
                                }
                                "scaling_factor" => c.scaling_factor = as_int(pv, &ph)?,
                                _ => {}
                            }
                        }
                        f.object_type_params.push(c);
                    }
                }
                "analyzed" => f.analyzed = Some(as_bool(val, &here)?),
                "count" => f.count = as_int(val, &here)?,
                "searchable" => f.searchable = Some(as_bool(val, &here)?),
                "aggregatable" => f.aggregatable = Some(as_bool(val, &here)?),
                "script" => f.script = s()?,
                "pattern" => f.pattern = s()?,
                "input_format" => f.input_format = s()?,
                "output_format" => f.output_format = s()?,
                "output_precision" => f.output_precision = Some(as_int(val, &here)?),
                "label_template" => f.label_template = s()?,
                "url_template" => {
                    for (i, u) in val
                        .as_sequence()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .enumerate()
                    {
                        let uh = format!("{here}.{i}");
                        let get = |k: &str| {
                            u.get(k)
                                .map(|x| as_string(x, &format!("{uh}.{k}")))
                                .unwrap_or(Ok(String::new()))
                        };
                        f.url_template.push((get("min_version")?, get("value")?));
                    }
                }
                "open_link_in_current_tab" => {
                    f.open_link_in_current_tab = Some(as_bool(val, &here)?)
                }
                "overwrite" => f.overwrite = as_bool(val, &here)?,
                "default_field" => f.default_field = Some(as_bool(val, &here)?),
                // Documentation keys (description, example, level, ...) and the keys of a
                // fields.yml section (key, title, anchor, ...) carry nothing the generators use.
                _ => {}
            }
        }
        f.validate()?;
        Ok(f)
    }

    /// libbeat's `Field.Validate`: the type is known, and `format`, `metric_type` and `unit` fit it.
    fn validate(&self) -> Result<(), String> {
        self.validate_type().map_err(|e| {
            format!(
                "incorrect type configuration for field '{}': {e}",
                self.name
            )
        })?;
        if !self.object_type_params.is_empty()
            && (self.scaling_factor != 0
                || !self.object_type_mapping_type.is_empty()
                || !self.object_type.is_empty())
        {
            return Err("mixing top level objectType configuration with array of object type configurations is forbidden".into());
        }
        Ok(())
    }

    fn validate_type(&self) -> Result<(), String> {
        let (formats, metric_types, units): (&[&str], &[&str], &[&str]) =
            match self.type_.to_lowercase().as_str() {
                "text" | "keyword" | "wildcard" | "constant_keyword" | "match_only_text" => {
                    (&["string", "url"], &[], &[])
                }
                "long" | "integer" | "short" | "byte" | "double" | "float" | "half_float"
                | "scaled_float" | "histogram" => (
                    &[
                        "string", "url", "bytes", "duration", "number", "percent", "color",
                    ],
                    &["gauge", "counter"],
                    &[
                        "percent", "byte", "nanos", "micros", "ms", "s", "m", "h", "d",
                    ],
                ),
                "date" | "date_nanos" => (&["string", "url", "date"], &[], &[]),
                "geo_point" => (&["geo_point"], &[], &[]),
                "date_range" => (&["date_range"], &[], &[]),
                "boolean" | "binary" | "ip" | "alias" | "array" | "ip_range" => (&[], &[], &[]),
                "object" => {
                    if self.dynamic_template
                        && (!self.object_type_params.is_empty() || !self.object_type.is_empty())
                    {
                        return Err("dynamic_template not supported with object_type_params".into());
                    }
                    return Ok(());
                }
                "group" | "nested" | "flattened" | "" => return Ok(()),
                other => {
                    return Err(format!(
                        "unexpected type '{other}' for field '{}'",
                        self.name
                    ))
                }
            };
        for (what, value, allowed) in [
            ("format", &self.format, formats),
            ("metric type", &self.metric_type, metric_types),
            ("unit", &self.unit, units),
        ] {
            if value.is_empty() {
                continue;
            }
            if allowed.is_empty() {
                return Err(format!(
                    "no {what} expected for field '{}', found: {value}",
                    self.name
                ));
            }
            if !allowed.contains(&value.as_str()) {
                return Err(format!(
                    "unexpected {what} '{value}' for field '{}', expected one of: {}",
                    self.name,
                    allowed.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// libbeat's `LoadFields`: a fields.yml document is a list of sections (`- key: ...`), and the
/// fields are the concatenation of every section's `fields`.
pub fn load_fields(text: &str) -> Result<Vec<Field>, String> {
    let doc: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    let sections = match &doc {
        serde_yaml::Value::Sequence(s) => s.as_slice(),
        serde_yaml::Value::Null => &[],
        _ => return Err("required 'array', but found 'object' in field '.'".into()),
    };
    let mut out = Vec::new();
    for (i, s) in sections.iter().enumerate() {
        let section = Field::from_yaml(s, &i.to_string())?;
        out.extend(section.fields);
    }
    Ok(out)
}

/// Sections' `kibana.source_filters` (libbeat's index-pattern `sourceFilters`).
pub fn source_filters(text: &str) -> Result<Vec<String>, String> {
    let doc: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for s in doc.as_sequence().map(|s| s.as_slice()).unwrap_or(&[]) {
        if let Some(list) = s
            .get("kibana")
            .and_then(|k| k.get("source_filters"))
            .and_then(|l| l.as_sequence())
        {
            for v in list {
                out.push(as_string(v, "kibana.source_filters")?);
            }
        }
    }
    Ok(out)
}

/// The embedded fields, parsed.
pub fn bundled() -> Result<Vec<Field>, String> {
    load_fields(&fields_yml())
}

/// libbeat's `Fields.GetField`: walks the dotted key one name at a time, taking the first field
/// of each level with that exact name (a field named `a.b` is not found as `a` then `b`).
pub fn get_field<'a>(fields: &'a [Field], key: &str) -> Option<&'a Field> {
    let keys: Vec<&str> = key.split('.').collect();
    let mut level = fields;
    let mut i = 0;
    loop {
        let k = keys.get(i)?;
        let f = level.iter().find(|f| f.name == *k)?;
        i += 1;
        if !f.fields.is_empty() {
            level = &f.fields;
            continue;
        }
        return (i == keys.len()).then_some(f);
    }
}

/// libbeat's `Fields.GetKeys`: the dotted path of every leaf (`.values`/`.counts` added for
/// histogram objects).
pub fn get_keys(fields: &[Field]) -> Vec<String> {
    fn walk(fields: &[Field], ns: &str, out: &mut Vec<String>) {
        for f in fields {
            let name = if ns.is_empty() {
                f.name.clone()
            } else {
                format!("{ns}.{}", f.name)
            };
            if f.fields.is_empty() {
                out.push(name.clone());
            } else {
                walk(&f.fields, &name, out);
            }
            if f.object_type == "histogram" {
                out.push(format!("{name}.values"));
                out.push(format!("{name}.counts"));
            }
        }
    }
    let mut out = Vec::new();
    walk(fields, "", &mut out);
    out
}

/// libbeat's `ConcatFields`: `b` after `a`, refused when a key of `b` is already a key of `a`
/// (libbeat's own check, which follows the first field of each name, as [`get_field`] does).
pub fn concat_fields(a: Vec<Field>, b: &[Field]) -> Result<Vec<Field>, String> {
    if b.is_empty() {
        return Ok(a);
    }
    if a.is_empty() {
        return Ok(b.to_vec());
    }
    let mut errs = Vec::new();
    for key in get_keys(b) {
        let keys: Vec<&str> = key.split('.').collect();
        if let Err(e) = can_concat(&a, &key, &keys) {
            errs.push(e);
        }
    }
    if !errs.is_empty() {
        // joeshaw/multierror's text.
        let points: Vec<String> = errs.iter().map(|e| format!("* {e}")).collect();
        return Err(format!(
            "{} error{} occurred:\n\t{}\n\n",
            errs.len(),
            if errs.len() == 1 { "" } else { "s" },
            points.join("\n\t")
        ));
    }
    let mut out = a;
    out.extend_from_slice(b);
    Ok(out)
}

fn can_concat(fields: &[Field], k: &str, keys: &[&str]) -> Result<(), String> {
    let Some((key, rest)) = keys.split_first() else {
        return Ok(());
    };
    let Some(f) = fields.iter().find(|f| f.name == *key) else {
        return Ok(());
    };
    if rest.is_empty() {
        return Err(format!("fields contain key <{k}>"));
    }
    if f.fields.is_empty() && f.type_ != "object" {
        return Err(format!(
            "fields contain non object node conflicting with key <{k}>"
        ));
    }
    can_concat(&f.fields, k, rest)
}

/// A field definition as a JSON object (the shape `setup.template.append_fields` entries have in
/// the configuration), for callers that build definitions from config trees.
pub fn from_config_list(v: &serde_yaml::Value, at: &str) -> Result<Vec<Field>, String> {
    field_list(v, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_fields_parse() {
        let f = bundled().unwrap();
        // ECS's first field, Packetbeat's protocol groups last.
        assert_eq!(f[0].name, "@timestamp");
        assert_eq!(f.last().unwrap().name, "tls");
        let method = get_field(&f, "http.request.method");
        // ECS writes `request.method` as one dotted name inside `http`: libbeat's lookup does
        // not find it, and neither does ours.
        assert!(method.is_none());
        assert_eq!(get_field(&f, "mysql.affected_rows").unwrap().type_, "long");
        assert_eq!(get_field(&f, "@timestamp").unwrap().type_, "date");
    }

    #[test]
    fn unknown_type_is_refused() {
        let e = load_fields("- key: x\n  fields:\n  - name: a\n    type: nosuch\n").unwrap_err();
        assert!(e.contains("unexpected type 'nosuch' for field 'a'"), "{e}");
        let e = load_fields("- key: x\n  fields:\n  - name: a\n    type: ip\n    format: bytes\n")
            .unwrap_err();
        assert!(
            e.contains("no format expected for field 'a', found: bytes"),
            "{e}"
        );
    }

    #[test]
    fn concat_detects_conflicts() {
        let a = load_fields("- key: x\n  fields:\n  - name: a\n    type: group\n    fields:\n    - name: b\n      type: keyword\n").unwrap();
        let b = load_fields("- key: y\n  fields:\n  - name: a.b\n    type: keyword\n").unwrap();
        // The appended key is split on dots, so it meets a.b of the group.
        assert!(concat_fields(a.clone(), &b).is_err());
        // A dotted name in the existing fields is not split: `x.y` is not found as x then y.
        let dotted =
            load_fields("- key: x\n  fields:\n  - name: x.y\n    type: keyword\n").unwrap();
        let b2 = load_fields("- key: y\n  fields:\n  - name: x\n    type: group\n    fields:\n    - name: y\n      type: long\n").unwrap();
        assert!(concat_fields(dotted, &b2).is_ok());
        let b = load_fields("- key: y\n  fields:\n  - name: a\n    type: group\n    fields:\n    - name: b\n      type: long\n").unwrap();
        let e = concat_fields(a.clone(), &b).unwrap_err();
        assert!(e.contains("fields contain key <a.b>"), "{e}");
        let b = load_fields("- key: y\n  fields:\n  - name: a\n    type: group\n    fields:\n    - name: c\n      type: long\n").unwrap();
        assert_eq!(concat_fields(a, &b).unwrap().len(), 2);
    }
}
