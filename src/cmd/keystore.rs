//! `packetbeat keystore create|add|list|remove`, as libbeat's `cmd/keystore.go` has them: the
//! same prompts, messages and exit codes, on the keystore file `keystore.path` (default
//! `${path.data}/packetbeat.keystore`) of the configuration the global flags select.

use super::{load_options, GlobalArgs};
use crate::config;
use crate::keystore::FileKeystore;
use clap::{Args, Subcommand};
use std::io::{BufRead, Read, Write};

#[derive(Subcommand, Debug)]
pub enum KeystoreCommand {
    /// Create keystore
    Create {
        /// override the existing keystore
        #[arg(long)]
        force: bool,
    },
    /// Add secret
    Add(AddArgs),
    /// Remove secret
    Remove {
        #[arg(value_name = "KEY")]
        keys: Vec<String>,
    },
    /// List keystore
    List,
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// Use the stdin as the source of the secret
    #[arg(long)]
    pub stdin: bool,
    /// Override the existing key
    #[arg(long)]
    pub force: bool,
    #[arg(value_name = "KEY")]
    pub keys: Vec<String>,
}

/// Runs a keystore command; errors are printed alone on stderr with exit code 1, as libbeat's
/// `cli.RunWith` does.
pub fn run(g: &GlobalArgs, cmd: KeystoreCommand) -> i32 {
    match execute(g, cmd) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

fn open(g: &GlobalArgs) -> Result<FileKeystore, String> {
    let (raw, source) = config::load_raw(&load_options(g))
        .map_err(|e| format!("error initializing beat: {}", e.0))?;
    let path = config::keystore_path(&raw, &source)
        .map_err(|e| format!("error initializing beat: {}", e.0))?;
    FileKeystore::open(&path, g.strict_perms)
        .map_err(|e| format!("error initializing beat: could not initialize the keystore: {e}"))
}

fn execute(g: &GlobalArgs, cmd: KeystoreCommand) -> Result<(), String> {
    let mut store = open(g)?;
    match cmd {
        KeystoreCommand::Create { force } => create(&mut store, force),
        KeystoreCommand::Add(a) => add(&mut store, &a.keys, a.force, a.stdin),
        KeystoreCommand::Remove { keys } => remove(&mut store, &keys),
        KeystoreCommand::List => {
            for k in store.keys() {
                println!("{k}");
            }
            Ok(())
        }
    }
}

fn create(store: &mut FileKeystore, force: bool) -> Result<(), String> {
    if store.is_persisted() && !force {
        if !prompt_yes_no("A keystore already exists, Overwrite?", true)? {
            println!("Exiting without creating keystore.");
            return Ok(());
        }
        store
            .create()
            .map_err(|e| format!("error creating the keystore: {e}"))?;
    } else {
        store
            .create()
            .map_err(|e| format!("Error creating the keystore: {e}"))?;
    }
    println!("Created packetbeat keystore");
    Ok(())
}

fn add(store: &mut FileKeystore, keys: &[String], force: bool, stdin: bool) -> Result<(), String> {
    let key = match keys {
        [] => return Err("failed to create the secret: no key provided".into()),
        [k] => k.trim().to_string(),
        more => {
            return Err(format!(
                "could not create secret for: [{}], you can only provide one key per invocation",
                more.join(" ")
            ))
        }
    };
    if !store.is_persisted() {
        if !force
            && !prompt_yes_no(
                "The keystore does not exist. Do you want to create it?",
                false,
            )?
        {
            return Err("exiting without creating keystore".into());
        }
        store
            .create()
            .map_err(|e| format!("could not create keystore, error: {e}"))?;
        println!("Created keystore");
    }
    if store.get(&key).is_some() && !force {
        if stdin {
            return Err(format!(
                "the settings {key} already exist in the keystore use `--force` to replace it"
            ));
        }
        if !prompt_yes_no(&format!("Setting {key} already exists, Overwrite?"), false)? {
            println!("Exiting without modifying keystore.");
            return Ok(());
        }
    }
    let value = if stdin {
        let mut v = Vec::new();
        std::io::stdin()
            .read_to_end(&mut v)
            .map_err(|_| "could not read input from stdin".to_string())?;
        v
    } else {
        print!("Enter value for {key}: ");
        let _ = std::io::stdout().flush();
        let v = read_secret_line()
            .map_err(|e| format!("could not read value from the input, error: {e}"))?;
        println!();
        v
    };
    store.store(&key, value);
    store
        .save()
        .map_err(|e| format!("fail to save the keystore: {e}"))?;
    println!("Successfully updated the keystore");
    Ok(())
}

fn remove(store: &mut FileKeystore, keys: &[String]) -> Result<(), String> {
    if keys.is_empty() {
        return Err("you must supply at least one key to remove".into());
    }
    if !store.is_persisted() {
        return Err("the keystore doesn't exist. Use the 'create' command to create one".into());
    }
    for key in keys {
        let key = key.trim();
        if !store.delete(key) {
            return Err(format!("could not find key '{key}' in the keystore"));
        }
        store.save().map_err(|e| {
            format!("could not update the keystore with the changes, key: {key}, error: {e}")
        })?;
        println!("successfully removed key: {key}");
    }
    Ok(())
}

/// libbeat's `terminal.PromptYesNo`: `<prompt> [Y/n]: `, asked again until the answer is
/// empty (the default), y/yes or n/no.
fn prompt_yes_no(prompt: &str, default: bool) -> Result<bool, String> {
    print!("{prompt} {}: ", if default { "[Y/n]" } else { "[y/N]" });
    let _ = std::io::stdout().flush();
    let stdin = std::io::stdin();
    loop {
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => return Err("could not read from input".into()),
            Ok(_) => {}
        }
        match line.trim().to_lowercase().as_str() {
            "" => return Ok(default),
            "y" | "yes" => return Ok(true),
            "n" | "no" => return Ok(false),
            _ => println!(
                "Did not understand the answer '{}'",
                line.trim_end_matches('\n')
            ),
        }
    }
}

/// One line from stdin; on a terminal, without echoing it.
fn read_secret_line() -> Result<Vec<u8>, String> {
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios is plain data filled by tcgetattr; the saved state is restored below.
    let saved = unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        (libc::tcgetattr(fd, &mut t) == 0).then_some(t)
    };
    if let Some(t) = saved {
        let mut quiet = t;
        quiet.c_lflag &= !libc::ECHO;
        quiet.c_lflag |= libc::ICANON;
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if let Some(t) = saved {
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) };
    }
    read.map_err(|e| e.to_string())?;
    let line = line.strip_suffix('\n').unwrap_or(&line);
    Ok(line.strip_suffix('\r').unwrap_or(line).as_bytes().to_vec())
}
