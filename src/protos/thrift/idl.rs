//! The method, argument and exception names of Thrift IDL files (`idl_files`), as Packetbeat
//! takes them from its IDL parser (`thrift_idl.go`): every method of every service of the
//! files and of the files they include, by method name, with its service's name and its
//! argument and declared-exception names by field id.
//!
//! A reader of its own, because only the services matter: no Rust crate parses Thrift IDL and
//! is kept up (the Thrift compiler is C++). It tokenizes the file (`#`, `//` and `/* */`
//! comments, string literals in either quote), follows `include`s relative to the including
//! file, and reads each `service` block's functions; every other definition (structs, enums,
//! constants, typedefs, namespaces) is stepped over by balancing its brackets.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A method as the IDL declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdlMethod {
    pub service: String,
    /// Argument names by field id.
    pub params: Vec<Option<String>>,
    /// Declared exception names by field id.
    pub exceptions: Vec<Option<String>>,
}

/// The methods of a set of IDL files.
#[derive(Debug, Clone, Default)]
pub struct Idl {
    methods: HashMap<String, IdlMethod>,
}

impl Idl {
    /// Reads `files` and the files they include. The error names the file and what is wrong
    /// with it, in Packetbeat's words.
    pub fn load(files: &[String]) -> Result<Idl, String> {
        let mut idl = Idl::default();
        let mut seen = Vec::new();
        for f in files {
            idl.load_file(Path::new(f), &mut seen)
                .map_err(|e| format!("Error parsing Thrift IDL file {f}: {e}"))?;
        }
        Ok(idl)
    }

    /// The methods of IDL text (includes are not followed).
    pub fn parse(text: &str) -> Result<Idl, String> {
        let mut idl = Idl::default();
        idl.read(text)?;
        Ok(idl)
    }

    pub fn find(&self, method: &str) -> Option<&IdlMethod> {
        self.methods.get(method)
    }

    pub fn len(&self) -> usize {
        self.methods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.methods.is_empty()
    }

    fn load_file(&mut self, path: &Path, seen: &mut Vec<PathBuf>) -> Result<(), String> {
        let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if seen.contains(&key) {
            return Ok(());
        }
        seen.push(key);
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let includes = self.read(&text)?;
        let dir = path.parent().unwrap_or(Path::new(""));
        for inc in includes {
            let p = dir.join(&inc);
            self.load_file(&p, seen)
                .map_err(|e| format!("included file {}: {e}", p.display()))?;
        }
        Ok(())
    }

    /// Reads the services of one file; returns its includes.
    fn read(&mut self, text: &str) -> Result<Vec<String>, String> {
        let toks = tokenize(text)?;
        let mut p = Parser { toks, at: 0 };
        let mut includes = Vec::new();
        while let Some(t) = p.next() {
            match t {
                Tok::Word(w) if w == "include" => match p.next() {
                    Some(Tok::Str(s)) => includes.push(s),
                    _ => return Err("include without a file name".into()),
                },
                Tok::Word(w) if w == "service" => {
                    let name = p.word()?;
                    if p.peek_word("extends") {
                        p.next();
                        p.word()?;
                    }
                    p.skip_annotations();
                    p.expect('{')?;
                    while !p.eat('}') {
                        let (method, m) = p.function(&name)?;
                        self.methods.insert(method, m);
                    }
                }
                Tok::Punct(c @ ('{' | '[' | '(')) => p.skip_balanced(c)?,
                _ => {}
            }
        }
        Ok(includes)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Punct(char),
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'#' || (c == b'/' && b.get(i + 1) == Some(&b'/')) {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let end = text[i + 2..].find("*/").ok_or("unterminated comment")?;
            i += end + 4;
        } else if c == b'"' || c == b'\'' {
            let end = text[i + 1..]
                .find(c as char)
                .ok_or("unterminated string literal")?;
            out.push(Tok::Str(text[i + 1..i + 1 + end].to_string()));
            i += end + 2;
        } else if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'+') {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.' | b'-' | b'+'))
            {
                i += 1;
            }
            out.push(Tok::Word(text[start..i].to_string()));
        } else {
            let ch = text[i..].chars().next().expect("a char at a boundary");
            out.push(Tok::Punct(ch));
            i += ch.len_utf8();
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn peek_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x == w)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Punct(c)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected '{c}', found {}", self.describe()))
        }
    }

    fn describe(&self) -> String {
        match self.peek() {
            Some(Tok::Word(w)) => format!("'{w}'"),
            Some(Tok::Str(s)) => format!("\"{s}\""),
            Some(Tok::Punct(c)) => format!("'{c}'"),
            None => "the end of the file".into(),
        }
    }

    fn word(&mut self) -> Result<String, String> {
        match self.peek() {
            Some(Tok::Word(w)) => {
                let w = w.clone();
                self.at += 1;
                Ok(w)
            }
            _ => Err(format!("expected a name, found {}", self.describe())),
        }
    }

    /// Skips to the bracket closing `open`, which was just read.
    fn skip_balanced(&mut self, open: char) -> Result<(), String> {
        let mut stack = vec![open];
        while let Some(&want) = stack.last() {
            match self.next() {
                Some(Tok::Punct(c @ ('{' | '[' | '(' | '<'))) if c != '<' || want == '<' => {
                    stack.push(c)
                }
                Some(Tok::Punct(c @ ('}' | ']' | ')' | '>'))) => {
                    let matching = match c {
                        '}' => '{',
                        ']' => '[',
                        ')' => '(',
                        _ => '<',
                    };
                    if matching == want {
                        stack.pop();
                    } else if c != '>' {
                        return Err(format!("unbalanced '{c}'"));
                    }
                }
                Some(_) => {}
                None => return Err(format!("unclosed '{want}'")),
            }
        }
        Ok(())
    }

    /// `( key = "value", ... )` after a type or a definition.
    fn skip_annotations(&mut self) {
        if self.eat('(') {
            let _ = self.skip_balanced('(');
        }
    }

    /// A field type: a name, with its `<...>` parameters.
    fn field_type(&mut self) -> Result<(), String> {
        self.word()?;
        if self.eat('<') {
            self.skip_balanced('<')?;
        }
        Ok(())
    }

    /// One function of a service.
    fn function(&mut self, service: &str) -> Result<(String, IdlMethod), String> {
        if self.peek_word("oneway") || self.peek_word("async") {
            self.next();
        }
        self.field_type()?;
        self.skip_annotations();
        let name = self.word()?;
        self.expect('(')?;
        let params = self.fields(')')?;
        let exceptions = if self.peek_word("throws") {
            self.next();
            self.expect('(')?;
            self.fields(')')?
        } else {
            Vec::new()
        };
        self.skip_annotations();
        let _ = self.eat(',') || self.eat(';');
        Ok((
            name,
            IdlMethod {
                service: service.to_string(),
                params: by_id(params),
                exceptions: by_id(exceptions),
            },
        ))
    }

    /// Fields up to `close`: their ids (when given) and names.
    fn fields(&mut self, close: char) -> Result<Vec<(Option<u16>, String)>, String> {
        let mut out = Vec::new();
        while !self.eat(close) {
            let mut id = None;
            if let Some(Tok::Word(w)) = self.peek() {
                if self.toks.get(self.at + 1) == Some(&Tok::Punct(':')) {
                    id = w.parse::<i64>().ok().and_then(|v| u16::try_from(v).ok());
                    self.at += 2;
                }
            }
            if self.peek_word("required") || self.peek_word("optional") {
                self.next();
            }
            self.field_type()?;
            self.skip_annotations();
            let name = self.word()?;
            if self.eat('=') {
                match self.next() {
                    Some(Tok::Punct(c @ ('{' | '['))) => self.skip_balanced(c)?,
                    Some(_) => {}
                    None => return Err("a default value is missing".into()),
                }
            }
            self.skip_annotations();
            let _ = self.eat(',') || self.eat(';');
            out.push((id, name));
        }
        Ok(out)
    }
}

/// Names indexed by field id (Packetbeat's `fieldsToArrayByID`); fields without an id have
/// no place there.
fn by_id(fields: Vec<(Option<u16>, String)>) -> Vec<Option<String>> {
    let max = fields.iter().filter_map(|f| f.0).max();
    let mut out = vec![None; max.map_or(0, |m| usize::from(m) + 1)];
    for (id, name) in fields {
        if let Some(id) = id {
            out[usize::from(id)] = Some(name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TUTORIAL: &str = r#"
# shell comment
// C comment
/* block
   comment with service Fake { void x() } */
include "shared.thrift"
namespace cpp tutorial
typedef i32 MyInteger
const map<string,string> MAPCONSTANT = {'hello':'world', 'goodnight':'moon'}
enum Operation { ADD = 1, SUBTRACT = 2 }
struct Work {
  1: i32 num1 = 0,
  2: i32 num2,
  3: Operation op,
  4: optional string comment,
}
exception InvalidOperation { 1: i32 what, 2: string why }
service Calculator extends shared.SharedService {
   void ping(),
   i32 add(1:i32 num1, 2:i32 num2),
   map<string,list<i16>> echo_map(1:map<string,list<i16>> m) (annotated = "yes");
   i32 calculate(1:i32 logid, 5:Work w) throws (1:InvalidOperation ouch),
   oneway void zip()
}
"#;

    #[test]
    fn reads_services_methods_arguments_and_exceptions() {
        let idl = Idl::parse(TUTORIAL).unwrap();
        assert_eq!(idl.len(), 5);
        let calc = idl.find("calculate").unwrap();
        assert_eq!(calc.service, "Calculator");
        assert_eq!(
            calc.params,
            vec![
                None,
                Some("logid".into()),
                None,
                None,
                None,
                Some("w".into())
            ]
        );
        assert_eq!(calc.exceptions, vec![None, Some("ouch".into())]);
        assert_eq!(
            idl.find("zip").unwrap().params,
            Vec::<Option<String>>::new()
        );
        assert_eq!(
            idl.find("echo_map").unwrap().params,
            vec![None, Some("m".into())]
        );
        assert!(idl.find("x").is_none(), "comments are not read");
        assert!(idl.find("Work").is_none());
    }

    #[test]
    fn broken_files_say_what_is_wrong() {
        assert!(Idl::parse("service S { void f(1: i32 a }").is_err());
        assert!(Idl::parse("service S { void f(").is_err());
        assert!(Idl::parse("/* never closed").is_err());
        let err = Idl::load(&["/nonexistent/x.thrift".into()]).unwrap_err();
        assert!(
            err.starts_with("Error parsing Thrift IDL file /nonexistent/x.thrift: "),
            "{err}"
        );
    }

    #[test]
    fn follows_includes_of_the_shared_test_files() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/thrift");
        let idl = Idl::load(&[dir.join("calc.thrift").display().to_string()]).unwrap();
        assert_eq!(idl.find("info").unwrap().service, "Base");
        assert_eq!(idl.find("add").unwrap().service, "Calc");
    }
}
