//! `--help` in cobra's layout, as Packetbeat prints it: the description, `Usage:`,
//! `Available Commands:`, `Flags:` and `Global Flags:` with pflag's columns
//! (`  -c, --c string   Configuration file, relative to path.config (default "packetbeat.yml")`),
//! flags sorted by name, `-h, --help   help for <command>`, and the closing `Use "… [command]
//! --help"` line.
//!
//! The text is rendered from the clap definition (so it lists exactly the flags the parser
//! takes) and set as each command's `override_help`. clap's own layout cannot be bent into
//! pflag's: the flag type after the name (`string`, `int`, `setting=value`: the arg's value
//! name), the long form of one-letter Go flags (`--c`), the defaults pflag shows for values
//! decided later by the config loading ([`SHOWN_DEFAULTS`]), and cobra's two sections.

use clap::{ArgAction, Command};

/// Defaults pflag shows that clap does not hold (the value is decided when the config is
/// loaded): Go flag name, value, and whether it is a string (quoted).
const SHOWN_DEFAULTS: &[(&str, &str, bool)] = &[
    ("c", "packetbeat.yml", true),
    ("l", "1", false),
    ("environment", "default", false),
    ("strict.perms", "true", false),
];

/// cobra's smallest width for command names in `Available Commands:`.
const MIN_NAME_PADDING: usize = 11;

/// The command line definition with every command's help in cobra's layout.
pub fn with_cobra_help(mut cmd: Command) -> Command {
    cmd.build();
    let name = cmd.get_name().to_string();
    apply(&mut cmd, &name, true);
    cmd
}

fn apply(cmd: &mut Command, path: &str, root: bool) {
    let text = render(cmd, path, root);
    *cmd = std::mem::take(cmd).override_help(text);
    for sub in cmd.get_subcommands_mut() {
        if sub.get_name() == "help" {
            continue;
        }
        let sub_path = format!("{path} {}", sub.get_name());
        apply(sub, &sub_path, false);
    }
}

/// One flag as pflag prints it.
struct FlagLine {
    name: String,
    left: String,
    usage: String,
}

fn flag_lines(cmd: &Command, global: bool, root: bool) -> Vec<FlagLine> {
    let mut lines: Vec<FlagLine> = cmd
        .get_arguments()
        .filter(|a| !a.is_positional() && !a.is_hide_set())
        .filter(|a| !matches!(a.get_action(), ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version))
        // At the root every flag is its own; below it, the persistent ones are inherited.
        .filter(|a| root && !global || !root && a.is_global_set() == global)
        .map(|a| {
            let short = a.get_short();
            let name = a
                .get_long()
                .map(str::to_string)
                .or_else(|| short.map(String::from))
                .unwrap_or_else(|| a.get_id().to_string());
            let mut left = match short {
                Some(s) => format!("  -{s}, --{name}"),
                None => format!("      --{name}"),
            };
            let takes_value = matches!(a.get_action(), ArgAction::Set | ArgAction::Append);
            let varname = a
                .get_value_names()
                .and_then(|v| v.first())
                .map(|v| v.as_str())
                .filter(|v| takes_value && *v != "bool");
            if let Some(v) = varname {
                left.push(' ');
                left.push_str(v);
            }
            let mut usage = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            if let Some((_, v, quoted)) = SHOWN_DEFAULTS.iter().find(|(n, _, _)| *n == name) {
                usage.push_str(&if *quoted {
                    format!(" (default \"{v}\")")
                } else {
                    format!(" (default {v})")
                });
            }
            FlagLine { name, left, usage }
        })
        .collect();
    if !global {
        lines.push(FlagLine {
            name: "help".into(),
            left: "  -h, --help".into(),
            usage: format!("help for {}", cmd.get_name()),
        });
    }
    lines.sort_by(|a, b| a.name.cmp(&b.name));
    lines
}

/// pflag's `FlagUsages`: the usage column starts three spaces after the longest left part.
fn flag_block(lines: &[FlagLine]) -> String {
    let width = lines.iter().map(|l| l.left.len()).max().unwrap_or(0);
    let mut out = String::new();
    for l in lines {
        let line = format!("{:<width$}   {}", l.left, l.usage);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A command runs by itself unless it only groups subcommands.
fn runnable(cmd: &Command) -> bool {
    !cmd.has_subcommands() || !cmd.is_subcommand_required_set()
}

/// Subcommands cobra lists: the visible ones, with `help` at the root only.
fn listed(cmd: &Command, root: bool) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .filter_map(|s| {
            let name = s.get_name().to_string();
            if name == "help" {
                return root.then(|| (name, "Help about any command".to_string()));
            }
            Some((name, s.get_about().map(|a| a.to_string()).unwrap_or_default()))
        })
        .collect();
    v.sort();
    v
}

fn render(cmd: &Command, path: &str, root: bool) -> String {
    let mut out = String::new();
    // cobra's `Long`, else `Short`; Packetbeat's root command has neither.
    if !root {
        if let Some(d) = cmd.get_long_about().or(cmd.get_about()) {
            out.push_str(d.to_string().trim_end());
            out.push_str("\n\n");
        }
    }
    out.push_str("Usage:");
    let subs = listed(cmd, root);
    if runnable(cmd) {
        let args: Vec<String> = cmd
            .get_positionals()
            // cobra shows only what its `Use` names: the required arguments.
            .filter(|a| !a.is_hide_set() && a.is_required_set())
            .map(|a| {
                a.get_value_names()
                    .and_then(|v| v.first())
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| a.get_id().to_string().to_uppercase())
            })
            .collect();
        out.push_str("\n  ");
        out.push_str(path);
        for a in &args {
            out.push(' ');
            out.push_str(a);
        }
        out.push_str(" [flags]");
    }
    if !subs.is_empty() {
        out.push_str(&format!("\n  {path} [command]"));
        let pad = subs
            .iter()
            .map(|(n, _)| n.len())
            .chain(cmd.get_subcommands().map(|s| s.get_name().len()))
            .max()
            .unwrap_or(0)
            .max(MIN_NAME_PADDING);
        out.push_str("\n\nAvailable Commands:");
        for (name, about) in &subs {
            out.push_str(&format!("\n  {name:<pad$} {about}"));
        }
    }
    out.push_str("\n\nFlags:\n");
    out.push_str(&flag_block(&flag_lines(cmd, false, root)));
    if !root {
        let globals = flag_lines(cmd, true, root);
        if !globals.is_empty() {
            out.push_str("\nGlobal Flags:\n");
            out.push_str(&flag_block(&globals));
        }
    }
    if !subs.is_empty() {
        out.push_str(&format!(
            "\nUse \"{path} [command] --help\" for more information about a command.\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[(&str, &str)]) -> Vec<FlagLine> {
        v.iter()
            .map(|(l, u)| FlagLine {
                name: String::new(),
                left: l.to_string(),
                usage: u.to_string(),
            })
            .collect()
    }

    #[test]
    fn usage_column_is_three_spaces_after_the_longest_flag() {
        let b = flag_block(&lines(&[
            ("  -h, --help", "help for version"),
            ("      --es.version string", "Elasticsearch version"),
        ]));
        assert_eq!(
            b,
            "  -h, --help                help for version\n      --es.version string   Elasticsearch version\n"
        );
    }
}
