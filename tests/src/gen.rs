//! Plausible commands generated from Redis's own argument documentation (`COMMAND DOCS` of a
//! plain Redis 7.0): every argument the docs describe, optional ones sometimes left out,
//! repeated ones repeated, option words in random case and sometimes with a NUL suffix (which
//! Redis's C string comparisons ignore), and value arguments carrying a marker that must
//! never reach Redis in plaintext.

use std::collections::BTreeMap;
use std::net::TcpStream;

use bytes::BytesMut;
use redcloak_commands::resp::Frame;

use crate::diff::{command, read_reply};

/// A small deterministic PRNG (SplitMix64): reproducible cases without a dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn bits(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        (self.bits() % n.max(1) as u64) as usize
    }

    /// True with probability `p` percent.
    pub fn chance(&mut self, p: u64) -> bool {
        self.bits() % 100 < p
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// One documented argument.
#[derive(Debug, Clone, Default)]
pub struct Arg {
    /// Its name in the docs (`value`, `element`, `field`…).
    pub name: String,
    /// `key`, `string`, `integer`, `double`, `pattern`, `unix-time`, `pure-token`, `oneof`,
    /// `block`.
    pub kind: String,
    /// The option word that precedes it, if any.
    pub token: Option<String>,
    /// May be left out.
    pub optional: bool,
    /// May be repeated.
    pub multiple: bool,
    /// The token is repeated with each repetition.
    pub multiple_token: bool,
    /// Members of a `oneof` or `block`.
    pub args: Vec<Arg>,
}

/// The arguments of every command and subcommand (`container|sub`, lower case), from
/// `COMMAND DOCS` of a plain Redis.
pub fn command_docs(plain_port: u16) -> BTreeMap<String, Vec<Arg>> {
    let mut s = TcpStream::connect(("127.0.0.1", plain_port)).expect("connect to plain Redis");
    std::io::Write::write_all(&mut s, &command(&[b"COMMAND", b"DOCS"])).expect("COMMAND DOCS");
    let mut buf = BytesMut::new();
    let reply = read_reply(&mut s, &mut buf)
        .expect("COMMAND DOCS reply")
        .frame;
    let mut out = BTreeMap::new();
    collect(&reply, None, &mut out);
    out
}

fn collect(pairs: &Frame, parent: Option<&str>, out: &mut BTreeMap<String, Vec<Arg>>) {
    let items = flat(pairs);
    for pair in items.chunks(2) {
        let [name, doc] = pair else { continue };
        let name = text(name).to_ascii_lowercase();
        let full = match parent {
            Some(p) => format!("{p}|{name}"),
            None => name,
        };
        let fields = map(doc);
        let args = fields.get("arguments").map(args_of).unwrap_or_default();
        if let Some(subs) = fields.get("subcommands") {
            // Subcommand names are already `container|sub`.
            collect(subs, None, out);
        }
        out.insert(full, args);
    }
}

fn flat(f: &Frame) -> Vec<Frame> {
    match f {
        Frame::Array(items) => items.clone(),
        Frame::Map(pairs) => pairs
            .iter()
            .flat_map(|(k, v)| [k.clone(), v.clone()])
            .collect(),
        _ => Vec::new(),
    }
}

fn map(f: &Frame) -> BTreeMap<String, Frame> {
    flat(f)
        .chunks(2)
        .filter_map(|p| match p {
            [k, v] => Some((text(k), v.clone())),
            _ => None,
        })
        .collect()
}

fn text(f: &Frame) -> String {
    match f {
        Frame::Bulk(b) | Frame::Simple(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

fn args_of(f: &Frame) -> Vec<Arg> {
    flat(f)
        .iter()
        .map(|a| {
            let m = map(a);
            let flags: Vec<String> = m
                .get("flags")
                .map(|f| flat(f).iter().map(text).collect())
                .unwrap_or_default();
            Arg {
                name: m.get("name").map(text).unwrap_or_default(),
                kind: m.get("type").map(text).unwrap_or_default(),
                token: m.get("token").map(text),
                optional: flags.iter().any(|f| f == "optional"),
                multiple: flags.iter().any(|f| f == "multiple"),
                multiple_token: flags.iter().any(|f| f == "multiple_token"),
                args: m.get("arguments").map(args_of).unwrap_or_default(),
            }
        })
        .collect()
}

/// How arguments are generated.
#[derive(Debug, Clone)]
pub struct Gen {
    /// The randomness.
    pub rng: Rng,
    /// Put this marker (plus a counter) in every value argument (`value`, `element`,
    /// `message`); `None`: ordinary strings.
    pub marker: Option<String>,
    /// Percent of option words that get a NUL suffix.
    pub nul_percent: u64,
    /// Key names start with this.
    pub key_prefix: String,
    /// Markers handed out so far.
    pub markers: Vec<String>,
}

/// Documented argument names that hold application values (encrypted by redcloak).
pub const VALUE_NAMES: &[&str] = &["value", "element", "message"];

impl Gen {
    /// A generator with `seed`.
    pub fn new(seed: u64) -> Gen {
        Gen {
            rng: Rng::new(seed),
            marker: None,
            nul_percent: 20,
            key_prefix: "k".into(),
            markers: Vec::new(),
        }
    }

    /// An option word as a client might write it: any case, sometimes `\0…` after it.
    pub fn word(&mut self, token: &str) -> Vec<u8> {
        let mut w: Vec<u8> = token
            .bytes()
            .map(|b| {
                if self.rng.chance(50) {
                    b.to_ascii_lowercase()
                } else {
                    b.to_ascii_uppercase()
                }
            })
            .collect();
        if self.rng.chance(self.nul_percent) {
            w.push(0);
            if self.rng.chance(50) {
                w.extend_from_slice(b"junk");
            }
        }
        w
    }

    /// A full command: `name` (`xinfo|stream` for a subcommand) and generated arguments.
    pub fn command(&mut self, name: &str, args: &[Arg]) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = name.split('|').map(|p| p.as_bytes().to_vec()).collect();
        self.args(args, &mut out);
        out
    }

    fn args(&mut self, args: &[Arg], out: &mut Vec<Vec<u8>>) {
        for arg in args {
            if arg.optional && self.rng.chance(50) {
                continue;
            }
            let times = if arg.multiple {
                1 + self.rng.below(3)
            } else {
                1
            };
            for n in 0..times {
                if let Some(token) = &arg.token {
                    if n == 0 || arg.multiple_token {
                        let w = self.word(token);
                        out.push(w);
                    }
                }
                self.one(arg, out);
            }
        }
    }

    fn one(&mut self, arg: &Arg, out: &mut Vec<Vec<u8>>) {
        match arg.kind.as_str() {
            "pure-token" => {
                if arg.token.is_none() {
                    let w = self.word(&arg.name);
                    out.push(w);
                }
            }
            "oneof" => {
                if let Some(choice) = arg.args.get(self.rng.below(arg.args.len())).cloned() {
                    self.args(
                        std::slice::from_ref(&Arg {
                            optional: false,
                            ..choice
                        }),
                        out,
                    );
                }
            }
            "block" => {
                let members = arg.args.clone();
                self.args(&members, out);
            }
            "key" => {
                let k = format!("{}:{}", self.key_prefix, self.rng.below(4));
                out.push(k.into_bytes());
            }
            "integer" => {
                let n = *self.rng.pick(&["0", "1", "2", "5", "10", "-1", "100"]);
                out.push(n.as_bytes().to_vec());
            }
            "double" => out.push(
                self.rng
                    .pick(&["1.5", "0", "-2", "inf"])
                    .as_bytes()
                    .to_vec(),
            ),
            "unix-time" => out.push(b"4102444800".to_vec()),
            "pattern" => out.push(self.rng.pick(&["*", "k:*", "a?"]).as_bytes().to_vec()),
            _ => {
                let s = self.string(arg);
                out.push(s);
            }
        }
    }

    fn string(&mut self, arg: &Arg) -> Vec<u8> {
        let name = arg.name.as_str();
        if VALUE_NAMES.contains(&name) {
            if let Some(marker) = &self.marker {
                let m = format!("{marker}{}", self.markers.len());
                self.markers.push(m.clone());
                return m.into_bytes();
            }
        }
        match name {
            "id" | "threshold" | "start" | "end" => self
                .rng
                .pick(&[
                    "*", "0-1", "1-1", "5-*", "1-1\0x", "bad", "+", "-", "1", "99-99",
                ])
                .as_bytes()
                .to_vec(),
            _ => self
                .rng
                .pick(&["f1", "f2", "x", "1", "a b", ""])
                .as_bytes()
                .to_vec(),
        }
    }
}
