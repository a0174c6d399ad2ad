//! Command-line spelling as Packetbeat accepts it. Packetbeat parses flags with cobra/pflag after
//! turning Go-style single-dash long flags into double-dash ones
//! (`cfgfile.ConvertFlagsForBackwardsCompatibility`), so `-path.home X`, `-strict.perms=false`,
//! `-c=FILE`, `--c FILE` and `-e=true` all work; [`normalize_args`] does the same before clap.

/// Long flags that take a value.
pub const LONG_VALUE_FLAGS: &[&str] = &[
    "path.home",
    "path.config",
    "path.data",
    "path.logs",
    "environment",
    "dump",
    "httpprof",
    "cpuprofile",
    "memprofile",
    "dpdk_status",
    "dpdk_port",
    "dpdk_args",
    "dpdk_queues",
    "plugin",
];
/// Long boolean flags (`--strict.perms`, `--strict.perms=false`).
pub const LONG_BOOL_FLAGS: &[&str] = &["strict.perms"];
/// One-letter flags that take a value.
pub const SHORT_VALUE_FLAGS: &[char] = &['c', 'E', 'd', 'I', 'l'];
/// One-letter boolean flags.
pub const SHORT_BOOL_FLAGS: &[char] = &['e', 'v', 't', 'O', 'N'];

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing \"{s}\": invalid syntax"
        )),
    }
}

/// Rewrites argv (without changing argv[0]) into the spelling clap expects.
pub fn normalize_args(args: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut it = args.into_iter();
    if let Some(arg0) = it.next() {
        out.push(arg0);
    }
    let mut expect_value = false;
    let mut passthrough = false;
    for arg in it {
        if passthrough || expect_value {
            expect_value = false;
            out.push(arg);
            continue;
        }
        if arg == "--" {
            passthrough = true;
            out.push(arg);
            continue;
        }
        let stripped = arg.trim_start_matches('-');
        let dashes = arg.len() - stripped.len();
        if dashes == 0 || dashes > 2 || stripped.is_empty() {
            out.push(arg);
            continue;
        }
        let (name, value) = match stripped.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (stripped, None),
        };
        if LONG_VALUE_FLAGS.contains(&name) {
            match value {
                Some(v) => out.push(format!("--{name}={v}")),
                None => {
                    out.push(format!("--{name}"));
                    expect_value = true;
                }
            }
            continue;
        }
        if LONG_BOOL_FLAGS.contains(&name) {
            out.push(match value {
                Some(v) => format!("--{name}={v}"),
                None => format!("--{name}"),
            });
            continue;
        }
        let mut chars = name.chars();
        let (Some(c), None) = (chars.next(), chars.next()) else {
            out.push(arg);
            continue;
        };
        if SHORT_VALUE_FLAGS.contains(&c) {
            out.push(format!("-{c}"));
            match value {
                Some(v) => out.push(v.to_string()),
                None => expect_value = true,
            }
        } else if SHORT_BOOL_FLAGS.contains(&c) {
            match value.map(parse_go_bool) {
                None | Some(Ok(true)) => out.push(format!("-{c}")),
                Some(Ok(false)) => {}
                Some(Err(_)) => out.push(arg),
            }
        } else {
            out.push(arg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(args: &[&str]) -> Vec<String> {
        let mut v = vec!["packetbeat".to_string()];
        v.extend(args.iter().map(|s| s.to_string()));
        normalize_args(v)[1..].to_vec()
    }

    #[test]
    fn go_style_long_flags() {
        assert_eq!(
            n(&["-path.home", "/x", "-path.config=/y"]),
            ["--path.home", "/x", "--path.config=/y"]
        );
        assert_eq!(n(&["-strict.perms=false"]), ["--strict.perms=false"]);
        assert_eq!(
            n(&["--path.data", "/d", "-dump", "f"]),
            ["--path.data", "/d", "--dump", "f"]
        );
    }

    #[test]
    fn short_flags_with_equals_or_double_dash() {
        assert_eq!(
            n(&["-c=pb.yml", "--c", "x.yml"]),
            ["-c", "pb.yml", "-c", "x.yml"]
        );
        assert_eq!(n(&["-E", "a=b", "-E=c=d"]), ["-E", "a=b", "-E", "c=d"]);
        assert_eq!(n(&["-e=true", "-v=false", "--e"]), ["-e", "-e"]);
    }

    #[test]
    fn values_and_other_args_are_left_alone() {
        assert_eq!(
            n(&["-c", "-strange-name.yml", "run", "-d", "*"]),
            ["-c", "-strange-name.yml", "run", "-d", "*"]
        );
        assert_eq!(n(&["--", "-path.home"]), ["--", "-path.home"]);
        assert_eq!(n(&["-et", "--help"]), ["-et", "--help"]);
    }

    #[test]
    fn go_bools() {
        assert_eq!(parse_go_bool("false"), Ok(false));
        assert_eq!(parse_go_bool("T"), Ok(true));
        assert!(parse_go_bool("yes").is_err());
    }
}
